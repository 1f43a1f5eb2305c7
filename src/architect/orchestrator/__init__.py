"""The delivery orchestrator, in procrastinate's shape: `plans` (Markdown/YAML in and out),
`manager` (claims, leases, reaper, readiness, cancel/pause/resume over the store's `TaskRepo`),
`worker` (the async worker), `executors/` (command, python, llm), `metrics`, `report`, `api`."""

from __future__ import annotations

from architect.orchestrator.manager import Manager
from architect.orchestrator.metrics import feature_metrics
from architect.orchestrator.plans import (
    export_markdown,
    export_yaml,
    load_plan_file,
    parse_markdown,
    parse_yaml,
)
from architect.orchestrator.report import build_report, render_markdown
from architect.orchestrator.worker import Worker, WorkerOptions

__all__ = [
    "Manager",
    "Worker",
    "WorkerOptions",
    "build_report",
    "export_markdown",
    "export_yaml",
    "feature_metrics",
    "load_plan_file",
    "parse_markdown",
    "parse_yaml",
    "render_markdown",
]
