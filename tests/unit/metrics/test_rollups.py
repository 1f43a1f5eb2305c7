"""Rollups: aggregates from minute and compacted hour rows agree with an exact scan of the ledger."""

from __future__ import annotations

import random
import threading

import pytest
from tests.helpers import record_rows

from architect.metrics.aggregate import is_cache_hit, metric_dim, summarise
from architect.metrics.rollups import Rollups
from architect.metrics.sketch import RELATIVE_ACCURACY
from architect.store import Store

T0 = 1_700_000_000 - 1_700_000_000 % 3600  # an hour boundary


def _rows(n: int, span_s: int, seed: int = 3) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ok = rng.random() > 0.1
        group = rng.choice(["fast", "strong"])
        cache = rng.choice([None, "miss", "hit-l1"]) if ok else None
        hit = cache == "hit-l1"  # answered from the cache: no deployment, no first token from upstream
        out.append(
            {
                "request_id": f"r{i}",
                "ts": T0 + rng.uniform(0, span_s),
                "endpoint": "chat",
                "model": group,
                "model_group": group,
                "deployment": None if hit else f"{group}-{rng.choice('ab')}",
                "provider": None if hit else "p",
                "key_id": rng.choice(["k1", "k2", None]),
                "project": rng.choice(["shop", "blog"]),
                "status": "ok" if ok else "error",
                "http_status": 200 if ok else 502,
                "error_kind": None if ok else rng.choice(["timeout", "upstream_error"]),
                "total_ms": rng.lognormvariate(0, 0.5) if hit else rng.lognormvariate(6, 0.8),
                "ttft_ms": None if hit else rng.lognormvariate(5, 0.5),
                "prompt_tokens": rng.randint(5, 500),
                "completion_tokens": rng.randint(1, 300),
                "cached_tokens": 0,
                "cost_usd": rng.random() / 100,
                "baseline_cost_usd": rng.random() / 50,
                "cache": cache,
                "saved_cost_usd": 0.0,
                "attempts": rng.randint(1, 3),
                "fallbacks": rng.randint(0, 1),
                # where the cost came from; an unknown price is counted in `unpriced`
                "cost_source": "cache" if hit else rng.choice(["config", "catalogue", "unknown"]),
            }
        )
    return out


@pytest.mark.parametrize(
    "group_by", [["model_group", "deployment"], ["project"], ["key_id", "model_group"], ["provider"]]
)
def test_summary_matches_exact(group_by: list[str]) -> None:
    store = Store.memory()
    rows = _rows(6000, 3 * 3600)
    record_rows(store.ledger, rows)
    r = Rollups(store.rollups, store.ledger, compact_lag_s=0)
    for i in range(0, len(rows), 500):  # as the ledger writer would, in batches
        r.on_flushed(rows[i : i + 500])
    r.flush()
    assert r.compact(now=T0 + 3 * 3600 + 10) >= 2  # the first hours are now hour rows
    since, until = T0 + 1800, T0 + 3 * 3600  # half an hour from minutes, then hour rows, then minutes
    got, (lo, hi), source = r.summary(since, until, group_by, {}, now=T0 + 3 * 3600 + 10)
    assert source == "rollups" and (lo, hi) == (since, until)
    exact = summarise([x for x in rows if since <= x["ts"] < until], group_by)  # type: ignore[operator]
    assert len(got) == len(exact)
    assert sum(g["unpriced"] for g in got) == sum(
        1
        for x in rows
        if since <= x["ts"] < until and x["cost_source"] == "unknown"  # type: ignore[operator]
    )
    assert 0 < sum(g["unpriced"] for g in got) < sum(g["requests"] for g in got)
    for g, e in zip(got, exact, strict=True):
        for k in (
            "requests",
            "errors",
            "errors_by_kind",
            "prompt_tokens",
            "attempts",
            "fallbacks",
            "cache_hits",
            "unpriced",
        ):
            assert g[k] == e[k], k
        assert g["cost_usd"] == pytest.approx(e["cost_usd"])
        assert g["saving_usd"] == pytest.approx(e["saving_usd"])
        mine = [
            x for x in rows if since <= x["ts"] < until and all(metric_dim(x, k) == g[k] for k in group_by)
        ]  # type: ignore[operator]
        for hits, prefix in ((False, ""), (True, "cache_hit_")):
            lat = sorted(x["total_ms"] for x in mine if is_cache_hit(x) == hits)  # type: ignore[type-var]
            for q, name in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
                if not lat:
                    assert g[prefix + name] is None
                    continue
                x = lat[int(q * (len(lat) - 1))]
                assert abs(g[prefix + name] - x) <= RELATIVE_ACCURACY * x + 1e-9


