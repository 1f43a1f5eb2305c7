"""Prometheus `/metrics`: requests, latency and time-to-first-token histograms, tokens and cost
(fed with every call queued for the ledger), plus breaker state, in-flight calls, ledger queue depth
and dropped ledger writes read at scrape time. Labels are bounded by the configuration: model group,
deployment (`cache` for a cache hit) and status; never request ids, keys or prompts. Needs the admin
key when one is set."""

from __future__ import annotations

import asyncio
import copy
import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.utils import floatToGoString
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from architect.errors import GatewayError
from architect.events import EventBus
from architect.gateway.hooks import Authenticate
from architect.gateway.ledger import LedgerWriter
from architect.gateway.routing import Router
from architect.metrics.aggregate import CACHE
from architect.records import CallRecord

__all__ = ["Fleet", "PromMetrics", "routes"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)
_BREAKER = {"closed": 0, "half_open": 1, "open": 2}


class Fleet(Protocol):
    """What the gauges read at scrape time (the runtime; the router changes on a config reload)."""

    @property
    def router(self) -> Router: ...

    @property
    def ledger(self) -> LedgerWriter: ...

    @property
    def events(self) -> EventBus: ...


class _RuntimeCollector:
    def __init__(self, runtime: Fleet) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        rt = self.runtime
        state = GaugeMetricFamily(
            "architect_breaker_state",
            "circuit breaker: 0 closed, 1 half-open, 2 open",
            labels=["model_group", "deployment"],
        )
        inflight = GaugeMetricFamily(
            "architect_deployment_in_flight", "calls in flight", labels=["model_group", "deployment"]
        )
        for d in rt.router.deployments():
            state.add_metric([d.group, d.name], _BREAKER.get(d.breaker.state, 2))
            inflight.add_metric([d.group, d.name], d.in_flight)
        yield state
        yield inflight
        yield GaugeMetricFamily(
            "architect_ledger_queue_depth", "ledger rows waiting to be written", value=rt.ledger.depth
        )
        yield CounterMetricFamily(
            "architect_ledger_dropped",
            "ledger rows dropped because the queue was full",
            value=rt.ledger.dropped,
        )
        yield CounterMetricFamily("architect_ledger_written", "ledger rows written", value=rt.ledger.written)
        yield CounterMetricFamily(
            "architect_ledger_quarantined",
            "ledger rows the database refused, set aside in the quarantine file",
            value=rt.ledger.quarantined,
        )
        yield GaugeMetricFamily(
            "architect_events_dropped", "events dropped by slow subscribers", value=rt.events.dropped
        )


class _Series:
    """Counters and histogram buckets of one (model group, deployment)."""

    __slots__ = ("by_status", "cache_hits", "completion", "cost", "latency", "prompt", "ttft", "unpriced")

    def __init__(self) -> None:
        self.by_status: dict[str, int] = {}
        self.latency = _Hist()
        self.ttft = _Hist()
        self.prompt = 0
        self.completion = 0
        self.cost = 0.0
        self.cache_hits = 0
        self.unpriced = 0  # calls whose price is unknown: `cost` leaves them out


class _Hist:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip((*map(floatToGoString, _LATENCY_BUCKETS), "+Inf"), self.buckets, strict=True):
            running += n
            out.append((bound, float(running)))
        return out


class PromMetrics:
    """A per-runtime registry (no global state). Every call is folded into plain counters here (a few
    dict updates, on the event loop); the Prometheus families are built at scrape time."""

    def __init__(self, runtime: Fleet) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()
        self.registry.register(_LedgerCollector(self))
        self.registry.register(_RuntimeCollector(runtime))

    def observe(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Fold in calls given as ledger rows."""
        for r in rows:
            self.observe_one(CallRecord.from_row(r))

    def observe_one(self, r: CallRecord) -> None:
        hit = r.cache_hit
        key = (r.model_group or "", (CACHE if hit else r.deployment) or "")
        status = r.status or ""
        with self._lock:
            s = self._series.get(key)
            if s is None:
                s = self._series[key] = _Series()
            s.by_status[status] = s.by_status.get(status, 0) + 1
            if (total := r.total_ms) is not None:
                s.latency.observe(total / 1000.0)
            if (ttft := r.ttft_ms) is not None:
                s.ttft.observe(ttft / 1000.0)
            s.prompt += r.prompt_tokens or 0
            s.completion += r.completion_tokens or 0
            s.cost += r.cost_usd or 0.0
            if r.cost_source == "unknown":
                s.unpriced += 1
            if hit:
                s.cache_hits += 1

    def snapshot(self) -> list[tuple[tuple[str, str], _Series]]:
        with self._lock:
            return [(k, copy.deepcopy(v)) for k, v in self._series.items()]

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LedgerCollector:
    def __init__(self, metrics: PromMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        gd = ["model_group", "deployment"]
        requests = CounterMetricFamily("architect_requests", "calls by outcome", labels=[*gd, "status"])
        latency = HistogramMetricFamily(
            "architect_request_duration_seconds", "total call duration", labels=gd
        )
        ttft = HistogramMetricFamily(
            "architect_time_to_first_token_seconds", "time to first token", labels=gd
        )
        tokens = CounterMetricFamily("architect_tokens", "tokens", labels=[*gd, "direction"])
        cost = CounterMetricFamily("architect_cost_usd", "cost in USD", labels=gd)
        unpriced = CounterMetricFamily(
            "architect_unpriced_calls",
            "calls whose price is unknown (architect_cost_usd leaves them out)",
            labels=gd,
        )
        hits: dict[str, int] = {}
        for (group, deployment), s in self.metrics.snapshot():
            for status, n in s.by_status.items():
                requests.add_metric([group, deployment, status], n)
            for family, h in ((latency, s.latency), (ttft, s.ttft)):
                if h.count:
                    family.add_metric([group, deployment], h.cumulative(), h.sum)
            if s.prompt:
                tokens.add_metric([group, deployment, "prompt"], s.prompt)
            if s.completion:
                tokens.add_metric([group, deployment, "completion"], s.completion)
            if s.cost:
                cost.add_metric([group, deployment], s.cost)
            if s.unpriced:
                unpriced.add_metric([group, deployment], s.unpriced)
            if s.cache_hits:
                hits[group] = hits.get(group, 0) + s.cache_hits
        cache_hits = CounterMetricFamily("architect_cache_hits", "cache hits", labels=["model_group"])
        for group, n in hits.items():
            cache_hits.add_metric([group], n)
        yield from (requests, latency, ttft, tokens, cost, unpriced, cache_hits)


def routes(auth: Authenticate, prom: PromMetrics) -> list[Route]:
    """`/metrics` for the admin (the counters of `prom`)."""

    async def metrics(request: Request) -> Response:
        try:
            principal = await auth.authenticate(request.headers.get("authorization"))
        except GatewayError as exc:
            return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
        if not principal.is_admin:
            return JSONResponse(
                {
                    "error": {
                        "message": "/metrics needs the admin key",
                        "type": "permission_error",
                        "param": None,
                        "code": "admin_required",
                    }
                },
                status_code=403,
            )
        body = await asyncio.to_thread(prom.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics)]
