"""Which task fields run code, who may write them, and how a worker decides whether it may run a task.

Executable fields (this module is their one definition; the API refuses, the store records and the
worker checks with it):

* of every task: a non-`manual` `executor`, every key of `params` (command, callable, prompt, model,
  ...) and the `validator` (a shell command);
* of every task also its `agent`, `budget_usd` and `route` (which agent runs, how much it may spend,
  which models and providers its calls may reach);
* of a task whose text becomes a model's prompt (`PROMPT_EXECUTORS`: `llm`, whose template renders
  them, and `agent`, the coding-agent executor): also the task's `title`, `description` and `role`,
  and its feature's `title`, `spec` and `acceptance`;
* of an `agent` task: every field (any change to it changes what the agent is asked to do);
* of every feature: `repo`, `base`, `agent`, its budgets and `validator` (`AGENT_FEATURE_FIELDS`:
  where agents work, which one, how much they may spend and what checks them).

A principal may write them iff it is the admin (open mode's anonymous local operator counts: open mode
is single-user) or a key granted scope `tasks:execute`; the local CLI working on the store directly
(`LOCAL`) may too, since only the holder of the database can. Each task records who last wrote its
executable fields (`exec_set_by`) and whether that writer was allowed to (`exec_trusted`); a worker
runs only trusted tasks and blocks the others (`UNTRUSTED`) until an admin approves them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from architect.errors import PermissionDenied
from architect.principal import TASKS_EXECUTE, Principal, actor_of

__all__ = [
    "AGENT_FEATURE_FIELDS",
    "HOLD_REASONS",
    "LOCAL",
    "NOT_ALLOWED",
    "PROMPT_EXECUTORS",
    "PROMPT_FEATURE_FIELDS",
    "PROMPT_TASK_FIELDS",
    "UNTRUSTED",
    "CommandPolicy",
    "Writer",
    "changed_feature_exec_fields",
    "changed_prompt_fields",
    "feature_patch_fields",
    "may_execute",
    "plan_task_fields",
    "refuse",
    "task_patch_fields",
    "writer_for",
]

PROMPT_EXECUTORS: Final = frozenset({"llm", "agent"})
PROMPT_TASK_FIELDS: Final = ("title", "description", "role")
PROMPT_FEATURE_FIELDS: Final = ("title", "spec", "acceptance")
# A feature's executable fields, as stored (a plan's `budget_usd` sets both budgets)
AGENT_FEATURE_FIELDS: Final = ("repo", "base", "agent", "attempt_budget_usd", "total_budget_usd", "validator")
AGENT_TASK_FIELDS: Final = ("agent", "budget_usd", "route")  # executable on every task
UNTRUSTED: Final = "untrusted_executable"  # the blocked reason of a task whose writer was not allowed
NOT_ALLOWED: Final = "command_not_allowed"  # the blocked reason of a command outside the allow-list
HOLD_REASONS: Final = frozenset({UNTRUSTED, NOT_ALLOWED})  # blocked until a person acts, not by a dependency


@dataclass(frozen=True, slots=True)
class Writer:
    """Who writes a task: recorded as its `exec_set_by`; `trusted` when it may write executable fields."""

    actor: str
    trusted: bool


LOCAL: Final = Writer("local", True)  # the CLI on the store directly: whoever holds the database


def may_execute(p: Principal) -> bool:
    """The admin (and open mode's local operator) or a key with scope `tasks:execute`."""
    return p.is_admin or TASKS_EXECUTE in p.scopes


def writer_for(p: Principal) -> Writer:
    return Writer(actor_of(p), may_execute(p))


def plan_task_fields(task: Mapping[str, Any]) -> list[str]:
    """The executable fields a plan's task (as `plans` builds it) contains, most telling first."""
    out = [f"params.{k}" for k in task.get("params") or {}]
    if task.get("validator"):
        out.append("validator")
    executor = task.get("executor") or "manual"
    if executor != "manual":
        out.append("executor")
    out += [f for f in AGENT_TASK_FIELDS if task.get(f) is not None]
    if executor in PROMPT_EXECUTORS:
        out += [f for f in PROMPT_TASK_FIELDS if task.get(f)]
    return out


def task_patch_fields(executor: str, fields: Iterable[str], params: Mapping[str, Any] | None) -> list[str]:
    """The executable fields a change of `fields` on a task with `executor` writes (`params` is the
    new params object when `params` is among them); on an `agent` task, every field is one."""
    names = list(dict.fromkeys(fields))
    out: list[str] = []
    if "params" in names:
        out += [f"params.{k}" for k in params or {}] or ["params"]
    if "validator" in names:
        out.append("validator")
    if "executor" in names:
        out.append("executor")
    out += [f for f in AGENT_TASK_FIELDS if f in names]
    if executor in PROMPT_EXECUTORS:
        out += [f for f in PROMPT_TASK_FIELDS if f in names]
    if executor == "agent":
        out += [f for f in names if f not in out and f != "params"]
    return out


def feature_patch_fields(fields: Iterable[str], executors: Iterable[str]) -> list[str]:
    """The executable fields a change of a feature's `fields` writes, given its tasks' executors: its
    agent fields always, its prompt fields when it has prompt tasks."""
    names = set(fields)
    out: list[str] = [f for f in AGENT_FEATURE_FIELDS if f in names]
    if PROMPT_EXECUTORS & set(executors):
        out += [f for f in PROMPT_FEATURE_FIELDS if f in names]
    return out


def changed_feature_exec_fields(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """The executable fields of a stored feature (`old`; None: a new feature) that a plan's feature
    (`new`) sets to another value."""
    old = old or {}
    return [f for f in AGENT_FEATURE_FIELDS if (old.get(f) or None) != (new.get(f) or None)]


def changed_prompt_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The prompt fields of a stored feature (`old`) that a plan's feature (`new`) changes."""

    def norm(name: str, value: Any) -> Any:
        return list(value or []) if name == "acceptance" else (value or None)

    return [f for f in PROMPT_FEATURE_FIELDS if norm(f, old.get(f)) != norm(f, new.get(f))]


def refuse(what: str, field: str, param: str) -> PermissionDenied:
    """The 403 for a principal that may not write `field` of `what` (e.g. "task T002")."""
    return PermissionDenied(
        f"{what} field {field}: setting fields that run code needs the admin key or a key with scope "
        f"{TASKS_EXECUTE}",
        param=param,
        code="tasks_execute_required",
    )


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """A worker's allow-list of shell commands: each pattern must match a whole command
    (`re.fullmatch`). Empty: every command is allowed."""

    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, patterns: Sequence[str]) -> CommandPolicy:
        return cls(tuple(re.compile(p) for p in patterns))

    def refused(self, task: Mapping[str, Any], feature: Mapping[str, Any] | None = None) -> str | None:
        """The first command of `task` (its command, then its validator; an agent task without one
        has its `feature`'s validator) that no pattern allows."""
        if not self.patterns:
            return None
        params = task.get("params") or {}
        commands = [params.get("command")] if task.get("executor") == "command" else []
        validator = task.get("validator")
        if validator is None and feature is not None and task.get("executor") == "agent":
            validator = feature.get("validator")
        for cmd in [*commands, validator]:
            if cmd and not any(p.fullmatch(str(cmd)) for p in self.patterns):
                return str(cmd)
        return None
