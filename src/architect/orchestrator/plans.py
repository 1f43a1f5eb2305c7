"""Plans in and out: Markdown checklists and the full YAML form, validated into feature plans.

Markdown (as teams already write roadmaps)::

    # Feature: Checkout flow
    Free text up to the first phase is the spec.
    ## Phase 1: Backend
    - [ ] T001 Add cart schema
    - [ ] T002 Pricing service (after T001) `$ make test-pricing`
    - [x] T003 Done already

A trailing `` `$ command` `` makes a `command` task; a task without one is `manual` (completed by a
person through the CLI or API). YAML carries everything (executors, priorities, estimates, items).
Both are validated the same way: duplicate ids, unknown dependencies and cycles are refused with a
`PlanError` that names the tasks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from architect.errors import PlanError
from architect.identifiers import first_forbidden
from architect.store.schema import INT32_MAX

__all__ = [
    "EXECUTORS",
    "Name",
    "export_markdown",
    "export_yaml",
    "load_plan_file",
    "parse_markdown",
    "parse_plan_text",
    "parse_yaml",
    "slugify",
    "validate_plan",
]

EXECUTORS = ("command", "python", "llm", "manual")
_KEY = r"[A-Za-z][A-Za-z0-9]*-?\d+[A-Za-z0-9]*"
_TASK_LINE = re.compile(rf"^\s*[-*]\s+\[(?P<done>[ xX])\]\s+(?P<key>{_KEY})\b[:.]?\s*(?P<rest>.*)$")
_FEATURE = re.compile(r"^#\s+(?:Feature:\s*)?(?P<title>.+?)\s*$")
_PHASE = re.compile(r"^##\s+(?:Phase\s+(?P<num>\d+)\s*[:.-]?\s*)?(?P<title>.*?)\s*$", re.IGNORECASE)
_AFTER = re.compile(r"\(\s*after\s+(?P<deps>[^)]*)\)", re.IGNORECASE)
_COMMAND = re.compile(r"`\$\s*(?P<cmd>[^`]+)`\s*$")
_ESTIMATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd]?)\s*$")


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    if not slug:
        raise PlanError(f"feature title {title!r} gives an empty slug; add letters or digits, or set slug")
    return slug[:200]


def _no_control(value: str) -> str:
    i = first_forbidden(value)
    if i is not None:
        raise ValueError(f"must not contain control characters (found U+{ord(value[i]):04X} at position {i})")
    return value


# Names that are stored, shown and filtered on (projects, titles, task ids): no control characters.
Name = Annotated[str, AfterValidator(_no_control)]


def _hours(v: float | str | None) -> float | None:
    if v is None or isinstance(v, int | float):
        return None if v is None else float(v)
    m = _ESTIMATE.match(v)
    if not m:
        raise ValueError(f"expected hours or a duration like 30m, 2h, 1d (8h), got {v!r}")
    return float(m.group(1)) * {"m": 1 / 60, "h": 1.0, "": 1.0, "d": 8.0}[m.group(2)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSpec(_M):
    id: Name = Field(pattern=rf"^{_KEY}$")
    title: Name = Field(min_length=1)
    description: str | None = None
    after: list[Name] = Field(default_factory=list)
    priority: int = Field(default=5, ge=0, le=10)
    estimate: float | str | None = None
    role: Name | None = None
    executor: Literal["command", "python", "llm", "manual"] | None = None
    command: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    validator: str | None = None
    max_attempts: int = Field(default=3, ge=1, le=100)
    max_crashes: int = Field(default=3, ge=0, le=100)
    done: bool = False

    @field_validator("after", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [p.strip() for p in v.split(",") if p.strip()] if isinstance(v, str) else v

    @field_validator("estimate")
    @classmethod
    def _estimate(cls, v: float | str | None) -> float | None:
        return _hours(v)


class PhaseSpec(_M):
    number: int | None = Field(default=None, ge=1)
    title: Name = ""
    tasks: list[TaskSpec] = Field(default_factory=list)


class ItemSpec(_M):
    title: Name = Field(min_length=1)
    body: str | None = None
    severity: Literal["low", "medium", "high", "critical"] | None = None
    status: Name = "open"
    task: Name | None = None
    date: str | None = None
    rationale: str | None = None
    impact: str | None = None


class FeatureSpec(_M):
    title: Name = Field(min_length=1)
    slug: Name | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$")
    project: Name | None = None
    spec: str | None = None
    acceptance: list[str] = Field(default_factory=list)
    phases: list[PhaseSpec] = Field(min_length=1)
    bugs: list[ItemSpec] = Field(default_factory=list)
    decisions: list[ItemSpec] = Field(default_factory=list)
    risks: list[ItemSpec] = Field(default_factory=list)
    issues: list[ItemSpec] = Field(default_factory=list)
    blockers: list[ItemSpec] = Field(default_factory=list)


class PlanSpec(_M):
    project: Name = "default"
    features: list[FeatureSpec] = Field(min_length=1)


def _errors(exc: ValidationError, source: str) -> PlanError:
    lines = []
    for err in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        lines.append(f"{where or '(top level)'}: {err['msg'].removeprefix('Value error, ')}")
    return PlanError(f"{source}: invalid plan:\n  " + "\n  ".join(lines))


def _to_plan(f: FeatureSpec, project: str) -> dict[str, Any]:
    project = f.project or project
    if (i := first_forbidden(project)) is not None:
        raise PlanError(
            f"project: must not contain control characters (found U+{ord(project[i]):04X} at position {i})"
        )
    tasks: list[dict[str, Any]] = []
    phases: list[dict[str, Any]] = []
    for i, ph in enumerate(f.phases, start=1):
        number = ph.number or i
        phases.append({"number": number, "title": ph.title or f"Phase {number}"})
        for t in ph.tasks:
            params = dict(t.params)
            executor = t.executor or ("command" if (t.command or "command" in params) else "manual")
            if t.command:
                params["command"] = t.command
            tasks.append(
                {
                    "key": t.id, "phase": number, "title": t.title, "description": t.description,
                    "deps": list(t.after), "priority": t.priority, "estimate_h": t.estimate, "role": t.role,
                    "executor": executor, "params": params, "validator": t.validator,
                    "max_attempts": t.max_attempts, "max_crashes": t.max_crashes, "done": t.done,
                }
            )  # fmt: skip
    items = [
        {"kind": kind.rstrip("s"), "title": it.title, "body": it.body, "severity": it.severity, "status": it.status,
         "task_key": it.task, "date": it.date, "rationale": it.rationale, "impact": it.impact}
        for kind in ("bugs", "decisions", "risks", "issues", "blockers")
        for it in getattr(f, kind)
    ]  # fmt: skip
    plan = {
        "project": project, "slug": f.slug or slugify(f.title), "title": f.title, "spec": f.spec,
        "acceptance": list(f.acceptance), "phases": phases, "tasks": tasks, "items": items,
    }  # fmt: skip
    validate_plan(plan)
    return plan


_REQUIRED = {"command": "command", "python": "callable", "llm": "prompt"}


# The longest name each column holds (store/schema_orchestrator.py); names hold no control characters.
_FEATURE_NAMES = {"project": 200, "slug": 200, "title": 500}
_PHASE_NAMES = {"title": 500}
_TASK_NAMES = {"key": 64, "title": 500, "role": 100}
_ITEM_NAMES = {"title": 500, "status": 16, "task_key": 64, "date": 32}


def _check_names(plan: Mapping[str, Any]) -> None:
    """Refuse a name that is longer than its column or holds a control character, and a phase number
    that is not a positive 32-bit integer (PlanError naming the feature, row and field)."""
    feature = str(plan.get("title", "?"))[:80]

    def check(row: Mapping[str, Any], limits: Mapping[str, int], where: str) -> None:
        for field, longest in limits.items():
            value = row.get(field)
            if value is None:
                continue
            text = str(value)
            if len(text) > longest:
                raise PlanError(f"feature {feature!r}: {where}{field}: longer than {longest} characters")
            at = first_forbidden(text)
            if at is not None:
                raise PlanError(
                    f"feature {feature!r}: {where}{field}: control character U+{ord(text[at]):04X} at {at}"
                )

    check(plan, _FEATURE_NAMES, "")
    for ph in plan.get("phases", ()):
        if not 0 < ph["number"] <= INT32_MAX:
            raise PlanError(
                f"feature {feature!r}: phase number {ph['number']} is not between 1 and {INT32_MAX}"
            )
        check(ph, _PHASE_NAMES, f"phase {ph['number']}: ")
    for t in plan.get("tasks", ()):
        check(t, _TASK_NAMES, f"task {str(t.get('key'))[:64]}: ")
    for it in plan.get("items", ()):
        check(it, _ITEM_NAMES, f"{it.get('kind', 'item')} {str(it.get('title'))[:40]!r}: ")


def validate_plan(plan: Mapping[str, Any]) -> None:
    """Refuse names that do not fit their columns, duplicate ids, missing executor parameters, unknown
    dependencies and cycles."""
    _check_names(plan)
    title = plan.get("title", "?")
    seen: dict[str, int] = {}
    for t in plan["tasks"]:
        if t["key"] in seen:
            raise PlanError(
                f"feature {title!r}: task {t['key']} is defined twice (phases {seen[t['key']]} and {t['phase']})"
            )
        seen[t["key"]] = t["phase"]
        need = _REQUIRED.get(t["executor"])
        if need and not t["params"].get(need):
            raise PlanError(
                f"feature {title!r}: task {t['key']}: executor {t['executor']!r} needs params.{need}"
            )
    for t in plan["tasks"]:
        for d in t["deps"]:
            if d == t["key"]:
                raise PlanError(f"feature {title!r}: task {d} depends on itself")
            if d not in seen:
                raise PlanError(f"feature {title!r}: task {t['key']} depends on unknown task {d}")
    deps = {t["key"]: list(t["deps"]) for t in plan["tasks"]}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for start in deps:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            key, i = stack.pop()
            if i == 0:
                state[key] = 1
                path.append(key)
            if i < len(deps[key]):
                stack.append((key, i + 1))
                nxt = deps[key][i]
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt) :], nxt]
                    raise PlanError(f"feature {title!r}: dependency cycle: {' → '.join(cycle)}")
                if not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[key] = 2
                path.pop()


def parse_yaml(text: str, *, source: str = "<yaml>", project: str | None = None) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise PlanError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise PlanError(f"{source}: expected a mapping with 'features' (or one feature) at the top level")
    if "features" not in data:
        data = {"project": data.pop("project", "default"), "features": [data]}
    try:
        spec = PlanSpec.model_validate(data)
    except ValidationError as exc:
        raise _errors(exc, source) from None
    return [_to_plan(f, project or spec.project) for f in spec.features]


def parse_markdown(
    text: str, *, source: str = "<markdown>", project: str | None = None
) -> list[dict[str, Any]]:
    feats: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for n, line in enumerate(text.splitlines(), start=1):
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
            rest = m.group("rest")
            task: dict[str, Any] = {"id": m.group("key"), "done": m.group("done") != " "}
            if c := _COMMAND.search(rest):
                task["command"] = c.group("cmd").strip()
                rest = rest[: c.start()]
            if a := _AFTER.search(rest):
                task["after"] = [d.strip() for d in re.split(r"[,\s]+", a.group("deps")) if d.strip()]
                rest = rest[: a.start()] + rest[a.end() :]
            task["title"] = rest.strip() or m.group("key")
            feats[-1]["phases"][-1]["tasks"].append(task)
            last = task
        elif last is not None and line.startswith(("  ", "\t")) and line.strip():
            last["description"] = ((last.get("description") or "") + "\n" + line.strip()).strip()
        elif feats and not feats[-1]["phases"] and line.strip():
            feats[-1]["spec"].append(line.rstrip())
    if not feats:
        raise PlanError(f"{source}: no '# Feature: ...' heading found")
    for f in feats:
        f["spec"] = "\n".join(f["spec"]).strip() or None
    try:
        spec = PlanSpec.model_validate({"project": project or "default", "features": feats})
    except ValidationError as exc:
        raise _errors(exc, source) from None
    return [_to_plan(f, spec.project) for f in spec.features]


def parse_plan_text(text: str, fmt: str, *, source: str, project: str | None = None) -> list[dict[str, Any]]:
    if fmt in ("md", "markdown"):
        return parse_markdown(text, source=source, project=project)
    if fmt in ("yaml", "yml"):
        return parse_yaml(text, source=source, project=project)
    raise PlanError(f"format: expected md or yaml, got {fmt!r}")


def load_plan_file(
    path: str | Path, *, project: str | None = None, fmt: str | None = None
) -> list[dict[str, Any]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{p}: cannot read: {exc.strerror}") from None
    fmt = fmt or ("yaml" if p.suffix.lower() in (".yaml", ".yml") else "md")
    return parse_plan_text(text, fmt, source=str(p), project=project)


def export_markdown(
    feature: Mapping[str, Any], phases: Sequence[Mapping[str, Any]], tasks: Sequence[Any]
) -> str:
    """The plan as a Markdown checklist, `[x]` for succeeded tasks."""
    out = [f"# Feature: {feature['title']}", ""]
    if feature.get("spec"):
        out += [feature["spec"], ""]
    numbers = sorted({p["number"] for p in phases} | {t["phase"] for t in tasks})
    titles = {p["number"]: p["title"] for p in phases}
    for num in numbers:
        out.append(f"## Phase {num}: {titles.get(num, f'Phase {num}')}")
        for t in (t for t in tasks if t["phase"] == num):
            mark = "x" if t["status"] == "succeeded" else " "
            line = f"- [{mark}] {t['key']} {t['title']}"
            if t["deps"]:
                line += f" (after {', '.join(t['deps'])})"
            if t["executor"] == "command" and t["params"].get("command"):
                line += f" `$ {t['params']['command']}`"
            out.append(line)
            if t.get("description"):
                out += [f"  {d}" for d in str(t["description"]).splitlines()]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def export_yaml(
    feature: Mapping[str, Any],
    phases: Sequence[Mapping[str, Any]],
    tasks: Sequence[Any],
    items: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The full plan (executors, priorities, items) as YAML that `parse_yaml` reads back."""
    ph_out = []
    titles = {p["number"]: p["title"] for p in phases}
    for num in sorted({p["number"] for p in phases} | {t["phase"] for t in tasks}):
        ts = []
        for t in (t for t in tasks if t["phase"] == num):
            d: dict[str, Any] = {"id": t["key"], "title": t["title"]}
            for k, v in (("description", t.get("description")), ("after", t["deps"]), ("role", t.get("role")),
                         ("estimate", t.get("estimate_h")), ("validator", t.get("validator"))):  # fmt: skip
                if v:
                    d[k] = v
            d.update(priority=t["priority"], executor=t["executor"], params=t["params"])
            d.update(max_attempts=t["max_attempts"], max_crashes=t["max_crashes"])
            if t["status"] == "succeeded":
                d["done"] = True
            ts.append(d)
        ph_out.append({"number": num, "title": titles.get(num, f"Phase {num}"), "tasks": ts})
    f: dict[str, Any] = {"title": feature["title"], "slug": feature["slug"], "project": feature["project"]}
    if feature.get("spec"):
        f["spec"] = feature["spec"]
    if feature.get("acceptance"):
        f["acceptance"] = feature["acceptance"]
    f["phases"] = ph_out
    for it in items:
        entry = {"title": it["title"], "status": it["status"]}
        for k in ("body", "severity", "date", "rationale", "impact"):
            if it.get(k):
                entry[k] = it[k]
        if it.get("task_key"):
            entry["task"] = it["task_key"]
        f.setdefault(f"{it['kind']}s", []).append(entry)
    return yaml.safe_dump(
        {"project": feature["project"], "features": [f]}, sort_keys=False, allow_unicode=True
    )
