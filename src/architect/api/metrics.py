"""Metrics REST API under /api/v1: aggregates and time series from the rollups, ledger exports (CSV,
JSON), deployment health and alerts. A virtual key only sees its own calls (forced key_id filter)."""

from __future__ import annotations

import asyncio
import csv
import enum
import functools
import io
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from architect.access.visibility import alert_visible, breaker_view, fleet_figures, usable_deployments
from architect.api.core import json_columns
from architect.api.deps import PrincipalDep, RuntimeDep
from architect.api.params import Filter, Filters, LedgerFilters, Seconds, Timestamp
from architect.api.spec import CsvStream, text_content
from architect.errors import InvalidRequest, PermissionDenied
from architect.metrics.rollups import ALL_DIMS, Rollups
from architect.principal import Principal
from architect.runtime import Runtime
from architect.store.ledger import CALL_COLUMNS

__all__ = ["csv_safe", "router"]

router = APIRouter(tags=["metrics"])

GROUPINGS = ("model_group", "deployment", "provider", "key_id", "project", "feature", "task", "endpoint")
FILTERS = (*GROUPINGS, "status", "cache")
_GROUP = f"({'|'.join(GROUPINGS)})"
GroupBy = Annotated[
    str, Query(pattern=rf"^({_GROUP}(,{_GROUP})*)?$", description=f"comma-separated: {', '.join(GROUPINGS)}")
]
CallFilters = Annotated[LedgerFilters, Query()]
_DIM = f"({'|'.join(ALL_DIMS)})"
SeriesGroupBy = Annotated[
    str, Query(pattern=rf"^({_DIM}(,{_DIM})*)?$", description=f"comma-separated: {', '.join(ALL_DIMS)}")
]


class SeriesFilters(Filters):
    """The filters a time series supports: the dimensions of the rollups."""

    model_group: Filter | None = None
    deployment: Filter | None = None
    provider: Filter | None = None
    key_id: Filter | None = None
    project: Filter | None = None


EXPORT_COLUMNS = tuple(c for c in CALL_COLUMNS if c not in ("request_body", "response_body"))
_PAGE = 5000


class Step(enum.IntEnum):
    """Seconds per point of a time series: the rollups' two resolutions."""

    minute = 60
    hour = 3600


MAX_POINTS = 20_000
_JSON_ARRAY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}
}


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with every text cell that a spreadsheet would read as a formula (it starts with = + - @, a
    tab or a carriage return) prefixed with a single quote, as OWASP advises against CSV injection.
    Numbers are left alone: a negative number is a number, not text."""
    return {
        k: ("'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v) for k, v in row.items()
    }


def _filters(filters: Filters, principal: Principal) -> dict[str, Any]:
    where: dict[str, Any] = filters.where()
    if not principal.is_admin:
        if where.get("key_id", principal.key_id) != principal.key_id:
            raise PermissionDenied("key_id: a key may only see its own calls", param="key_id")
        where["key_id"] = principal.key_id
    return where


def _group_by(text: str) -> list[str]:
    return [k for k in text.split(",") if k]  # the pattern of `GroupBy` checked the names


def _window(since: float | None, until: float | None, default_s: float) -> tuple[float, float]:
    """The window asked for; `since >= until` is an empty window (no rows, no points)."""
    now = time.time()
    lo = since if since is not None else now - default_s
    hi = until if until is not None else now
    return lo, hi


async def _fresh(runtime: Runtime) -> Rollups:
    """This process's rollups, with what is pending written, so a query sees its own latest calls."""
    await asyncio.to_thread(runtime.ledger.flush)
    await asyncio.to_thread(runtime.rollups.flush)
    return runtime.rollups


