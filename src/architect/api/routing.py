"""REST API of the auto route's learning under /api/v1: the quality of model groups as the outcomes
say (`GET /quality`) and the route settings of projects (`/projects/{project}/settings`).

Visibility: the admin sees every project; a virtual key sees the projects it is granted (its quality
table adds up only their outcomes and calls; another project's settings are a 404) and the model
groups it may use. Writing a project's settings needs the admin key, or a key granted the project and
scope `tasks:execute` (the settings decide which models, and which providers, a project's calls may
reach)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import Field

from architect.access.visibility import group_usable, project_granted
from architect.api.deps import PrincipalDep, RuntimeDep
from architect.api.params import Body, Filter, Identifier, Timestamp
from architect.config_routing import CostWeight, Privacy, QualityTarget
from architect.errors import NotFoundInStore, PermissionDenied
from architect.principal import TASKS_EXECUTE, Principal, actor_of
from architect.routing.policy import project_route
from architect.routing.quality import quality_rows
from architect.trust import may_execute

__all__ = ["ProjectSettings", "RouteIn", "router"]

router = APIRouter(tags=["routing"])

Project = Annotated[Identifier, Field(description="a project name")]


class RouteIn(Body):
    """Route settings of one level (a project, a task): each may be left out (not set at this level)."""

    quality_target: QualityTarget | None = Field(
        default=None, description="the cheapest candidate whose P(acceptable) reaches this is chosen"
    )
    cost_weight: CostWeight | None = Field(
        default=None, description="instead of a target: maximise P - cost_weight x price / dearest price"
    )
    privacy: Privacy | None = Field(
        default=None, description="local-only: only deployments marked local (the strictest level wins)"
    )


ProjectSettings = RouteIn


def _settings_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "project": row["project"],
        "settings": {
            k: row[k] for k in ("quality_target", "cost_weight", "privacy") if row.get(k) is not None
        },
        "updated_at": row["updated_at"],
        "updated_by": row["updated_by"],
    }


def _readable(p: Principal, project: str) -> None:
    if not project_granted(p, project):
        raise NotFoundInStore(f"project {project!r}: no settings")  # another project's: not revealed


@router.get("/projects/{project}/settings")
async def get_project_settings(project: Project, runtime: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """A project's route settings (empty when none are set)."""
    _readable(p, project)
    row = await asyncio.to_thread(runtime.store.routing.get_settings, project)
    if row is None:
        return {"project": project, "settings": {}, "updated_at": None, "updated_by": None}
    return _settings_out(row)


def _writable(p: Principal, project: str) -> None:
    _readable(p, project)
    if not may_execute(p):
        raise PermissionDenied(
            f"project {project!r}: route settings need the admin key or a key with scope {TASKS_EXECUTE}",
            code="tasks_execute_required",
        )


@router.put("/projects/{project}/settings")
async def put_project_settings(
    project: Project, body: ProjectSettings, runtime: RuntimeDep, p: PrincipalDep
) -> dict[str, Any]:
    """Set a project's route settings (those left out are cleared); audited."""
    _writable(p, project)
    store = runtime.store
    before = await asyncio.to_thread(store.routing.get_settings, project)
    settings = body.model_dump(exclude_none=True)
    row = await asyncio.to_thread(lambda: store.routing.put_settings(project, settings, actor=actor_of(p)))
    runtime.route.set_project(
        project, project_route(row)
    )  # in force here at once, elsewhere within refresh_s
    await asyncio.to_thread(
        store.audit.add_audit, actor_of(p), "project.settings", project,
        before and _settings_out(before)["settings"], settings,
    )  # fmt: skip
    return _settings_out(row)


