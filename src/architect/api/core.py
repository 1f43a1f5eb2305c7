"""Core admin/insight endpoints: the ledger (list, one call with attempts), providers and breakers,
the live event stream (SSE), and config reload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query

from architect.access.visibility import (
    breaker_view,
    deployment_view,
    event_view,
    fleet_figures,
    usable_deployments,
    visible,
)
from architect.api.deps import AdminDep, PrincipalDep, RuntimeDep
from architect.api.params import LedgerFilters, Offset, RequestId, Timestamp
from architect.api.spec import EventStream, text_content
from architect.config import load_config
from architect.errors import ConfigError, InvalidRequest, NotFoundInStore, PermissionDenied, StateConflict

__all__ = ["json_columns", "router"]

router = APIRouter(tags=["core"])

KEEP_ALIVE_S = 15.0  # an event stream sends a comment after this long without an event

_TOPIC = "(call|task|breaker|alert)"
_TOPICS = rf"^{_TOPIC}(,{_TOPIC})*$"


_JSON_COLUMNS = ("tags", "route_scores")


def json_columns(row: dict[str, Any]) -> dict[str, Any]:
    """`row` (a `calls` row) with its JSON columns (`tags`, `route_scores`) as objects, in place."""
    for k in _JSON_COLUMNS:
        if isinstance(row.get(k), str):
            row[k] = orjson.loads(row[k])
    return row


def _scope(principal: Any, where: dict[str, Any]) -> dict[str, Any]:
    """A virtual key sees only its own calls (asking for another key's is a 403)."""
    if not principal.is_admin:
        if where.get("key_id", principal.key_id) != principal.key_id:
            raise PermissionDenied("key_id: a key may only see its own calls", param="key_id")
        where["key_id"] = principal.key_id
    return where


@router.get("/calls")
async def list_calls(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    filters: Annotated[LedgerFilters, Query()],
    since: Annotated[Timestamp | None, Query(description="UNIX seconds; default 24 h ago")] = None,
    until: Annotated[Timestamp | None, Query(description="UNIX seconds; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[Offset, Query()] = 0,
) -> dict[str, Any]:
    """Calls in the ledger, newest first, filtered by column equality (an empty window has none)."""
    now = time.time()
    lo, hi = since if since is not None else now - 86400, until if until is not None else now + 1
    rows: list[dict[str, Any]] = []
    if lo < hi:
        rows = await asyncio.to_thread(
            runtime.store.ledger.calls_between,
            lo,
            hi,
            where=_scope(principal, filters.where()),
            limit=limit,
            offset=offset,
            newest_first=True,
        )
    for r in rows:
        r.pop("request_body", None)
        r.pop("response_body", None)
        json_columns(r)
    return {"calls": rows, "limit": limit, "offset": offset}


@router.get("/calls/{request_id}")
async def get_call(request_id: RequestId, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """One call with its attempts (timings, tokens, cost, cache) and its outcome (feedback, task
    validation; None until it has one). A virtual key reads its own call: the one recorded under the id,
    else the newest it sent under the id that another call had taken."""
    key_id = None if principal.is_admin else principal.key_id
    call = await asyncio.to_thread(runtime.store.ledger.get_call, request_id, key_id)
    if call is None or (not principal.is_admin and call.get("key_id") != principal.key_id):
        raise NotFoundInStore(f"no call with request id {request_id}")
    request_id = call["request_id"]  # the id it is recorded under (a reused id's derived one)
    attempts = await asyncio.to_thread(runtime.store.ledger.attempts_for, request_id)
    json_columns(call)
    judged = await asyncio.to_thread(runtime.store.routing.outcome_for, request_id)
    outcome = {k: judged[k] for k in ("outcome", "source", "comment", "ts")} if judged else None
    return {"call": call, "attempts": attempts, "outcome": outcome}


@router.get("/providers")
async def providers(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every deployment's live state: in flight, latency EWMAs, breaker state and history, limits, and
    the ledger queue. A virtual key sees only the deployments of model groups it may use, and none of
    the figures that add up everyone's traffic (in flight, latencies, limit usage, window counts, the
    ledger queue)."""
    if fleet_figures(principal):
        return {
            "deployments": [d.snapshot() for d in runtime.router.deployments()],
            "ledger": {"queue_depth": runtime.ledger.depth, "dropped": runtime.ledger.dropped},
        }
    return {"deployments": [deployment_view(d) for d in usable_deployments(runtime.router, principal)]}


@router.get("/breakers")
async def breakers(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every deployment's circuit breaker: state, window counts, seconds until a probe, transitions.
    A virtual key sees the breakers of the model groups it may use: state, seconds until a probe and
    the transitions, without window counts or the reasons (failure counts of everyone's calls)."""
    if fleet_figures(principal):
        return {
            "breakers": [
                {"deployment": d.name, "group": d.group, **d.breaker.snapshot()}
                for d in runtime.router.deployments()
            ]
        }
    return {
        "breakers": [
            {"deployment": d.name, "group": d.group, **breaker_view(d.breaker)}
            for d in usable_deployments(runtime.router, principal)
        ]
    }


@router.get("/events", response_class=EventStream, responses=text_content("text/event-stream"))
async def events(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    topics: Annotated[
        str | None, Query(description="comma-separated: call, task, breaker, alert", pattern=_TOPICS)
    ] = None,
) -> EventStream:
    """Server-sent events, as they happen (a keep-alive comment after 15 s without one). A virtual key receives only
    events within its scope (`architect.access.visibility.visible`): its own calls, tasks of projects
    it is granted, breakers of model groups it may use, alerts about budgets it may see."""
    wanted = {t.strip() for t in topics.split(",")} if topics else None

    async def stream() -> AsyncIterator[bytes]:
        sub = runtime.events.subscription(wanted)  # before "connected": nothing after it is missed
        loop = asyncio.get_running_loop()
        try:
            yield b": connected\n\n"
            sent = loop.time()
            while True:
                ev = await sub.get(timeout=max(0.0, sent + KEEP_ALIVE_S - loop.time()))
                if ev is None:
                    yield b": keep-alive\n\n"
                elif visible(principal, ev):
                    data = orjson.dumps(event_view(principal, ev))
                    yield b"id: %d\nevent: %s\ndata: %s\n\n" % (ev.id, ev.topic.encode(), data)
                else:
                    continue
                sent = loop.time()
        finally:
            sub.close()

    return EventStream(stream(), headers={"cache-control": "no-cache"})


@router.post("/config/reload", responses={409: {"description": "The server has no config file"}})
async def reload_config(runtime: RuntimeDep, _: AdminDep) -> dict[str, Any]:
    """Re-read the config file and apply it without dropping in-flight calls."""
    if not runtime.config_path:
        raise StateConflict("this server was started without a config file; nothing to reload")
    try:
        cfg = await asyncio.to_thread(load_config, runtime.config_path)
    except ConfigError as exc:
        raise InvalidRequest(str(exc), param="config") from None
    await runtime.reload(cfg)
    return {"reloaded": True, "models": list(runtime.router.groups)}
