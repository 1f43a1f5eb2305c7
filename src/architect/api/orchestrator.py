"""REST API of the orchestrator (mounted under /api/v1): features, tasks, items, state transitions,
metrics, reports, plan import/export, and an SSE stream of task events.

Features and tasks carry their agent fields (a feature's `repo`, `base`, `base_sha`, `agent`,
`attempt_budget_usd`, `total_budget_usd`, `validator`; a task's `agent` and `budget_usd`),
`GET /features/{ref}/tasks/{key}/attempts` lists an agent task's attempts with their spend, and
`GET /features/{ref}/agents` is the report's agent section alone (what the task board shows). The
budgets and the feature's validator can be patched (agents, `repo` and `base` change by importing
the plan again, where they are checked). A plan naming an agent the server's configuration does not define, a
`repo` that is not a git repository (or a relative one) or a `base` that does not resolve is refused
with a 400 naming the field, before anything is written.

Transitions made here are published on the runtime's event bus (topic "task"). The SSE stream
tails the store's `task_events`, so it carries the events of every worker process, anywhere.
A key limited to some projects only sees (and changes) those projects' features.

Fields that run code (`trust`) are written only by the admin or a key with scope `tasks:execute`:
any other key gets a 403 naming the task and the field, checked before anything is written. Every
write records its principal on the tasks it touches; `POST /features/{ref}/approve` (admin) trusts
tasks written by others.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import Field

from architect.api.deps import AdminDep, PrincipalDep, RuntimeDep
from architect.api.params import (
    INT32_MAX,
    Body,
    FeatureRef,
    Identifier,
    RowId,
    TaskKey,
    Title,
    omitted,
)
from architect.api.routing import RouteIn
from architect.api.spec import EventStream, text_content
from architect.errors import NotFoundInStore, PermissionDenied
from architect.orchestrator.manager import Manager
from architect.orchestrator.metrics import feature_metrics
from architect.orchestrator.plans import check_agent_names, export_markdown, export_yaml, parse_plan_text
from architect.orchestrator.report import agents_section, build_report, render_markdown
from architect.orchestrator.report_agents import attempts_with_usage
from architect.principal import Principal, actor_of
from architect.runtime import Runtime
from architect.store.orchestrator import Row
from architect.trust import (
    changed_feature_exec_fields,
    changed_prompt_fields,
    feature_patch_fields,
    plan_task_fields,
    refuse,
    task_patch_fields,
    writer_for,
)

__all__ = ["router"]

router = APIRouter(tags=["orchestrator"])
T = TypeVar("T")


TaskStatus = Literal["pending", "ready", "running", "succeeded", "failed", "blocked", "cancelled"]
ItemKind = Literal["bug", "decision", "risk", "issue", "blocker"]
Severity = Literal["low", "medium", "high", "critical"]
ItemStatus = Annotated[Identifier, Field(max_length=16)]
USD = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The feature or task is not in a state that allows this"}
}


class PlanIn(Body):
    format: Literal["md", "yaml"]
    text: str = Field(min_length=1)
    project: Identifier | None = None


class FeaturePatch(Body):
    title: Title = omitted()
    spec: str | None = None
    acceptance: list[str] | None = Field(default=None, max_length=1000)
    attempt_budget_usd: USD | None = Field(default=None, description="USD budget of each agent attempt")
    total_budget_usd: USD | None = Field(default=None, description="USD budget of the whole feature")
    validator: str | None = Field(default=None, description="default validator of the feature's agent tasks")


class TaskPatch(Body):
    title: Title = omitted()
    description: str | None = None
    priority: Annotated[int, Field(ge=0, le=10)] = omitted()
    estimate_h: float | None = Field(default=None, ge=0, le=1e6, allow_inf_nan=False)
    role: Annotated[Identifier, Field(max_length=100)] | None = None
    params: dict[str, Any] = omitted()
    validator: str | None = None
    max_attempts: Annotated[int, Field(ge=1, le=100)] = omitted()
    budget_usd: USD | None = Field(default=None, description="USD budget of each attempt")
    route: RouteIn | None = Field(
        default=None,
        description="route settings of its attempts' keys (quality_target, cost_weight, privacy)",
    )


class ApproveIn(Body):
    tasks: list[TaskKey] | None = Field(
        default=None, description="task keys to approve; default every untrusted task of the feature"
    )


class CompleteIn(Body):
    ok: bool = True
    note: str | None = None


class ItemIn(Body):
    kind: ItemKind
    title: Title
    body: str | None = None
    severity: Severity | None = None
    status: ItemStatus = "open"
    task_key: TaskKey | None = None
    date: Annotated[Identifier, Field(max_length=32)] | None = None
    rationale: str | None = None
    impact: str | None = None


class ItemPatch(Body):
    title: Title = omitted()
    body: str | None = None
    severity: Severity | None = None
    status: ItemStatus = omitted()
    rationale: str | None = None
    impact: str | None = None


async def _call(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kw)


async def _feature(m: Manager, ref: str, p: Principal) -> Row:
    f = await _call(m.feature, ref)
    if p.projects is not None and f["project"] not in p.projects:
        raise NotFoundInStore(f"feature {ref!r} not found")  # do not reveal other projects' features
    return f


@router.get("/features")
async def list_features(p: PrincipalDep, runtime: RuntimeDep) -> list[Row]:
    return await _call(runtime.store.tasks.list_features, p.projects)


@router.post("/plans", status_code=201, responses=_CONFLICT)
async def import_plan(body: PlanIn, p: PrincipalDep, runtime: RuntimeDep) -> list[Row]:
    plans = parse_plan_text(body.text, body.format, source="body.text", project=body.project)
    if p.projects is not None:
        bad = sorted({pl["project"] for pl in plans} - set(p.projects))
        if bad:
            raise PermissionDenied(
                f"project: this key may not write to project(s) {', '.join(bad)}", param="project"
            )
    m = runtime.tasks
    writer = writer_for(p)
    if not writer.trusted:
        await _call(_check_plans, m, plans)
    check_agent_names(plans, _agent_names(runtime))
    return await _call(m.import_plans, plans, writer)


def _agent_names(runtime: Runtime) -> set[str]:
    return {a.name for a in runtime.config.all_agents()}


def _plan_field(column: str) -> str:
    """A feature column as a plan names it (both budgets are a plan's `budget_usd`)."""
    return "budget_usd" if column.endswith("budget_usd") else column


def _check_plans(m: Manager, plans: list[Row]) -> None:
    """Refuse (403) a plan that writes fields that run code, before anything is written: a task's
    executable fields, a feature's agent fields, or the prompt fields of an existing feature that
    has prompt tasks."""
    for i, plan in enumerate(plans):
        for t in plan["tasks"]:
            fields = plan_task_fields(t)
            if fields:
                raise refuse(f"task {t['key']}", fields[0], f"features[{i}].tasks.{t['key']}.{fields[0]}")
        try:
            old: Row | None = m.repo.get_feature(plan["slug"])
        except NotFoundInStore:
            old = None
        agent_fields = [_plan_field(f) for f in changed_feature_exec_fields(old, plan)]
        if agent_fields:
            raise refuse(f"feature {plan['slug']}", agent_fields[0], f"features[{i}].{agent_fields[0]}")
        if old is None:
            continue
        written = changed_prompt_fields(old, plan)
        fields = feature_patch_fields(written, {t["executor"] for t in m.repo.tasks(old["id"])})
        if fields:
            raise refuse(f"feature {plan['slug']}", fields[0], f"features[{i}].{fields[0]}")


@router.get("/features/{ref}")
async def get_feature(ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return {**f, "phases": await _call(m.repo.phases, f["id"])}


@router.patch("/features/{ref}")
async def patch_feature(ref: FeatureRef, body: FeaturePatch, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    fields = body.model_dump(exclude_unset=True)
    writer = writer_for(p)
    if not writer.trusted:
        executors = {t["executor"] for t in await _call(m.repo.tasks, f["id"])}
        touched = feature_patch_fields(fields, executors)
        if touched:
            raise refuse(f"feature {f['slug']}", touched[0], touched[0])
    return await _call(m.repo.update_feature, f["id"], fields, m.clock(), writer)


@router.delete("/features/{ref}", status_code=204)
async def delete_feature(ref: FeatureRef, p: AdminDep, runtime: RuntimeDep) -> None:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    await _call(m.repo.delete_feature, f["id"])


@router.get("/features/{ref}/tasks")
async def list_tasks(
    ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep, status: TaskStatus | None = None
) -> list[Row]:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(m.repo.tasks, f["id"], status or None)


@router.get("/features/{ref}/tasks/{key}")
async def get_task(ref: FeatureRef, key: TaskKey, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(m.repo.get_task, f["id"], key)


@router.patch("/features/{ref}/tasks/{key}")
async def patch_task(
    ref: FeatureRef, key: TaskKey, body: TaskPatch, p: PrincipalDep, runtime: RuntimeDep
) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    fields = body.model_dump(exclude_unset=True)
    if "route" in fields:  # only the settings given; an empty object is none
        fields["route"] = {k: v for k, v in (fields["route"] or {}).items() if v is not None} or None
    writer = writer_for(p)
    if not writer.trusted:
        t = await _call(m.repo.get_task, f["id"], key)
        touched = task_patch_fields(t["executor"], fields, fields.get("params"))
        if touched:
            raise refuse(f"task {key}", touched[0], touched[0])
    return await _call(m.repo.update_task, f["id"], key, fields, m.clock(), writer)


@router.get("/features/{ref}/tasks/{key}/attempts")
async def task_attempts(ref: FeatureRef, key: TaskKey, p: PrincipalDep, runtime: RuntimeDep) -> list[Row]:
    """The attempts of an agent task, oldest first: agent, runner, model, key id, worktree, branch,
    base/head/merged SHAs, files and lines changed, commits, validation, outcome, reason, isolation;
    `usage` is the ledger's spend of the attempt's key (`calls`, `cost_usd`, `unpriced`: calls of
    unknown price, which the cost leaves out; `models`: the model groups that answered), and
    `worktree_state` what became of its worktree (`in_use`, `kept` for inspection after a failure,
    `removed` after a merge, `unknown` after a crash, null when none was made)."""
    m = runtime.tasks
    f = await _feature(m, ref, p)
    t = await _call(m.repo.get_task, f["id"], key)
    rows = await _call(m.repo.attempts, t["id"])
    costs = await _call(m.repo.attempt_costs, f["id"]) if rows else []
    return attempts_with_usage(rows, [c for c in costs if c["task_id"] == t["id"]])


@router.get("/features/{ref}/agents")
async def feature_agents(ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    """The agent section of the feature's report (what the task board shows), from the recorded
    attempts and the ledger's calls of each attempt's key. `tasks`: per task that ran as an agent
    attempt, its `agents`, `models`, `attempts`, `first_try`, last `outcome` and `reason`, `cost_usd`
    over `calls` (`unpriced_calls` of unknown price are left out of it), `files_changed`,
    `lines_added`/`lines_removed` and `merged_sha` of the attempt that succeeded, `isolation`;
    `by_agent` and `by_model` (by the first attempt's agent and model group): `tasks`, `first_try`,
    `first_try_success_rate`, `succeeded`, `attempts`, `calls`, `cost_usd`, `unpriced_calls`,
    `cost_per_succeeded_usd`; `commits`: the feature branch's commits in merge order (`sha`, `task`,
    `title`, `agent`, `attempt`). Empty lists until an agent attempt is recorded."""
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(agents_section, m.repo, f["id"])


@router.post("/features/{ref}/approve")
async def approve(
    ref: FeatureRef, p: AdminDep, runtime: RuntimeDep, body: ApproveIn | None = None
) -> list[Row]:
    """Trust the executable fields of the feature's tasks (the given ones, default every untrusted
    one) as set by the admin; tasks a worker blocked as `untrusted_executable` go back to the queue."""
    m = runtime.tasks
    f = await _feature(m, ref, p)
    keys = body.tasks if body is not None else None
    return await _call(m.approve, f["id"], keys, actor_of(p))


@router.post("/features/{ref}/tasks/{key}/cancel", responses=_CONFLICT)
async def cancel_task(ref: FeatureRef, key: TaskKey, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(m.cancel_task, f["id"], key)


@router.post("/features/{ref}/tasks/{key}/retry", responses=_CONFLICT)
async def retry_task(ref: FeatureRef, key: TaskKey, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(m.retry_task, f["id"], key)


@router.post("/features/{ref}/tasks/{key}/complete", responses=_CONFLICT)
async def complete_task(
    ref: FeatureRef, key: TaskKey, p: PrincipalDep, runtime: RuntimeDep, body: CompleteIn | None = None
) -> Row:
    """Complete a ready task by hand (`ok: false` records a failure)."""
    m = runtime.tasks
    f = await _feature(m, ref, p)
    b = body or CompleteIn()
    return await _call(m.finish_manual, f["id"], key, ok=b.ok, note=b.note)


@router.get("/features/{ref}/items")
async def list_items(
    ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep, kind: ItemKind | None = None
) -> list[Row]:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(m.repo.items, f["id"], kind)


@router.post("/features/{ref}/items", status_code=201)
async def add_item(ref: FeatureRef, body: ItemIn, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(m.repo.add_item, f["id"], body.model_dump(), m.clock())


@router.patch("/features/{ref}/items/{item_id}")
async def patch_item(
    ref: FeatureRef, item_id: RowId, body: ItemPatch, p: PrincipalDep, runtime: RuntimeDep
) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(m.repo.update_item, f["id"], item_id, body.model_dump(exclude_unset=True), m.clock())


@router.delete("/features/{ref}/items/{item_id}", status_code=204)
async def delete_item(ref: FeatureRef, item_id: RowId, p: PrincipalDep, runtime: RuntimeDep) -> None:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    await _call(m.repo.delete_item, f["id"], item_id)


@router.get("/features/{ref}/metrics")
async def metrics(ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(feature_metrics, m.repo, f["id"])


@router.get("/features/{ref}/report", response_model=None, responses=text_content("text/markdown"))
async def report(
    ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep, format: Literal["md", "json"] = "json"
) -> Row | PlainTextResponse:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    r = await _call(build_report, m.repo, f["id"])
    return PlainTextResponse(render_markdown(r), media_type="text/markdown") if format == "md" else r


@router.get(
    "/features/{ref}/export",
    response_class=PlainTextResponse,
    responses=text_content("text/markdown", "application/yaml"),
)
async def export(
    ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep, format: Literal["md", "yaml"] = "md"
) -> PlainTextResponse:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    ph, ts = await _call(m.repo.phases, f["id"]), await _call(m.repo.tasks, f["id"])
    if format == "md":
        return PlainTextResponse(export_markdown(f, ph, ts), media_type="text/markdown")
    items = await _call(m.repo.items, f["id"])
    return PlainTextResponse(export_yaml(f, ph, ts, items), media_type="application/yaml")


@router.get(
    "/tasks/events",
    response_class=EventStream,
    responses={**text_content("text/event-stream"), 404: {"description": "No such feature"}},
)
async def task_events(
    request: Request,
    p: PrincipalDep,
    runtime: RuntimeDep,
    feature: FeatureRef | None = None,
    after: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
    poll: Annotated[float, Query(gt=0, le=10, allow_inf_nan=False)] = 0.5,
    once: bool = False,
    last_event_id: Annotated[str | None, Header(description="the id of the last event seen")] = None,
) -> EventStream:
    """Server-sent events: one `task` event per recorded task event, resumable with Last-Event-ID."""
    m = runtime.tasks
    fid = (await _feature(m, feature, p))["id"] if feature else None
    allowed: set[int] | None = None
    if p.projects is not None:
        allowed = {f["id"] for f in await _call(m.repo.list_features, p.projects)}
    resume = last_event_id or ""
    numeric = resume.isascii() and resume.isdigit() and len(resume) <= 10
    start = int(resume) if numeric and int(resume) <= INT32_MAX else after

    async def stream() -> AsyncIterator[bytes]:
        last = start
        yield b": architect task events\n\n"
        while True:
            rows = await _call(m.repo.events, fid, last, 500)
            for e in rows:
                last = e["id"]
                if allowed is not None and e["feature_id"] not in allowed:
                    continue
                yield b"id: %d\nevent: task\ndata: %s\n\n" % (
                    e["id"],
                    orjson.dumps(e, option=orjson.OPT_NON_STR_KEYS),
                )
            if once or await request.is_disconnected():
                return
            if not rows:
                await asyncio.sleep(poll)

    return EventStream(stream(), headers={"cache-control": "no-cache"})


async def _set_status(ref: str, action: str, p: Principal, runtime: Runtime) -> Row:
    m = runtime.tasks
    f = await _feature(m, ref, p)
    return await _call(getattr(m, action), f["id"])


@router.post("/features/{ref}/pause", responses=_CONFLICT)
async def pause_feature(ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    """Stop claiming the feature's tasks (running ones finish)."""
    return await _set_status(ref, "pause", p, runtime)


@router.post("/features/{ref}/resume", responses=_CONFLICT)
async def resume_feature(ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    return await _set_status(ref, "resume", p, runtime)


@router.post("/features/{ref}/cancel", responses=_CONFLICT)
async def cancel_feature(ref: FeatureRef, p: PrincipalDep, runtime: RuntimeDep) -> Row:
    """Cancel the feature and every task that has not finished."""
    return await _set_status(ref, "cancel", p, runtime)
