"""Metrics API benchmark: a 7-day, 1M-call ledger aggregated from the rollups.

    .venv/bin/python bench/metrics_bench.py --url sqlite:////tmp/mb.db [--calls 1000000] [--no-ledger]
    .venv/bin/python bench/metrics_bench.py --url postgresql://postgres@127.0.0.1:5432/mbench

Generates calls spread over the last 7 days (6 deployments in 3 model groups, 20 keys, 8 projects),
writes them to the ledger in bulk, feeds them through `Rollups` exactly as the ledger writer's
callback does, compacts complete hours, then times the queries the metrics API runs (median of 7).
The database must be empty (a fresh file or database)."""

from __future__ import annotations

import argparse
import random
import statistics
import time

from architect.metrics.rollups import Rollups
from architect.records import CallRecord
from architect.store import Store, open_store

GROUPS = {"fast": ["fast-a", "fast-b"], "strong": ["strong-a", "strong-b"], "cheap": ["cheap-a", "cheap-b"]}


def generate(n: int, now: float, seed: int = 1) -> list[dict[str, object]]:
    rng = random.Random(seed)
    start = now - 7 * 86400
    rows = []
    for i in range(n):
        g = rng.choice(list(GROUPS))
        ok = rng.random() > 0.03
        rows.append(
            {
                "request_id": f"b{i}",
                "ts": start + (i / n) * 7 * 86400,
                "endpoint": "chat",
                "key_id": f"key_{rng.randrange(20)}",
                "project": f"p{rng.randrange(8)}",
                "model": g,
                "model_group": g,
                "deployment": rng.choice(GROUPS[g]),
                "provider": "sim",
                "status": "ok" if ok else "error",
                "http_status": 200 if ok else 502,
                "error_kind": None if ok else "upstream_error",
                "attempts": 1,
                "total_ms": rng.lognormvariate(6.5, 0.7),
                "ttft_ms": rng.lognormvariate(5, 0.5),
                "prompt_tokens": rng.randrange(20, 2000),
                "completion_tokens": rng.randrange(10, 800),
                "cost_usd": rng.random() / 200,
                "baseline_cost_usd": rng.random() / 50,
            }
        )
    return rows


def timed(fn: object, repeat: int = 7) -> tuple[float, object]:
    out = None
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--no-ledger", action="store_true", help="skip writing the raw calls (rollups only)")
    ap.add_argument("--query-only", action="store_true", help="time the queries on an already loaded store")
    a = ap.parse_args()
    store = open_store(a.url, migrate="upgrade")
    now = time.time()
    rollups = Rollups(store.rollups, store.ledger)
    if not a.query_only:
        load(store, rollups, a.calls, now, ledger=not a.no_ledger)
    else:
        now = float(store.rollups.hour_watermark() or now)  # the loaded data ends near here
    report(store, rollups, a.calls, now)


def load(store: Store, rollups: Rollups, calls: int, now: float, *, ledger: bool) -> None:
    t = time.perf_counter()
    rows = generate(calls, now)
    print(f"generated {len(rows):,} calls in {time.perf_counter() - t:.1f}s")
    t = time.perf_counter()
    for i in range(0, len(rows), 20_000):
        batch = rows[i : i + 20_000]
        if ledger:
            store.ledger.record([CallRecord.from_row(r) for r in batch])
        rollups.add(batch)
        if (i // 20_000) % 10 == 9:
            rollups.flush()
    rollups.flush()
    print(f"ledger + rollups written in {time.perf_counter() - t:.1f}s")
    t = time.perf_counter()
    hours = rollups.compact(now)
    print(f"compacted {hours} hours in {time.perf_counter() - t:.1f}s")


def report(store: Store, rollups: Rollups, calls: int, now: float) -> None:
    since = now - 7 * 86400
    cases = {
        "summary 7d by model_group,deployment": lambda: rollups.summary(
            since, now, ["model_group", "deployment"], {}
        ),
        "summary 7d by project": lambda: rollups.summary(since, now, ["project"], {}),
        "summary 7d by key_id, one project": lambda: rollups.summary(
            since, now, ["key_id"], {"project": "p3"}
        ),
        "timeseries 7d step 3600": lambda: rollups.timeseries(since, now, 3600, [], {}),
        "timeseries 24h step 60": lambda: rollups.timeseries(now - 86400, now, 60, [], {}),
    }
    print(f"\n{store.dialect}, {calls:,} calls over 7 days: median of 7 runs")
    for name, fn in cases.items():
        med, out = timed(fn)
        rows_out = out[0] if isinstance(out, tuple) else out
        print(f"  {name:<40} {med * 1000:8.1f} ms   ({len(rows_out)} rows)")  # type: ignore[arg-type]
    store.close()


if __name__ == "__main__":
    main()
