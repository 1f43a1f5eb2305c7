"""The executor interface: `health()` before dispatch, `run(ctx)` for one attempt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ExecResult", "Executor", "TaskContext", "tail"]

TAIL_CHARS = 4000


def tail(text: str, n: int = TAIL_CHARS) -> str:
    return text if len(text) <= n else "…" + text[-n:]


@dataclass(slots=True)
class TaskContext:
    """What an executor sees: the task, its feature, and a hook to record its process group."""

    task: Mapping[str, Any]
    feature: Mapping[str, Any]
    on_process: Callable[[int | None], Awaitable[None]] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> Mapping[str, Any]:
        return self.task.get("params") or {}

    def tags(self) -> dict[str, str]:
        return {"project": self.feature["project"], "feature": self.feature["slug"], "task": self.task["key"]}


@dataclass(frozen=True, slots=True)
class ExecResult:
    ok: bool
    result: Any = None
    reason: str | None = None


class Executor(Protocol):
    name: str

    async def health(self) -> str | None:
        """None when what this executor needs is available, else what is wrong."""

    async def run(self, ctx: TaskContext) -> ExecResult: ...