def test_filters_timeseries_and_fallback() -> None:
    store = Store.memory()
    rows = _rows(2000, 2 * 3600, seed=5)
    record_rows(store.ledger, rows)
    r = Rollups(store.rollups, store.ledger)
    r.add(rows)
    r.flush()
    got, _, _ = r.summary(T0, T0 + 7200, ["model_group"], {"project": "shop"})
    assert sum(g["requests"] for g in got) == sum(1 for x in rows if x["project"] == "shop")
    pts = r.timeseries(T0, T0 + 7200, 3600, [], {})
    assert [p["t"] for p in pts] == [T0, T0 + 3600] and sum(p["requests"] for p in pts) == len(rows)
    pts = r.timeseries(T0, T0 + 600, 60, [], {}, now=T0 + 7200)
    assert len(pts) == 10
    # status is not a rollup dimension: exact scan of the ledger
    got, _, source = r.summary(T0, T0 + 7200, ["model_group"], {"status": "error"})
    assert source == "ledger" and sum(g["requests"] for g in got) == sum(
        1 for x in rows if x["status"] == "error"
    )


def test_late_minute_after_compaction_goes_to_hour_rows() -> None:
    store = Store.memory()
    rows = _rows(300, 3600, seed=9)
    r = Rollups(store.rollups, store.ledger, compact_lag_s=0)
    r.add(rows[:200])
    r.flush()
    r.compact(now=T0 + 3 * 3600)  # initialises the watermark
    r.compact(now=T0 + 3 * 3600)
    assert store.rollups.hour_watermark() is not None and store.rollups.hour_watermark() >= T0 + 3600
    r.add(rows[200:])  # arrive late, for an hour already compacted
    r.flush()
    got, _, _ = r.summary(T0, T0 + 3600, ["model_group"], {})
    assert sum(g["requests"] for g in got) == 300


class _SlowRepo:
    """Rollup rows written one batch at a time; the first non-empty batch waits for `release`."""

    def __init__(self) -> None:
        self.writing, self.release = threading.Event(), threading.Event()
        self.written: list[dict[str, object]] = []

    def insert_rollups(self, rows: list[dict[str, object]]) -> None:
        if rows and not self.writing.is_set():
            self.writing.set()
            self.release.wait(5)
        self.written += rows


def test_a_flush_returns_only_after_a_flush_in_flight_has_written() -> None:
    """A query flushes before reading; rows another thread's flush is still writing must be in."""
    repo = _SlowRepo()
    r = Rollups(repo, Store.memory().ledger)  # type: ignore[arg-type]
    r.add(_rows(10, 60))
    other = threading.Thread(target=r.flush)  # the ledger writer's thread, say
    other.start()
    assert repo.writing.wait(5)
    done = threading.Event()
    mine = threading.Thread(target=lambda: (r.flush(), done.set()))
    mine.start()
    assert not done.wait(0.3)  # waits for the write in flight
    repo.release.set()
    other.join(5)
    mine.join(5)
    assert done.is_set() and sum(int(x["requests"]) for x in repo.written if x["dimset"] == 0) == 10  # type: ignore[call-overload]
