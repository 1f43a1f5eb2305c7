"""Admin REST API of the access domain under /api/v1: keys, budgets, the audit log and spend.

Changes need the admin key (`AdminDep`; a virtual key gets 403). Reads are open to any key but a
virtual key sees only its own key, its own budgets (key and project) and its own spend."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from architect.access.visibility import budget_visible
from architect.api.deps import AdminDep, PrincipalDep, RuntimeDep
from architect.api.params import (
    INT32_MAX,
    Body,
    Filter,
    Identifier,
    KeyId,
    Name,
    Names,
    RowId,
    Tags,
    Timestamp,
    Usd,
)
from architect.config_routing import CostWeight, Privacy, QualityTarget
from architect.errors import NotFound, NotFoundInStore, PermissionDenied
from architect.principal import Principal, Scope, actor_of
from architect.routing.policy import RouteSettings

__all__ = ["router"]

router = APIRouter(tags=["access"])

SpendBy = Literal["project", "key_id", "model_group", "deployment", "provider", "feature", "task", "endpoint"]
PerMinute = Annotated[int, Field(ge=1, le=INT32_MAX)]


class RouteBody(Body):
    """Route settings (docs/routing.md, "The auto route"); any subset."""

    quality_target: QualityTarget | None = Field(
        default=None,
        description="an auto group takes the cheapest candidate predicted to reach it",
    )
    cost_weight: CostWeight | None = Field(
        default=None,
        description="instead: the highest P(acceptable) - cost_weight x price / dearest price",
    )
    privacy: Privacy | None = Field(
        default=None, description="`local-only`: the key's calls go only to deployments with `local: true`"
    )

    def stored(self) -> dict[str, object] | None:
        return RouteSettings(self.quality_target, self.cost_weight, self.privacy).as_dict() or None


class KeyUpdate(Body):
    route: RouteBody | None = Field(description="the key's route settings; null or {} removes them")


class KeyCreate(Body):
    name: Name
    budget_usd: Usd | None = None
    budget_period: Literal["day", "month", "total"] = "month"
    rpm: PerMinute | None = None
    tpm: PerMinute | None = None
    models: Names | None = None
    tags: Tags | None = None
    expires_at: Timestamp | None = None
    bodies: Literal["off", "hashed", "full"] | None = None
    projects: Literal["*"] | Names | None = Field(
        default=None,
        description='projects the key may put spend on and see: a list of names or "*" for all '
        "(the project of its default tags is always granted)",
    )
    scopes: list[Scope] | None = Field(
        default=None, description="granted scopes; `tasks:execute` may write the task fields that run code"
    )
    route: RouteBody | None = Field(
        default=None, description="route settings of the key's calls (quality_target, cost_weight, privacy)"
    )


class BudgetSet(Body):
    scope: Literal["key", "project", "feature"]
    target: Identifier
    period: Literal["day", "month", "total"] = "month"
    limit_usd: Usd


def _visible_budget(p: Principal, b: dict[str, Any]) -> bool:
    return budget_visible(p, b["scope"], b["target"])


def _budget_out(b: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "scope", "target", "period", "limit_usd", "spent_usd", "reserved_usd", "remaining_usd")
    return {k: b[k] for k in keys} | {"window_start": b["window_start"]}


@router.get("/keys")
async def list_keys(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    temporary: Annotated[bool, Query(description="also the temporary keys minted for task attempts")] = False,
) -> dict[str, Any]:
    """Virtual keys (never their secrets). A virtual key sees only itself."""
    svc = runtime.keys
    ids = None if principal.is_admin else [principal.key_id or ""]
    return {
        "keys": await asyncio.to_thread(lambda: svc.list(ids, temporary=temporary or not principal.is_admin))
    }


@router.post("/keys", status_code=201)
async def create_key(body: KeyCreate, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Create a key; the response holds the secret, shown only this once."""
    fields = body.model_dump(exclude={"route"})
    route = body.route.stored() if body.route is not None else None
    secret, view = await asyncio.to_thread(
        lambda: runtime.keys.create(actor=actor_of(principal), route=route, **fields)
    )
    if body.budget_usd is not None:
        await runtime.budgets_changed()
    return {"key": secret, **view}


