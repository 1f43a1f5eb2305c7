"""Markdown plans in and out: the checklist teams already write, with optional YAML front matter.

    ---
    repo: ../shop            # relative to the plan file
    base: main
    agent: aider             # the default agent of `@` tasks
    budget_usd: {attempt: 0.50, total: 5}
    validator: pytest -q
    tasks:                   # per-task fields a line cannot carry
      T002: {budget_usd: 1.5, max_attempts: 5}
    ---
    # Feature: Checkout flow
    Free text up to the first phase is the spec.
    ## Phase 1: Backend
    - [ ] T001 Add cart schema `@`
    - [ ] T002 Pricing service (after T001) `@aider`
    - [ ] T003 Smoke test (after T002) `$ make smoke`
    - [x] T004 Done already
    - [-] T005 Cancelled (never run)

A trailing `` `$ command` `` makes a `command` task, `` `@name` `` an `agent` task run by that agent and
`` `@` `` one run by the feature's default agent; a task with neither is `manual`. The front matter
(`---` ... `---` as the very first lines) holds the feature-level fields (`repo`, `base`, `agent`,
`budget_usd`, `validator`, `acceptance`, `project`, `slug`) and, under `tasks`, per-task fields
(`executor` and `params` for what a line cannot say, e.g. an `llm` task's model and prompt or a
command's `cwd`; `budget_usd`, `validator`, `max_attempts`, `max_crashes`, `priority`, `estimate`,
`role`, `route`); in a file with several features it applies to each. `[-]` marks a cancelled task
(never run). `export_markdown` writes all of them back (`project` unless it is `default`), so
re-importing an export changes no task's executor or params.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from architect.errors import PlanError
from architect.orchestrator.plan_model import KEY, PlanSpec, budget_field, plan_errors, slugify, to_plan

__all__ = ["export_markdown", "parse_markdown"]

_TASK_LINE = re.compile(rf"^\s*[-*]\s+\[(?P<done>[ xX-])\]\s+(?P<key>{KEY})\b[:.]?\s*(?P<rest>.*)$")
_FEATURE = re.compile(r"^#\s+(?:Feature:\s*)?(?P<title>.+?)\s*$")
_PHASE = re.compile(r"^##\s+(?:Phase\s+(?P<num>\d+)\s*[:.-]?\s*)?(?P<title>.*?)\s*$", re.IGNORECASE)
_AFTER = re.compile(r"\(\s*after\s+(?P<deps>[^)]*)\)", re.IGNORECASE)
_COMMAND = re.compile(r"`\$\s*(?P<cmd>[^`]+)`\s*$")
_AGENT = re.compile(r"`@(?P<agent>[^`\s]*)`\s*$")
_FENCE = re.compile(r"^---\s*$")
_END = re.compile(r"^(---|\.\.\.)\s*$")
# Front matter: the feature-level fields, and the per-task fields a task line cannot carry.
FEATURE_FIELDS = ("project", "slug", "acceptance", "repo", "base", "agent", "budget_usd", "validator")
TASK_FIELDS = (
    "executor",
    "params",
    "budget_usd",
    "validator",
    "max_attempts",
    "max_crashes",
    "priority",
    "estimate",
    "role",
    "route",
)
_TASK_DEFAULTS = {"max_attempts": 3, "max_crashes": 3, "priority": 5}


def _front_matter(lines: list[str], source: str) -> tuple[dict[str, Any], int]:
    """The front matter mapping and the number of lines it takes (0 without one)."""
    if not lines or not _FENCE.match(lines[0].lstrip("\ufeff")):
        return {}, 0
    end = next((i for i in range(1, len(lines)) if _END.match(lines[i])), None)
    if end is None:
        raise PlanError(f"{source}:1: front matter: no closing '---' line")
    try:
        data = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 2}" if mark else ""
        raise PlanError(
            f"{source}{where}: front matter: not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(data, dict):
        raise PlanError(f"{source}:2: front matter: expected a mapping of fields, got {type(data).__name__}")
    for k in data:
        if k not in (*FEATURE_FIELDS, "tasks"):
            raise PlanError(
                f"{source}: front matter: {k}: unknown field (known: {', '.join((*FEATURE_FIELDS, 'tasks'))})"
            )
    tasks = data.get("tasks") or {}
    if not isinstance(tasks, dict):
        raise PlanError(f"{source}: front matter: tasks: expected a mapping of task ids to fields")
    for key, fields in tasks.items():
        if not isinstance(fields, dict):
            raise PlanError(f"{source}: front matter: tasks.{key}: expected a mapping of fields")
        for k in fields:
            if k not in TASK_FIELDS:
                raise PlanError(
                    f"{source}: front matter: tasks.{key}.{k}: not a per-task field here "
                    f"(known: {', '.join(TASK_FIELDS)})"
                )
    return data, end + 1


def _task(m: re.Match[str]) -> dict[str, Any]:
    rest = m.group("rest")
    mark = m.group("done")
    task: dict[str, Any] = {"id": m.group("key"), "done": mark in "xX", "cancelled": mark == "-"}
    if a := _AGENT.search(rest):
        task["executor"] = "agent"
        if a.group("agent"):
            task["agent"] = a.group("agent")
        rest = rest[: a.start()]
    elif c := _COMMAND.search(rest):
        task["command"] = c.group("cmd").strip()
        rest = rest[: c.start()]
    if a := _AFTER.search(rest):
        task["after"] = [d.strip() for d in re.split(r"[,\s]+", a.group("deps")) if d.strip()]
        rest = rest[: a.start()] + rest[a.end() :]
    task["title"] = rest.strip() or m.group("key")
    return task


def _apply_front(feats: list[dict[str, Any]], front: Mapping[str, Any], source: str) -> None:
    """Give every feature the front matter's fields, and its tasks their per-task fields."""
    if "slug" in front and len(feats) > 1:
        raise PlanError(f"{source}: front matter: slug names one feature; this file has {len(feats)}")
    overrides: Mapping[str, Mapping[str, Any]] = front.get("tasks") or {}
    used: set[str] = set()
    for f in feats:
        f.update({k: v for k, v in front.items() if k != "tasks"})
        for ph in f["phases"]:
            for t in ph["tasks"]:
                if str(t["id"]) in overrides:
                    t.update(overrides[str(t["id"])])
                    used.add(str(t["id"]))
    unknown = sorted(set(map(str, overrides)) - used)
    if unknown:
        raise PlanError(f"{source}: front matter: tasks.{unknown[0]}: no such task in the plan")


