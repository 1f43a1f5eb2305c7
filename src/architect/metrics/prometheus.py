"""Prometheus `/metrics`: requests, latency and time-to-first-token histograms, tokens and cost
(fed from the ledger writer's flushed rows), plus breaker state, in-flight calls, ledger queue depth
and dropped ledger writes read at scrape time. Labels are bounded by the configuration: model group,
deployment and status; never request ids, keys or prompts. Needs the admin key when one is set."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from architect.errors import GatewayError

__all__ = ["PromMetrics", "routes"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)
_BREAKER = {"closed": 0, "half_open": 1, "open": 2}


class _RuntimeCollector:
    def __init__(self, runtime: Any) -> None:
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
        yield GaugeMetricFamily(
            "architect_events_dropped", "events dropped by slow subscribers", value=rt.events.dropped
        )


class PromMetrics:
    """A per-runtime registry (no global state)."""

    def __init__(self, runtime: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model_group", "deployment", "status"]
        self.requests = Counter("architect_requests", "calls by outcome", labels, registry=self.registry)
        self.latency = Histogram(
            "architect_request_duration_seconds",
            "total call duration",
            ["model_group", "deployment"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "architect_time_to_first_token_seconds",
            "time to first token",
            ["model_group", "deployment"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "architect_tokens", "tokens", ["model_group", "deployment", "direction"], registry=self.registry
        )
        self.cost = Counter(
            "architect_cost_usd", "cost in USD", ["model_group", "deployment"], registry=self.registry
        )
        self.cache_hits = Counter(
            "architect_cache_hits", "cache hits", ["model_group"], registry=self.registry
        )
        self.registry.register(_RuntimeCollector(runtime))
        self._lock = threading.Lock()

    def observe(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            for r in rows:
                g, d = r.get("model_group") or "", r.get("deployment") or ""
                self.requests.labels(g, d, r.get("status") or "").inc()
                if r.get("total_ms") is not None:
                    self.latency.labels(g, d).observe(r["total_ms"] / 1000.0)
                if r.get("ttft_ms") is not None:
                    self.ttft.labels(g, d).observe(r["ttft_ms"] / 1000.0)
                if r.get("prompt_tokens"):
                    self.tokens.labels(g, d, "prompt").inc(r["prompt_tokens"])
                if r.get("completion_tokens"):
                    self.tokens.labels(g, d, "completion").inc(r["completion_tokens"])
                if r.get("cost_usd"):
                    self.cost.labels(g, d).inc(r["cost_usd"])
                if (r.get("cache") or "").startswith("hit"):
                    self.cache_hits.labels(g).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def routes(runtime: Any) -> list[Route]:
    async def metrics(request: Request) -> Response:
        try:
            principal = await runtime.auth.authenticate(request.headers.get("authorization"))
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
        prom: PromMetrics | None = runtime.extensions.get("prometheus")
        if prom is None:
            prom = runtime.extensions["prometheus"] = PromMetrics(runtime)
        body = await asyncio.to_thread(prom.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics)]