@router.get("/keys/{key_id}")
async def get_key(key_id: KeyId, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    if not principal.is_admin and principal.key_id != key_id:
        raise NotFoundInStore(f"no key with id {key_id!r}")
    return await asyncio.to_thread(runtime.keys.view, key_id)


@router.patch("/keys/{key_id}")
async def update_key(
    key_id: KeyId, body: KeyUpdate, runtime: RuntimeDep, principal: AdminDep
) -> dict[str, Any]:
    """Change a key's route settings (in force on every process within a second)."""
    route = body.route.stored() if body.route is not None else None
    view = await asyncio.to_thread(runtime.keys.set_route, key_id, route, actor=actor_of(principal))
    runtime.key_resolver.invalidate()
    return view


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: KeyId, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Revoke a key: refused on every process sharing the store within a second."""
    view = await asyncio.to_thread(runtime.keys.revoke, key_id, actor=actor_of(principal))
    runtime.key_resolver.invalidate()
    runtime.auth.sessions.drop_key(key_id)  # dashboard sessions opened with it end too
    return view


@router.post("/keys/{key_id}/rotate", responses={409: {"description": "The key is revoked"}})
async def rotate_key(key_id: KeyId, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Replace a key's secret (same id, budgets and limits); the old secret stops working."""
    secret, view = await asyncio.to_thread(runtime.keys.rotate, key_id, actor=actor_of(principal))
    runtime.key_resolver.invalidate()
    runtime.auth.sessions.drop_key(key_id)
    return {"key": secret, **view}


@router.get("/budgets")
async def list_budgets(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Budgets with the spend of their current window."""
    rows = await asyncio.to_thread(runtime.store.budgets.list_budgets)
    return {"budgets": [_budget_out(b) for b in rows if _visible_budget(principal, b)]}


@router.post("/budgets", status_code=201, responses={404: {"description": "No key with the target id"}})
async def set_budget(body: BudgetSet, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Create a budget or change its limit (one per scope, target and period)."""
    store = runtime.store
    if body.scope == "key" and await asyncio.to_thread(store.keys.get_key, body.target) is None:
        raise NotFound(f"target: no key with id {body.target!r}", param="target", code="resource_missing")
    before = next(
        (
            b
            for b in await asyncio.to_thread(store.budgets.list_budgets)
            if (b["scope"], b["target"], b["period"]) == (body.scope, body.target, body.period)
        ),
        None,
    )
    row = await asyncio.to_thread(
        store.budgets.upsert_budget, body.scope, body.target, body.period, body.limit_usd
    )
    await asyncio.to_thread(
        store.audit.add_audit,
        actor_of(principal),
        "budget.set",
        f"{body.scope}:{body.target}:{body.period}",
        before and {"limit_usd": before["limit_usd"]},
        body.model_dump(),
    )
    await runtime.budgets_changed()
    out = next(b for b in await asyncio.to_thread(store.budgets.list_budgets) if b["id"] == row["id"])
    return _budget_out(out)


@router.delete("/budgets/{budget_id}")
async def delete_budget(budget_id: RowId, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Delete a budget and its spend; the deletion and its audit row are one transaction."""
    budgets = runtime.store.budgets
    await asyncio.to_thread(functools.partial(budgets.delete_budget, budget_id, actor=actor_of(principal)))
    await runtime.budgets_changed()
    return {"deleted": budget_id}


@router.get("/audit")
async def audit(
    runtime: RuntimeDep,
    principal: AdminDep,
    since: Annotated[Timestamp, Query()] = 0.0,
    actor: Filter | None = None,
    action: Filter | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The audit log of admin actions, newest first: who, what, when, before and after."""
    rows = await asyncio.to_thread(
        runtime.store.audit.list_audit, since=since, limit=limit, actor=actor or None, action=action or None
    )
    return {"audit": rows}


@router.get("/spend")
async def spend(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    by: SpendBy = "project",
    since: Annotated[Timestamp | None, Query(description="UNIX seconds; default 7 days ago")] = None,
    until: Annotated[Timestamp | None, Query(description="UNIX seconds; default now")] = None,
    project: Filter | None = None,
    key_id: Filter | None = None,
) -> dict[str, Any]:
    """Cost, requests and tokens grouped by a tag or dimension (exact, from the ledger); `unpriced`
    counts the calls whose price is unknown, which the cost leaves out."""
    now = time.time()
    lo = since if since is not None else now - 7 * 86400
    hi = until if until is not None else now + 1
    where: dict[str, Any] = {k: v for k, v in (("project", project), ("key_id", key_id)) if v}
    if not principal.is_admin:
        if key_id and key_id != principal.key_id:
            raise PermissionDenied("a key may only see its own spend", param="key_id")
        where["key_id"] = principal.key_id
    if lo >= hi:
        rows: list[dict[str, Any]] = []
    else:
        rows = await asyncio.to_thread(runtime.store.spend.between, lo, hi, by, where)
    return {"by": by, "since": lo, "until": hi, "rows": rows}
