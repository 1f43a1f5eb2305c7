"""Pluggable executors: `command` (shell, own process group), `python` (callable by import path),
`llm` (through the gateway with the task's tags). `default_executors` builds the standard set."""

from __future__ import annotations

from architect.orchestrator.executors.base import ExecResult, Executor, TaskContext
from architect.orchestrator.executors.command import CommandExecutor, parse_test_summary, run_validator
from architect.orchestrator.executors.llm import LLMExecutor
from architect.orchestrator.executors.python import PythonExecutor

__all__ = [
    "CommandExecutor",
    "ExecResult",
    "Executor",
    "LLMExecutor",
    "PythonExecutor",
    "TaskContext",
    "default_executors",
    "parse_test_summary",
    "run_validator",
]


def default_executors(gateway_url: str | None = None, gateway_key: str | None = None) -> dict[str, Executor]:
    """command and python always; llm pointing at the gateway (default http://127.0.0.1:8400/v1)."""
    return {
        "command": CommandExecutor(),
        "python": PythonExecutor(),
        "llm": LLMExecutor(gateway_url or "http://127.0.0.1:8400/v1", gateway_key),
    }
