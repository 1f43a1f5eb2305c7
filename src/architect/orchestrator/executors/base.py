"""The executor interface: `health()` before dispatch, `run(ctx)` for one attempt; `AgentPrograms`
for an executor that can hold back some agents' tasks only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["AgentPrograms", "ExecResult", "Executor", "TaskContext", "tail"]

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
        """None when what this executor needs is available, else what is wrong (then none of its
        tasks is claimed until it is)."""

    async def run(self, ctx: TaskContext) -> ExecResult: ...


@runtime_checkable
class AgentPrograms(Protocol):
    """An executor whose tasks are done by named agents, of which some may lack their program here:
    the worker then holds back only those agents' tasks. A task's agent is its own, else its
    feature's, else `default_agent`."""

    default_agent: str

    def missing(self) -> Mapping[str, str]:
        """Agent name -> why its tasks cannot run here, for each such agent (none: all can)."""
        ...
