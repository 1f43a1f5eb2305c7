"""Aggregation of ledger rows into per-group / per-deployment statistics.

Used by `architect stats` and by summaries grouped or filtered outside the rollup dimensions. Latency
percentiles go through the same sketch as the rollups (`Sketch.quantile`: within 1 % of the value of
rank floor(q * (n - 1))), so the same calls give the same percentiles on every path.

Cache hits: the ledger records a call answered from the cache with no deployment or provider; the
metrics count it under the deployment and provider `cache` (`CACHE`), and keep its latency out of the
latency and TTFT percentiles, which describe calls not answered by the cache (upstream answers and
errors). Cache-hit latency has its own percentiles (`cache_hit_p50_ms`, ...). `unpriced` counts the
calls whose price is unknown (`cost_source` "unknown"): `cost_usd` leaves them out.

Attempts are counted as the rollups count them: each entry of a call's `attempt_log` under the model
group, deployment and provider it tried (`attempts`, `failed_attempts`, `attempt_errors_by_kind`); a
call without a log keeps its `attempts` count; `failovers` counts the calls answered by another
deployment than the first one tried."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from architect.config import CACHE_NAME
from architect.metrics.sketch import Sketch

__all__ = ["CACHE", "STATS_COLUMNS", "is_cache_hit", "metric_dim", "summarise"]

CACHE = CACHE_NAME
_SERVED_BY = frozenset(("deployment", "provider"))
_TRIED = frozenset(("model_group", "deployment", "provider"))  # an attempt's own dimensions

STATS_COLUMNS = (
    "model_group",
    "deployment",
    "provider",
    "status",
    "error_kind",
    "total_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "cache",
    "saved_cost_usd",
    "cost_source",
    "attempts",
    "attempt_log",
    "fallbacks",
    "key_id",
    "project",
    "feature",
    "task",
    "endpoint",
    "simulated",
)


def is_cache_hit(r: Mapping[str, Any]) -> bool:
    return (r.get("cache") or "").startswith("hit")


def metric_dim(r: Mapping[str, Any], name: str) -> Any:
    """A ledger row's value of a metrics dimension: a cache hit's deployment and provider are `CACHE`."""
    if name in _SERVED_BY and is_cache_hit(r):
        return CACHE
    return r.get(name)


def _attempt_log(r: Mapping[str, Any]) -> list[dict[str, Any]]:
    log = r.get("attempt_log")
    if isinstance(log, str | bytes):
        return list(orjson.loads(log))
    return [a if isinstance(a, dict) else a.stored() for a in log or ()]


class _Attempts:
    __slots__ = ("by_kind", "failed", "failovers", "n")

    def __init__(self) -> None:
        self.n = self.failed = self.failovers = 0
        self.by_kind: dict[str, int] = {}


def summarise(rows: Iterable[Mapping[str, Any]], by: Sequence[str]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    tries: dict[tuple[Any, ...], _Attempts] = {}
    for r in rows:
        key = tuple(metric_dim(r, k) for k in by)
        groups.setdefault(key, []).append(r)
        log = _attempt_log(r)
        if not log:
            tries.setdefault(key, _Attempts()).n += r.get("attempts") or 0
            continue
        if r["status"] == "ok" and log[0].get("deployment") != r.get("deployment"):
            tries.setdefault(key, _Attempts()).failovers += 1
        for a in log:  # under the model group, deployment and provider it tried
            t = tries.setdefault(tuple(a.get(k) if k in _TRIED else r.get(k) for k in by), _Attempts())
            t.n += 1
            if a.get("status") == "error":
                t.failed += 1
                kind = a.get("error_kind") or "unknown"
                t.by_kind[kind] = t.by_kind.get(kind, 0) + 1
    for key in tries:
        groups.setdefault(key, [])
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        t = tries.get(key) or _Attempts()
        upstream = [r for r in rs if not is_cache_hit(r)]
        lat = Sketch().extend(r["total_ms"] for r in upstream if r.get("total_ms") is not None)
        ttft = Sketch().extend(r["ttft_ms"] for r in upstream if r.get("ttft_ms") is not None)
        hit_lat = Sketch().extend(
            r["total_ms"] for r in rs if is_cache_hit(r) and r.get("total_ms") is not None
        )
        errors = [r for r in rs if r["status"] != "ok"]
        by_kind: dict[str, int] = {}
        for r in errors:
            by_kind[r.get("error_kind") or "unknown"] = by_kind.get(r.get("error_kind") or "unknown", 0) + 1
        cost = sum(r["cost_usd"] or 0.0 for r in rs)
        baseline_rows = [r for r in rs if r.get("baseline_cost_usd") is not None]
        baseline = sum(r["baseline_cost_usd"] for r in baseline_rows)
        cost_of_baselined = sum(r["cost_usd"] or 0.0 for r in baseline_rows)
        out.append(
            {
                **dict(zip(by, key, strict=True)),
                "requests": len(rs),
                "errors": len(errors),
                "error_rate": len(errors) / len(rs) if rs else 0.0,
                "errors_by_kind": by_kind,
                "p50_ms": lat.quantile(0.50),
                "p90_ms": lat.quantile(0.90),
                "p95_ms": lat.quantile(0.95),
                "p99_ms": lat.quantile(0.99),
                "ttft_p50_ms": ttft.quantile(0.50),
                "ttft_p95_ms": ttft.quantile(0.95),
                "ttft_p99_ms": ttft.quantile(0.99),
                "cache_hit_p50_ms": hit_lat.quantile(0.50),
                "cache_hit_p95_ms": hit_lat.quantile(0.95),
                "cache_hit_p99_ms": hit_lat.quantile(0.99),
                "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in rs),
                "completion_tokens": sum(r["completion_tokens"] or 0 for r in rs),
                "cached_tokens": sum(r["cached_tokens"] or 0 for r in rs),
                "cost_usd": cost,
                "baseline_cost_usd": baseline if baseline_rows else None,
                "saving_usd": (baseline - cost_of_baselined) if baseline_rows else None,
                "cache_hits": len(rs) - len(upstream),
                "cache_saved_usd": sum(r.get("saved_cost_usd") or 0.0 for r in rs),
                "unpriced": sum(1 for r in rs if r.get("cost_source") == "unknown"),
                "attempts": t.n,
                "failed_attempts": t.failed,
                "attempt_error_rate": t.failed / t.n if t.n else 0.0,
                "attempt_errors_by_kind": t.by_kind,
                "failovers": t.failovers,
                "fallbacks": sum(r["fallbacks"] or 0 for r in rs),
            }
        )
    return out