@router.get("/metrics/summary")
async def summary(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    filters: CallFilters,
    since: Annotated[Timestamp | None, Query(description="UNIX seconds; default 24 h ago")] = None,
    until: Annotated[Timestamp | None, Query(description="UNIX seconds; default now")] = None,
    group_by: GroupBy = "model_group",
    percentiles: Annotated[
        bool, Query(description="false: leave latency percentiles out (much faster over long windows)")
    ] = True,
) -> dict[str, Any]:
    """Requests, errors by kind, latency/TTFT percentiles (DDSketch, 1% relative error) of the calls not
    answered by the cache, cache-hit latency percentiles, tokens, cost, baseline cost and saving, cache
    hits, fallbacks per group, and `unpriced`: the calls whose price is unknown, which the cost leaves
    out. Cache hits are grouped under deployment and provider `cache`. Upstream attempts are counted
    under the model group, deployment and provider each one tried (`attempts`, `failed_attempts`,
    `attempt_error_rate`, `attempt_errors_by_kind`); `failovers` counts the calls answered by another
    deployment than the first one tried."""
    lo, hi = _window(since, until, 86400)
    keys = _group_by(group_by)
    where = _filters(filters, principal)
    if lo >= hi:
        rows: list[dict[str, Any]] = []
        (a, b), source = (lo, hi), "rollups"
    else:
        rollups = await _fresh(runtime)
        rows, (a, b), source = await asyncio.to_thread(
            functools.partial(rollups.summary, lo, hi, keys, where, percentiles=percentiles)
        )
    return {
        "since": a,
        "until": b,
        "group_by": keys,
        "filters": where,
        "source": source,
        "rows": rows,
        "baseline": runtime.config.baseline,
    }


@router.get("/metrics/timeseries")
async def timeseries(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    request: Request,
    filters: Annotated[SeriesFilters, Query()],
    since: Annotated[
        Timestamp | None, Query(description="UNIX seconds; default 1 h (step 60) or 7 d ago")
    ] = None,
    until: Annotated[Timestamp | None, Query(description="UNIX seconds; default now")] = None,
    step: Annotated[Step, Query(description="seconds per point")] = Step.minute,
    group_by: SeriesGroupBy = "",
) -> dict[str, Any]:
    """Points for charts, one per `step` (and group when `group_by` is given), at most 20,000; a
    longer window is a 400 naming `since`. Filters and groups are the rollups' dimensions; a filter on
    anything else (feature, task, status, cache) is a 400 naming it."""
    other = sorted(set(FILTERS) - set(ALL_DIMS) & set(request.query_params))
    if other:
        raise InvalidRequest(
            f"{other[0]}: a time series is filtered only by {', '.join(ALL_DIMS)}", param=other[0]
        )
    lo, hi = _window(since, until, 3600 if step is Step.minute else 7 * 86400)
    if (hi - lo) / step > MAX_POINTS:
        raise InvalidRequest("since: too many points; use step=3600 or a shorter window", param="since")
    keys = _group_by(group_by)
    where = _filters(filters, principal)
    points: list[dict[str, Any]] = []
    if lo < hi:
        rollups = await _fresh(runtime)
        points = await asyncio.to_thread(rollups.timeseries, lo, hi, int(step), keys, where)
    return {"step": int(step), "group_by": keys, "points": points}


async def _export_rows(
    runtime: Runtime, lo: float, hi: float, where: dict[str, Any], limit: int
) -> AsyncIterator[list[dict[str, Any]]]:
    offset = 0
    while offset < limit:
        page = await asyncio.to_thread(
            runtime.store.ledger.calls_between,
            lo,
            hi,
            columns=EXPORT_COLUMNS,
            where=where,
            limit=min(_PAGE, limit - offset),
            offset=offset,
        )
        if not page:
            return
        yield page
        offset += len(page)
        if len(page) < _PAGE:
            return