def parse_markdown(
    text: str, *, source: str = "<markdown>", project: str | None = None, base_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Validated plan dicts of a Markdown plan (`base_dir`: where a relative `repo` is resolved)."""
    lines = text.splitlines()
    front, skip = _front_matter(lines, source)
    feats: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for n, line in enumerate(lines[skip:], start=skip + 1):
        if m := _FEATURE.match(line):
            feats.append({"title": m.group("title"), "spec": [], "phases": []})
            last = None
        elif m := _PHASE.match(line):
            if not feats:
                raise PlanError(f"{source}:{n}: a phase before any '# Feature: ...' heading")
            num = m.group("num")
            feats[-1]["phases"].append(
                {"number": int(num) if num else None, "title": m.group("title"), "tasks": []}
            )
            last = None
        elif m := _TASK_LINE.match(line):
            if not feats or not feats[-1]["phases"]:
                raise PlanError(f"{source}:{n}: task {m.group('key')} is outside a '## Phase ...' section")
            last = _task(m)
            feats[-1]["phases"][-1]["tasks"].append(last)
        elif last is not None and line.startswith(("  ", "\t")) and line.strip():
            last["description"] = ((last.get("description") or "") + "\n" + line.strip()).strip()
        elif feats and not feats[-1]["phases"] and line.strip():
            feats[-1]["spec"].append(line.rstrip())
    if not feats:
        raise PlanError(f"{source}: no '# Feature: ...' heading found")
    for f in feats:
        f["spec"] = "\n".join(f["spec"]).strip() or None
    _apply_front(feats, front, source)
    try:
        spec = PlanSpec.model_validate({"project": project or "default", "features": feats})
    except ValidationError as exc:
        raise plan_errors(exc, source) from None
    return [to_plan(f, project or spec.project, base_dir) for f in spec.features]


def front_matter(feature: Mapping[str, Any], tasks: Sequence[Any]) -> dict[str, Any]:
    """The fields of a stored feature (and its tasks) a Markdown plan carries in its front matter."""
    out: dict[str, Any] = {}
    if feature.get("project") and feature["project"] != "default":
        out["project"] = feature["project"]
    if feature.get("slug") and feature["slug"] != slugify(feature["title"]):
        out["slug"] = feature["slug"]
    if feature.get("acceptance"):
        out["acceptance"] = list(feature["acceptance"])
    for k in ("repo", "base", "agent"):
        if feature.get(k):
            out[k] = feature[k]
    if (budget := budget_field(feature)) is not None:
        out["budget_usd"] = budget
    if feature.get("validator"):
        out["validator"] = feature["validator"]
    per_task: dict[str, dict[str, Any]] = {}
    for t in tasks:
        fields = {
            "budget_usd": t.get("budget_usd"), "validator": t.get("validator"), "role": t.get("role"),
            "estimate": t.get("estimate_h"), "max_attempts": t.get("max_attempts"),
            "max_crashes": t.get("max_crashes"), "priority": t.get("priority"), "route": t.get("route"),
        }  # fmt: skip
        kept = {
            **_executor_fields(t),
            **{k: v for k, v in fields.items() if v is not None and v != _TASK_DEFAULTS.get(k)},
        }
        if kept:
            per_task[t["key"]] = kept
    if per_task:
        out["tasks"] = per_task
    return out


def _on_line(t: Mapping[str, Any]) -> bool:
    """Whether the task's line carries its command (`` `$ ...` ``)."""
    return t["executor"] == "command" and bool((t.get("params") or {}).get("command"))


def _executor_fields(t: Mapping[str, Any]) -> dict[str, Any]:
    """The task's `executor` and `params` where its checklist line cannot carry them: the executor
    unless the line implies it (a command, `@agent`, or none for manual), the params but a command
    on the line."""
    out: dict[str, Any] = {}
    implied = "agent" if t["executor"] == "agent" else "command" if _on_line(t) else "manual"
    if t["executor"] != implied:
        out["executor"] = t["executor"]
    params = {k: v for k, v in (t.get("params") or {}).items() if not (k == "command" and _on_line(t))}
    if params:
        out["params"] = params
    return out


def export_markdown(
    feature: Mapping[str, Any], phases: Sequence[Mapping[str, Any]], tasks: Sequence[Any]
) -> str:
    """The plan as a Markdown checklist, `[x]` for succeeded tasks and `[-]` for cancelled ones, with
    front matter for the fields a checklist line cannot carry (none when there are none)."""
    out: list[str] = []
    front = front_matter(feature, tasks)
    if front:
        body = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000)
        out += ["---", *body.rstrip("\n").splitlines(), "---"]
    out += [f"# Feature: {feature['title']}", ""]
    if feature.get("spec"):
        out += [feature["spec"], ""]
    numbers = sorted({p["number"] for p in phases} | {t["phase"] for t in tasks})
    titles = {p["number"]: p["title"] for p in phases}
    for num in numbers:
        out.append(f"## Phase {num}: {titles.get(num, f'Phase {num}')}")
        for t in (t for t in tasks if t["phase"] == num):
            mark = {"succeeded": "x", "cancelled": "-"}.get(t["status"], " ")
            line = f"- [{mark}] {t['key']} {t['title']}"
            if t["deps"]:
                line += f" (after {', '.join(t['deps'])})"
            if _on_line(t):
                line += f" `$ {t['params']['command']}`"
            elif t["executor"] == "agent":
                line += f" `@{t.get('agent') or ''}`"
            out.append(line)
            if t.get("description"):
                out += [f"  {d}" for d in str(t["description"]).splitlines()]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
