"""The plan model: the validated shape of a plan (pydantic specs), its conversion to the plan dicts the
store imports (`to_plan`), and the checks every plan passes whatever its format (`validate_plan`).

A plan dict mirrors the store's rows: the feature's columns (`project`, `slug`, `title`, `spec`,
`acceptance`, `repo`, `base`, `agent`, `attempt_budget_usd`, `total_budget_usd`, `validator`) plus
`phases`, `tasks` (each with the task columns a plan sets, `agent` and `budget_usd` included) and
`items`. An `agent` task is one with executor `agent`: set by `executor: agent`, by naming an agent
(`agent: aider`), or by `` `@aider` `` / `` `@` `` on a Markdown task line; its agent None means the
feature's default. Every error is a `PlanError` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from architect.config_agents import AGENT_NAME
from architect.config_routing import CostWeight, Privacy, QualityTarget
from architect.errors import PlanError
from architect.identifiers import first_forbidden
from architect.store.schema import INT32_MAX

__all__ = [
    "AGENT_NAME",
    "EXECUTORS",
    "KEY",
    "BudgetSpec",
    "FeatureSpec",
    "ItemSpec",
    "Name",
    "PhaseSpec",
    "PlanSpec",
    "RouteSpec",
    "TaskSpec",
    "budget_field",
    "check_agent_names",
    "plan_errors",
    "slugify",
    "to_plan",
    "validate_plan",
]

EXECUTORS = ("command", "python", "llm", "manual", "agent")
KEY = r"[A-Za-z][A-Za-z0-9]*-?\d+[A-Za-z0-9]*"
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
AgentName = Annotated[str, Field(pattern=AGENT_NAME)]
USD = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]


def _hours(v: float | str | None) -> float | None:
    if v is None or isinstance(v, int | float):
        return None if v is None else float(v)
    m = _ESTIMATE.match(v)
    if not m:
        raise ValueError(f"expected hours or a duration like 30m, 2h, 1d (8h), got {v!r}")
    return float(m.group(1)) * {"m": 1 / 60, "h": 1.0, "": 1.0, "d": 8.0}[m.group(2)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RouteSpec(_M):
    """A task's route settings: the `route` its attempts' keys carry (docs/routing.md): the quality
    target or cost weight and the privacy their calls' `auto` routes use."""

    quality_target: QualityTarget | None = None
    cost_weight: CostWeight | None = None
    privacy: Privacy | None = None

    @model_validator(mode="after")
    def _some(self) -> RouteSpec:
        if self.quality_target is None and self.cost_weight is None and self.privacy is None:
            raise ValueError("give quality_target, cost_weight or privacy")
        return self

    def stored(self) -> dict[str, Any]:
        """As `tasks.route` holds it: only the fields set."""
        return self.model_dump(exclude_none=True)