@router.get("/export/calls.csv", response_class=CsvStream, responses=text_content("text/csv"))
async def export_csv(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    filters: CallFilters,
    since: Annotated[Timestamp | None, Query(description="UNIX seconds; default 24 h ago")] = None,
    until: Annotated[Timestamp | None, Query(description="UNIX seconds; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> CsvStream:
    """The ledger (without bodies) as CSV, oldest first, filtered like /metrics/summary. Text cells
    that a spreadsheet would run as a formula are written with a leading `'`."""
    lo, hi = _window(since, until, 86400)
    where = _filters(filters, principal)

    async def body() -> AsyncIterator[bytes]:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        w.writeheader()
        async for page in _export_rows(runtime, lo, hi, where, limit):
            w.writerows(csv_safe(r) for r in page)
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
        if buf.tell():
            yield buf.getvalue().encode()

    return CsvStream(body(), headers={"content-disposition": 'attachment; filename="calls.csv"'})


@router.get("/export/calls.json", response_class=StreamingResponse, responses=_JSON_ARRAY)
async def export_json(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    filters: CallFilters,
    since: Annotated[Timestamp | None, Query(description="UNIX seconds; default 24 h ago")] = None,
    until: Annotated[Timestamp | None, Query(description="UNIX seconds; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> StreamingResponse:
    """The ledger (without bodies) as a JSON array, oldest first; `tags` and `route_scores` are
    objects."""
    lo, hi = _window(since, until, 86400)
    where = _filters(filters, principal)

    async def body() -> AsyncIterator[bytes]:
        yield b"["
        first = True
        async for page in _export_rows(runtime, lo, hi, where, limit):
            for r in page:
                yield (b"" if first else b",") + orjson.dumps(
                    json_columns(r), default=str, option=orjson.OPT_NON_STR_KEYS
                )
                first = False
        yield b"]"

    return StreamingResponse(body(), media_type="application/json")


@router.get("/health/deployments")
async def deployment_health(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    window_s: Annotated[Seconds, Query(gt=0, le=7 * 86400)] = 900,
) -> dict[str, Any]:
    """Per deployment over the window: the calls it answered (`requests`, `errors`, `error_rate`,
    `errors_by_kind`, latency), the upstream attempts made on it, answered or not (`attempts`,
    `failed_attempts`, `attempt_error_rate`, `attempt_errors_by_kind`, from the calls' attempt logs),
    `failovers` (calls it answered after another deployment was tried first), breaker state and its
    history.

    A virtual key sees only the deployments of model groups it may use, with the counts and latencies
    of its own calls (`"calls": "own"`) and no live figures of everyone's traffic (in flight, latency
    averages, breaker window counts)."""
    fleet = fleet_figures(principal)
    rollups = await _fresh(runtime)
    now = time.time()
    where = {} if fleet else {"key_id": principal.key_id}
    rows, _, _ = await asyncio.to_thread(
        rollups.summary, now - window_s, now, ["model_group", "deployment"], where
    )
    stats = {(r["model_group"], r["deployment"]): r for r in rows}
    out = []
    for d in usable_deployments(runtime.router, principal):
        s = stats.get((d.group, d.name), {})
        live: dict[str, Any] = {"breaker": breaker_view(d.breaker)}
        if fleet:
            live = {
                "breaker": d.breaker.snapshot(),
                "in_flight": d.in_flight,
                "ewma_ttft_ms": d.ewma_ttft_ms,
                "ewma_total_ms": d.ewma_total_ms,
            }
        out.append(
            {
                "deployment": d.name,
                "model_group": d.group,
                "provider": d.provider,
                "simulated": d.simulated,
                "state": d.breaker.state,
                **live,
                "requests": s.get("requests", 0),
                "errors": s.get("errors", 0),
                "error_rate": s.get("error_rate", 0.0),
                "errors_by_kind": s.get("errors_by_kind", {}),
                "attempts": s.get("attempts", 0),
                "failed_attempts": s.get("failed_attempts", 0),
                "attempt_error_rate": s.get("attempt_error_rate", 0.0),
                "attempt_errors_by_kind": s.get("attempt_errors_by_kind", {}),
                "failovers": s.get("failovers", 0),
                "p50_ms": s.get("p50_ms"),
                "p95_ms": s.get("p95_ms"),
                "p99_ms": s.get("p99_ms"),
            }
        )
    return {"window_s": window_s, "calls": "all" if fleet else "own", "deployments": out}


@router.get("/alerts")
async def alerts(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    since: Annotated[Timestamp, Query()] = 0.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Alert firings and resolutions, newest first. A virtual key sees those about budgets it may see
    (its key's and its granted projects')."""
    rows = await asyncio.to_thread(runtime.store.alerts.list_alert_events, since=since, limit=limit)
    return {"alerts": [r for r in rows if alert_visible(principal, r)]}