@router.delete("/projects/{project}/settings")
async def delete_project_settings(project: Project, runtime: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """Clear a project's route settings; audited."""
    _writable(p, project)
    store = runtime.store
    before = await asyncio.to_thread(store.routing.get_settings, project)
    if before is None:
        raise NotFoundInStore(f"project {project!r}: no settings")
    await asyncio.to_thread(store.routing.delete_settings, project)
    runtime.route.set_project(project, None)
    await asyncio.to_thread(
        store.audit.add_audit,
        actor_of(p),
        "project.settings.delete",
        project,
        _settings_out(before)["settings"],
        None,
    )
    return {"project": project, "deleted": True}


def _projects(p: Principal, project: str | None) -> str | list[str] | None:
    """The projects whose outcomes and calls `p` may add up (None: every project)."""
    if project:
        if not project_granted(p, project):
            raise PermissionDenied(f"project: this key may not see project {project!r}", param="project")
        return project
    if p.is_admin or p.projects is None:
        return None
    return sorted(p.projects)


def _candidates(calls: Sequence[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in calls:
        out.setdefault(r["routed_by"], set()).add(r["model_group"])
    return out


@router.get("/quality")
async def quality(
    runtime: RuntimeDep,
    p: PrincipalDep,
    project: Filter | None = None,
    group: Filter | None = None,
    since: Annotated[
        Timestamp | None, Query(description="UNIX seconds; default 30 days ago (auto routes' calls)")
    ] = None,
) -> dict[str, Any]:
    """Per model group and task type: the outcomes (n, successes), the posterior mean, its 90% interval
    and the price-tier prior; per auto group: each candidate's share of its calls, predicted vs observed
    mean (of the calls with an outcome), the explorations' share and cost, and the saving against the
    baseline. `project` narrows to one project's outcomes (shrunk to the global ones), `group` to one
    group (an auto group: its candidates)."""
    projects = _projects(p, project or None)
    lo = since if since is not None else time.time() - 30 * 86400
    repo = runtime.store.routing
    counts = await asyncio.to_thread(repo.quality, project=None if project else projects)
    per_project = await asyncio.to_thread(repo.quality, project=project) if project else []
    autos = await asyncio.to_thread(lambda: repo.auto_calls(lo, project=projects))
    judged = await asyncio.to_thread(lambda: repo.auto_outcomes(lo, project=projects))
    if not p.is_admin and p.models is not None:
        autos = [a for a in autos if group_usable(p, a["routed_by"])]
    cands = _candidates(autos)
    wanted: set[str] | None = None
    if group:
        wanted = cands.get(group, {group})
        autos = [
            a for a in autos if a["routed_by"] == group or (group not in cands and a["model_group"] == group)
        ]
    usable = {g for s in cands.values() for g in s}
    rows = quality_rows(counts, runtime.quality_priors(), project=project or None, project_counts=per_project)
    rows = [
        r for r in rows
        if (wanted is None or r.model_group in wanted)
        and (p.is_admin or p.models is None or group_usable(p, r.model_group) or r.model_group in usable)
    ]  # fmt: skip
    return {
        "scope": runtime.config.routing.scope,
        "project": project or None,
        "since": lo,
        "rows": [
            {**r.as_dict(), "interval": [round(r.low, 4), round(r.high, 4)], "mean": round(r.mean, 4)}
            for r in rows
        ],
        "auto": _auto_view(autos, judged),
    }


def _auto_view(calls: Sequence[dict[str, Any]], judged: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    scores: dict[tuple[str, str], list[float]] = {}
    for j in judged:
        try:
            p = orjson.loads(j["route_scores"] or "{}").get(j["model_group"])
        except (orjson.JSONDecodeError, AttributeError):
            p = None
        acc = scores.setdefault((j["routed_by"], j["model_group"]), [0.0, 0.0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += float(j["outcome"])
        if isinstance(p, int | float):
            acc[2] += 1
            acc[3] += float(p)
    out: dict[str, dict[str, Any]] = {}
    for r in calls:
        a = out.setdefault(
            r["routed_by"],
            {"group": r["routed_by"], "calls": 0, "cost_usd": 0.0, "explored": 0, "explored_cost_usd": 0.0,
             "baseline_cost_usd": 0.0, "saving_usd": 0.0, "candidates": []},
        )  # fmt: skip
        a["calls"] += r["calls"]
        a["cost_usd"] += r["cost_usd"]
        a["explored"] += r["explored"]
        a["explored_cost_usd"] += r["explored_cost_usd"]
        a["baseline_cost_usd"] += r["baseline_cost_usd"]
        a["saving_usd"] += r["baseline_cost_usd"] - r["baselined_cost_usd"]
        n, s, npred, spred = scores.get((r["routed_by"], r["model_group"]), [0.0, 0.0, 0.0, 0.0])
        a["candidates"].append({
            "model_group": r["model_group"], "calls": r["calls"], "cost_usd": round(r["cost_usd"], 8),
            "explored": r["explored"], "outcomes": int(n),
            "observed_mean": round(s / n, 4) if n else None,
            "predicted_mean": round(spred / npred, 4) if npred else None,
        })  # fmt: skip
    for a in out.values():
        total = a["calls"] or 1
        for c in a["candidates"]:
            c["share"] = round(c["calls"] / total, 4)
        a["explored_share"] = round(a["explored"] / total, 4)
        for k in ("cost_usd", "explored_cost_usd", "baseline_cost_usd", "saving_usd"):
            a[k] = round(a[k], 8)
    return [out[k] for k in sorted(out)]
