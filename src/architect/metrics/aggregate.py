"""Aggregation of ledger rows into per-group / per-deployment statistics (exact percentiles).

Used by `architect stats` over a time window; the rollups of the metrics domain serve large windows.

Cache hits: the ledger records a call answered from the cache with no deployment or provider; the
metrics count it under the deployment and provider `cache` (`CACHE`), and keep its latency out of the
latency and TTFT percentiles, which describe calls not answered by the cache (upstream answers and
errors). Cache-hit latency has its own percentiles (`cache_hit_p50_ms`, ...). `unpriced` counts the
calls whose price is unknown (`cost_source` "unknown"): `cost_usd` leaves them out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from architect.config import CACHE_NAME

__all__ = ["CACHE", "STATS_COLUMNS", "is_cache_hit", "metric_dim", "percentile", "summarise"]

CACHE = CACHE_NAME
_SERVED_BY = frozenset(("deployment", "provider"))

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


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation; None for no values."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def summarise(rows: Iterable[Mapping[str, Any]], by: Sequence[str]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(metric_dim(r, k) for k in by), []).append(r)
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        upstream = [r for r in rs if not is_cache_hit(r)]
        lat = sorted(r["total_ms"] for r in upstream if r.get("total_ms") is not None)
        ttft = sorted(r["ttft_ms"] for r in upstream if r.get("ttft_ms") is not None)
        hit_lat = sorted(r["total_ms"] for r in rs if is_cache_hit(r) and r.get("total_ms") is not None)
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
                "error_rate": len(errors) / len(rs),
                "errors_by_kind": by_kind,
                "p50_ms": percentile(lat, 0.50),
                "p90_ms": percentile(lat, 0.90),
                "p95_ms": percentile(lat, 0.95),
                "p99_ms": percentile(lat, 0.99),
                "ttft_p50_ms": percentile(ttft, 0.50),
                "ttft_p95_ms": percentile(ttft, 0.95),
                "ttft_p99_ms": percentile(ttft, 0.99),
                "cache_hit_p50_ms": percentile(hit_lat, 0.50),
                "cache_hit_p95_ms": percentile(hit_lat, 0.95),
                "cache_hit_p99_ms": percentile(hit_lat, 0.99),
                "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in rs),
                "completion_tokens": sum(r["completion_tokens"] or 0 for r in rs),
                "cached_tokens": sum(r["cached_tokens"] or 0 for r in rs),
                "cost_usd": cost,
                "baseline_cost_usd": baseline if baseline_rows else None,
                "saving_usd": (baseline - cost_of_baselined) if baseline_rows else None,
                "cache_hits": len(rs) - len(upstream),
                "cache_saved_usd": sum(r.get("saved_cost_usd") or 0.0 for r in rs),
                "unpriced": sum(1 for r in rs if r.get("cost_source") == "unknown"),
                "attempts": sum(r["attempts"] or 0 for r in rs),
                "fallbacks": sum(r["fallbacks"] or 0 for r in rs),
            }
        )
    return out
