"""The prompt an agent gets for one attempt: the task (title, description), its feature (title, spec,
acceptance criteria), what the tasks it depends on changed, the command that validates it, and on a
retry what went wrong last time (the previous attempt's reason and the tail of its failing output).

The text is plain Markdown so that every runner (the builtin agent, Aider's `--message-file`,
`claude -p`, `codex exec`, a script) can take it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Briefing", "DepChange", "render_briefing"]

FEEDBACK_CHARS = 6000


@dataclass(frozen=True, slots=True)
class DepChange:
    """A finished dependency: its id, title and the files its merged commit changed."""

    key: str
    title: str
    files: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Briefing:
    task: Mapping[str, Any]
    feature: Mapping[str, Any]
    validator: str | None
    attempt: int
    deps: Sequence[DepChange] = field(default_factory=tuple)
    previous_reason: str | None = None
    previous_output: str | None = None


def _clip(text: str, n: int = FEEDBACK_CHARS) -> str:
    return text if len(text) <= n else "…" + text[-n:]


def render_briefing(b: Briefing) -> str:
    """The prompt as Markdown; sections without content are left out."""
    t, f = b.task, b.feature
    out = [f"# Task {t['key']}: {t['title']}", ""]
    if t.get("description"):
        out += [str(t["description"]).strip(), ""]
    out += [
        f"This task is part of the feature **{f['title']}** (project {f['project']}).",
        "Work only in the current directory, a git worktree of the project made for this task. "
        "Change the files the task needs; leave unrelated code alone.",
        "",
    ]
    if f.get("spec"):
        out += ["## Feature specification", "", str(f["spec"]).strip(), ""]
    acceptance = list(f.get("acceptance") or [])
    if acceptance:
        out += ["## Acceptance criteria", "", *(f"- {a}" for a in acceptance), ""]
    if b.deps:
        out += ["## Done before this task", ""]
        for d in b.deps:
            files = ", ".join(d.files[:20]) + (" …" if len(d.files) > 20 else "")
            out.append(f"- {d.key} {d.title}" + (f" (changed: {files})" if files else ""))
        out.append("")
    if b.validator:
        out += [
            "## How the work is checked",
            "",
            f"When you are done, this command must succeed in this directory: `{b.validator}`",
            "",
        ]
    if b.attempt > 1 and (b.previous_reason or b.previous_output):
        out += [f"## Attempt {b.attempt}: the previous attempt failed", ""]
        if b.previous_reason:
            out += [f"Reason: {b.previous_reason}", ""]
        if b.previous_output:
            out += ["Its output ended with:", "", "```", _clip(b.previous_output).rstrip(), "```", ""]
        out += ["Fix what made it fail.", ""]
    return "\n".join(out).rstrip() + "\n"