class TaskSpec(_M):
    id: Name = Field(pattern=rf"^{KEY}$")
    title: Name = Field(min_length=1)
    description: str | None = None
    after: list[Name] = Field(default_factory=list)
    priority: int = Field(default=5, ge=0, le=10)
    estimate: float | str | None = None
    role: Name | None = None
    executor: Literal["command", "python", "llm", "manual", "agent"] | None = None
    command: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    validator: str | None = None
    max_attempts: int = Field(default=3, ge=1, le=100)
    max_crashes: int = Field(default=3, ge=0, le=100)
    agent: AgentName | None = None
    budget_usd: USD | None = None
    route: RouteSpec | None = None
    done: bool = False
    cancelled: bool = False  # cancelled on purpose: never run (exports write cancelled tasks so)

    @field_validator("after", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [p.strip() for p in v.split(",") if p.strip()] if isinstance(v, str) else v

    @field_validator("estimate")
    @classmethod
    def _estimate(cls, v: float | str | None) -> float | None:
        return _hours(v)

    @model_validator(mode="after")
    def _agent_task(self) -> TaskSpec:
        if self.done and self.cancelled:
            raise ValueError("cancelled: a task is either done or cancelled, not both")
        if self.agent is not None and self.executor not in (None, "agent"):
            raise ValueError(f"agent: only an agent task names an agent (executor is {self.executor!r})")
        if self.is_agent and (self.command or "command" in self.params):
            raise ValueError("command: an agent task runs its agent, not a command")
        return self

    @property
    def is_agent(self) -> bool:
        return self.executor == "agent" or self.agent is not None


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


class BudgetSpec(_M):
    """A feature's USD budgets: of each attempt (its key) and of the whole feature. A plan may give a
    number for the attempt budget alone."""

    attempt: USD | None = None
    total: USD | None = None

    @model_validator(mode="after")
    def _some(self) -> BudgetSpec:
        if self.attempt is None and self.total is None:
            raise ValueError("give attempt, total or both (or a number: the budget of each attempt)")
        return self


class FeatureSpec(_M):
    title: Name = Field(min_length=1)
    slug: Name | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$")
    project: Name | None = None
    spec: str | None = None
    acceptance: list[str] = Field(default_factory=list)
    repo: Name | None = Field(default=None, min_length=1, max_length=4096)
    base: Name | None = Field(default=None, min_length=1, max_length=200)
    agent: AgentName | None = None
    budget_usd: BudgetSpec | None = None
    validator: str | None = None
    phases: list[PhaseSpec] = Field(min_length=1)
    bugs: list[ItemSpec] = Field(default_factory=list)
    decisions: list[ItemSpec] = Field(default_factory=list)
    risks: list[ItemSpec] = Field(default_factory=list)
    issues: list[ItemSpec] = Field(default_factory=list)
    blockers: list[ItemSpec] = Field(default_factory=list)

    @field_validator("budget_usd", mode="before")
    @classmethod
    def _number_is_per_attempt(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return {"attempt": v}
        return v

    @field_validator("base")
    @classmethod
    def _not_an_option(cls, v: str | None) -> str | None:
        if v is not None and (v.startswith("-") or v != v.strip()):
            raise ValueError("must be a branch, tag or commit (not starting with '-', no surrounding spaces)")
        return v

    @model_validator(mode="after")
    def _agent_tasks_need_a_repo(self) -> FeatureSpec:
        if self.base is not None and self.repo is None:
            raise ValueError("base: a base needs the feature's repo")
        agents = [t.id for ph in self.phases for t in ph.tasks if t.is_agent]
        if agents and self.repo is None:
            shown = ", ".join(agents[:5]) + (", ..." if len(agents) > 5 else "")
            raise ValueError(f"repo: agent tasks ({shown}) need the feature's repo (a git repository)")
        return self


class PlanSpec(_M):
    project: Name = "default"
    features: list[FeatureSpec] = Field(min_length=1)


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than_equal": "<=", "less_than": "<"}


def _bound(err: Mapping[str, Any]) -> str | None:
    """ "must be > 0" for a number out of its bounds (None for other errors)."""
    op = _BOUNDS.get(err["type"])
    ctx = err.get("ctx") or {}
    if op is None or len(ctx) != 1:
        return None
    (limit,) = ctx.values()
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)
    return f"must be {op} {limit}"


def plan_errors(exc: ValidationError, source: str) -> PlanError:
    """One PlanError listing every validation error with its field path (`features[0].budget_usd.total`)."""
    lines = []
    for err in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        msg = _bound(err) or err["msg"].removeprefix("Value error, ")
        lines.append(f"{where or '(top level)'}: {msg}")
    return PlanError(f"{source}: invalid plan:\n  " + "\n  ".join(lines))


def budget_field(feature: Mapping[str, Any]) -> float | dict[str, float] | None:
    """A stored feature's budgets as a plan writes them: the attempt budget alone as a number, else
    {attempt, total} (None when it has neither)."""
    attempt, total = feature.get("attempt_budget_usd"), feature.get("total_budget_usd")
    if total is None:
        return None if attempt is None else float(attempt)
    return {"total": float(total)} if attempt is None else {"attempt": float(attempt), "total": float(total)}


def _repo_path(repo: str | None, base_dir: Path | None) -> str | None:
    """The repository as an absolute path: a relative one resolves against the plan file's directory
    (a plan without one, such as the API's, must give an absolute path)."""
    if repo is None:
        return None
    p = Path(repo).expanduser()
    if not p.is_absolute():
        if base_dir is None:
            raise PlanError(
                f"repo: {repo!r} is relative; give an absolute path (no plan file to resolve it against)"
            )
        p = base_dir / p
    return str(p.resolve())


def to_plan(f: FeatureSpec, project: str, base_dir: Path | None = None) -> dict[str, Any]:
    """The plan dict of a validated feature (`project`: used when the feature names none; `base_dir`:
    the plan file's directory, which a relative `repo` resolves against)."""
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
            executor = t.executor or (
                "agent" if t.is_agent else "command" if (t.command or "command" in params) else "manual"
            )
            if t.command:
                params["command"] = t.command
            tasks.append(
                {
                    "key": t.id, "phase": number, "title": t.title, "description": t.description,
                    "deps": list(t.after), "priority": t.priority, "estimate_h": t.estimate, "role": t.role,
                    "executor": executor, "params": params, "validator": t.validator,
                    "max_attempts": t.max_attempts, "max_crashes": t.max_crashes, "done": t.done,
                    "cancelled": t.cancelled, "agent": t.agent, "budget_usd": t.budget_usd,
                    "route": t.route.stored() if t.route is not None else None,
                }
            )  # fmt: skip
    items = [
        {"kind": kind.rstrip("s"), "title": it.title, "body": it.body, "severity": it.severity, "status": it.status,
         "task_key": it.task, "date": it.date, "rationale": it.rationale, "impact": it.impact}
        for kind in ("bugs", "decisions", "risks", "issues", "blockers")
        for it in getattr(f, kind)
    ]  # fmt: skip
    budget = f.budget_usd
    plan = {
        "project": project, "slug": f.slug or slugify(f.title), "title": f.title, "spec": f.spec,
        "acceptance": list(f.acceptance), "repo": _repo_path(f.repo, base_dir), "base": f.base,
        "agent": f.agent, "attempt_budget_usd": budget.attempt if budget else None,
        "total_budget_usd": budget.total if budget else None, "validator": f.validator,
        "phases": phases, "tasks": tasks, "items": items,
    }  # fmt: skip
    validate_plan(plan)
    return plan


_REQUIRED = {"command": "command", "python": "callable", "llm": "prompt"}


# The longest name each column holds (store/schema_orchestrator.py); names hold no control characters.
_FEATURE_NAMES = {"project": 200, "slug": 200, "title": 500, "base": 200, "agent": 100}
_PHASE_NAMES = {"title": 500}
_TASK_NAMES = {"key": 64, "title": 500, "role": 100, "agent": 100}
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
    """Refuse names that do not fit their columns, duplicate ids, missing executor parameters, agent
    tasks without a repository, unknown dependencies and cycles."""
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
        if t["executor"] == "agent" and not plan.get("repo"):
            raise PlanError(f"feature {title!r}: repo: agent task {t['key']} needs the feature's repo")
    for t in plan["tasks"]:
        for d in t["deps"]:
            if d == t["key"]:
                raise PlanError(f"feature {title!r}: task {d} depends on itself")
            if d not in seen:
                raise PlanError(f"feature {title!r}: task {t['key']} depends on unknown task {d}")
    _check_cycles(title, {t["key"]: list(t["deps"]) for t in plan["tasks"]})


def _check_cycles(title: str, deps: Mapping[str, Sequence[str]]) -> None:
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


def check_agent_names(plans: Sequence[Mapping[str, Any]], known: Collection[str]) -> None:
    """Refuse a plan naming an agent the configuration does not define (`known`: the configured
    agents' names, the implicit `builtin` included): PlanError naming the feature and field."""
    names = ", ".join(sorted(known)) or "none"
    for i, plan in enumerate(plans):
        where = f"features[{i}] ({plan.get('slug')})"
        if plan.get("agent") and plan["agent"] not in known:
            raise PlanError(f"{where}: agent: unknown agent {plan['agent']!r} (known: {names})")
        for t in plan.get("tasks", ()):
            if t.get("agent") and t["agent"] not in known:
                raise PlanError(
                    f"{where}: tasks[{t['key']}].agent: unknown agent {t['agent']!r} (known: {names})"
                )
