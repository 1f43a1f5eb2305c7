"""The delivery orchestrator, in procrastinate's shape: `plans` (Markdown/YAML in and out; the model
and its checks in `plan_model`, Markdown in `plans_md`, the repository check in `repo_check`),
`manager` (claims, leases, reaper, readiness, cancel/pause/resume over the store's `TaskRepo`),
`worker` (the async worker), `executors/` (command, python, llm), `trust` (which fields run code
and who may write them), `metrics`, `report`, `api`.

The names below are imported on first use, so that the store can import `trust` (a leaf module)
without importing the manager, which imports the store."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOME = {
    "Manager": "manager", "Worker": "worker", "WorkerOptions": "worker", "build_report": "report",
    "render_markdown": "report", "feature_metrics": "metrics", "export_markdown": "plans",
    "export_yaml": "plans", "load_plan_file": "plans", "parse_markdown": "plans", "parse_yaml": "plans",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
