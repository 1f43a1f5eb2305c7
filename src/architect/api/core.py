"""Core admin/insight endpoints: the ledger (list, one call with attempts), providers and breakers,
the live event stream (SSE), and config reload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query

from architect.api.deps import AdminDep, PrincipalDep, RuntimeDep
from architect.api.params import LedgerFilters, Offset, RequestId, Timestamp
from architect.api.spec import EventStream, text_content
from architect.config import load_config
from architect.errors import ConfigError, InvalidRequest, NotFoundInStore, PermissionDenied, StateConflict

__all__ = ["router"]

router = APIRouter(tags=["core"])

_TOPIC = "(call|task|breaker|alert)"
_TOPICS = rf"^{_TOPIC}(,{_TOPIC})*$"


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
    return {"calls": rows, "limit": limit, "offset": offset}


@router.get("/calls/{request_id}")
async def get_call(request_id: RequestId, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """One call with its attempts (timings, tokens, cost, cache)."""
    call = await asyncio.to_thread(runtime.store.ledger.get_call, request_id)
    if call is None or (not principal.is_admin and call.get("key_id") != principal.key_id):
        raise NotFoundInStore(f"no call with request id {request_id}")
    attempts = await asyncio.to_thread(runtime.store.ledger.attempts_for, request_id)
    if call.get("tags"):
        call["tags"] = orjson.loads(call["tags"])
    return {"call": call, "attempts": attempts}


@router.get("/providers")
async def providers(runtime: RuntimeDep, _: PrincipalDep) -> dict[str, Any]:
    """Every deployment's live state: in flight, latency EWMAs, breaker state and history, limits."""
    return {
        "deployments": [d.snapshot() for d in runtime.router.deployments()],
        "ledger": {"queue_depth": runtime.ledger.depth, "dropped": runtime.ledger.dropped},
    }


@router.get("/breakers")
async def breakers(runtime: RuntimeDep, _: PrincipalDep) -> dict[str, Any]:
    """Every deployment's circuit breaker: state, window counts, seconds until a probe, transitions."""
    return {
        "breakers": [
            {"deployment": d.name, "group": d.group, **d.breaker.snapshot()}
            for d in runtime.router.deployments()
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
    """Server-sent events, as they happen (keep-alive comment every 15 s)."""
    wanted = {t.strip() for t in topics.split(",")} if topics else None

    async def stream() -> AsyncIterator[bytes]:
        yield b": connected\n\n"
        sub = runtime.events.subscribe(wanted).__aiter__()
        while True:
            try:
                ev = await asyncio.wait_for(anext(sub), timeout=15)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            except StopAsyncIteration:  # the bus closed (shutdown): end the stream
                return
            if not principal.is_admin and ev.data.get("key_id") not in (None, principal.key_id):
                continue
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (ev.id, ev.topic.encode(), orjson.dumps(ev.data))

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
