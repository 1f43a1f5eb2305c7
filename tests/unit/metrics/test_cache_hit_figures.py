"""Cache hits in the figures: counted under the deployment and provider `cache`, their latency kept
out of the latency and TTFT percentiles (which describe calls not answered by the cache) and reported
on its own, alike from minute rollups, compacted hour rows, an exact ledger scan and Prometheus."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from architect.metrics.aggregate import summarise
from architect.metrics.prometheus import PromMetrics
from architect.metrics.rollups import Rollups
from architect.store import Store

T0 = 1_700_000_000 - 1_700_000_000 % 3600


def _call(i: int, hit: bool) -> dict[str, Any]:
    return {
        "request_id": f"r{i}",
        "ts": T0 + 60 + i,
        "endpoint": "chat",
        "model": "fast",
        "model_group": "fast",
        "deployment": None if hit else "fast-a",  # as the ledger records a cache hit
        "provider": None if hit else "sim",
        "key_id": "k1",
        "project": "shop",
        "status": "ok",
        "total_ms": 2.0 if hit else 1000.0,
        "ttft_ms": None if hit else 200.0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cached_tokens": 0,
        "cost_usd": 0.0 if hit else 0.01,
        "baseline_cost_usd": 0.02,
        "cache": "hit-exact" if hit else "miss",
        "saved_cost_usd": 0.01 if hit else 0.0,
        "attempts": 0 if hit else 1,
        "fallbacks": 0,
    }


ROWS = [_call(i, hit=i >= 10) for i in range(40)]  # 10 upstream calls, 30 cache hits


def _check(by: dict[Any, dict[str, Any]], group: Any, requests: int, upstream: bool, hits: bool) -> None:
    g = by[group]
    assert g["requests"] == requests
    if upstream:  # 1% relative accuracy of the sketches
        assert g["p50_ms"] == pytest.approx(1000, rel=0.01) and g["p99_ms"] == pytest.approx(1000, rel=0.01)
        assert g["ttft_p50_ms"] == pytest.approx(200, rel=0.01)
    else:
        assert g["p50_ms"] is None and g["ttft_p50_ms"] is None
    if hits:
        assert g["cache_hit_p50_ms"] == pytest.approx(2, rel=0.01) and g["cache_hits"] == 30
    else:
        assert g["cache_hit_p50_ms"] is None and g["cache_hits"] == 0


def _by(rows: list[dict[str, Any]], key: str | None) -> dict[Any, dict[str, Any]]:
    return {r[key] if key else None: r for r in rows}


@pytest.mark.parametrize("compacted", [False, True])
def test_cache_hits_are_the_cache_and_stay_out_of_upstream_latency(compacted: bool) -> None:
    store = Store.memory()
    r = Rollups(store.rollups, store.ledger, compact_lag_s=0)
    r.on_flushed(ROWS)
    r.flush()
    now = T0 + 3600 + 10
    if compacted:
        r.compact(now=now)
        r.compact(now=now)
        assert store.rollups.hour_watermark() is not None and store.rollups.hour_watermark() >= T0 + 3600
    window = (T0, T0 + 3600)
    exact = {k: summarise(ROWS, [k] if k else []) for k in (None, "deployment", "provider", "project")}
    for source in ("rollups", "ledger"):
        for key in (None, "deployment", "provider", "project"):  # dimension sets 0, 0, 0 and 2
            got = (
                r.summary(*window, [key] if key else [], {}, now=now)[0]
                if source == "rollups"
                else exact[key]
            )
            by = _by(got, key)
            if key in ("deployment", "provider"):
                assert set(by) == {"fast-a" if key == "deployment" else "sim", "cache"}
                _check(by, "cache", 30, upstream=False, hits=True)
                _check(by, "fast-a" if key == "deployment" else "sim", 10, upstream=True, hits=False)
            else:
                _check(by, "shop" if key else None, 40, upstream=True, hits=True)
    # with every dimension (set 1) the cache row keeps its group, key and project
    rows = r.summary(*window, ["model_group", "deployment", "key_id", "project"], {}, now=now)[0]
    assert {(x["deployment"], x["requests"]) for x in rows} == {("fast-a", 10), ("cache", 30)}


def test_prometheus_labels_cache_hits_with_the_cache() -> None:
    rt = SimpleNamespace(
        router=SimpleNamespace(deployments=lambda: []),
        ledger=SimpleNamespace(depth=0, dropped=0, written=0, quarantined=0),
        events=SimpleNamespace(dropped=0),
    )
    prom = PromMetrics(rt)
    prom.observe(ROWS)
    counts = {
        s.labels.get("deployment"): s.value
        for fam in text_string_to_metric_families(prom.render().decode())
        for s in fam.samples
        if s.name == "architect_request_duration_seconds_count"
    }
    assert counts == {"fast-a": 10, "cache": 30}
