"""Plans in and out: Markdown checklists and the full YAML form, validated into feature plans.

Markdown (as teams already write roadmaps; `plans_md`)::

    ---
    repo: ../shop
    agent: aider
    ---
    # Feature: Checkout flow
    Free text up to the first phase is the spec.
    ## Phase 1: Backend
    - [ ] T001 Add cart schema
    - [ ] T002 Pricing service (after T001) `$ make test-pricing`
    - [ ] T003 Cart API (after T001) `@aider`
    - [x] T004 Done already

A trailing `` `$ command` `` makes a `command` task, `` `@agent` `` (or `` `@` ``, the feature's default
agent) an `agent` task; a task with neither is `manual` (completed by a person through the CLI or
API). The optional front matter holds the feature-level fields. YAML carries everything (executors,
priorities, estimates, items, the agent fields). Both are validated the same way (`plan_model`):
duplicate ids, unknown dependencies and cycles are refused with a `PlanError` that names the tasks,
a wrong field with one that names the field (`features[0].budget_usd.total: must be > 0`).

Feature-level agent fields (YAML)::

    repo: ../shop            # a git repository; a relative path is relative to the plan file
    base: main               # branch or commit the feature branch starts from (default: HEAD)
    agent: aider             # default agent of the feature's agent tasks
    budget_usd: 0.5          # per attempt; or {attempt: 0.5, total: 5}
    validator: pytest -q     # default validator of its tasks

and per task `agent: NAME` (or `executor: agent` for the default), `budget_usd` (per attempt) and
`route: {quality_target: 0.9, cost_weight: 0.2, privacy: local-only}` (any of them: the route settings
of its attempts' keys, docs/routing.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from architect.errors import PlanError
from architect.orchestrator.plan_model import (
    EXECUTORS,
    Name,
    PlanSpec,
    budget_field,
    check_agent_names,
    plan_errors,
    slugify,
    to_plan,
    validate_plan,
)
from architect.orchestrator.plans_md import export_markdown, parse_markdown

__all__ = [
    "EXECUTORS",
    "Name",
    "check_agent_names",
    "export_markdown",
    "export_yaml",
    "load_plan_file",
    "parse_markdown",
    "parse_plan_text",
    "parse_yaml",
    "slugify",
    "validate_plan",
]


def parse_yaml(
    text: str, *, source: str = "<yaml>", project: str | None = None, base_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Validated plan dicts of a YAML plan (`base_dir`: where a relative `repo` is resolved)."""
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
        raise plan_errors(exc, source) from None
    return [to_plan(f, project or spec.project, base_dir) for f in spec.features]


def parse_plan_text(
    text: str, fmt: str, *, source: str, project: str | None = None, base_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Validated plan dicts of a plan in `fmt` (md or yaml); without `base_dir` (a plan sent to the
    API) a relative `repo` is refused."""
    if fmt in ("md", "markdown"):
        return parse_markdown(text, source=source, project=project, base_dir=base_dir)
    if fmt in ("yaml", "yml"):
        return parse_yaml(text, source=source, project=project, base_dir=base_dir)
    raise PlanError(f"format: expected md or yaml, got {fmt!r}")


def load_plan_file(
    path: str | Path, *, project: str | None = None, fmt: str | None = None
) -> list[dict[str, Any]]:
    """Validated plan dicts of a plan file; a relative `repo` is relative to the file's directory."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{p}: cannot read: {exc.strerror}") from None
    fmt = fmt or ("yaml" if p.suffix.lower() in (".yaml", ".yml") else "md")
    return parse_plan_text(text, fmt, source=str(p), project=project, base_dir=p.resolve().parent)


def export_yaml(
    feature: Mapping[str, Any],
    phases: Sequence[Mapping[str, Any]],
    tasks: Sequence[Any],
    items: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The full plan (executors, priorities, agents, budgets, items) as YAML that `parse_yaml` reads back."""
    ph_out = []
    titles = {p["number"]: p["title"] for p in phases}
    for num in sorted({p["number"] for p in phases} | {t["phase"] for t in tasks}):
        ts = []
        for t in (t for t in tasks if t["phase"] == num):
            d: dict[str, Any] = {"id": t["key"], "title": t["title"]}
            for k, v in (("description", t.get("description")), ("after", t["deps"]), ("role", t.get("role")),
                         ("estimate", t.get("estimate_h")), ("validator", t.get("validator")),
                         ("agent", t.get("agent")), ("budget_usd", t.get("budget_usd")),
                         ("route", t.get("route"))):  # fmt: skip
                if v:
                    d[k] = v
            d.update(priority=t["priority"], executor=t["executor"], params=t["params"])
            d.update(max_attempts=t["max_attempts"], max_crashes=t["max_crashes"])
            if t["status"] == "succeeded":
                d["done"] = True
            elif t["status"] == "cancelled":
                d["cancelled"] = True
            ts.append(d)
        ph_out.append({"number": num, "title": titles.get(num, f"Phase {num}"), "tasks": ts})
    f: dict[str, Any] = {"title": feature["title"], "slug": feature["slug"], "project": feature["project"]}
    if feature.get("spec"):
        f["spec"] = feature["spec"]
    if feature.get("acceptance"):
        f["acceptance"] = feature["acceptance"]
    for k in ("repo", "base", "agent"):
        if feature.get(k):
            f[k] = feature[k]
    if (budget := budget_field(feature)) is not None:
        f["budget_usd"] = budget
    if feature.get("validator"):
        f["validator"] = feature["validator"]
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
