"""CPU per call of the ledger write (`SQLLedger.record`, the writer thread's work) on a SQLite file,
at several batch sizes (a batch is what one flush writes: rate x flush interval).

    taskset -c 1 .venv/bin/python bench/ledger_bench.py [--calls 12000] [--batches 12,48,200]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

from architect.records import AttemptRecord, CallRecord
from architect.store import open_store

# Request ids as the gateway makes them (a random per-process prefix and a counter), so the unique
# index on request_id is written in order, as in production; random ids (uuid4) cost ~10 us more per
# row here, in B-tree page splits all over the index.
_PREFIX = os.urandom(6).hex()
_IDS = itertools.count(1)


def call_row(ts: float) -> CallRecord:
    attempt = AttemptRecord(
        attempt=1, ts=ts, model_group="mock-model", deployment="mock/mock-model", provider="mock"
    )
    attempt.status, attempt.http_status, attempt.ttft_ms, attempt.total_ms = "ok", 200, 1.2, 1.5
    return CallRecord(
        request_id=f"{_PREFIX}{next(_IDS):010x}",
        ts=ts,
        endpoint="chat",
        model="mock-model",
        model_group="mock-model",
        deployment="mock/mock-model",
        provider="mock",
        attempts=1,
        status="ok",
        http_status=200,
        ttft_ms=1.2,
        total_ms=1.5,
        prompt_tokens=9,
        completion_tokens=16,
        cost_usd=2.85e-5,
        route_reason="only deployment",
        attempt_log=[attempt],
    )


def measure(calls: int, batch: int) -> float:
    store = open_store(f"sqlite:///{tempfile.mkdtemp(prefix='ledger-bench-')}/l.db", migrate="upgrade")
    rows = [call_row(time.time()) for _ in range(calls)]
    t0 = time.thread_time()
    for i in range(0, calls, batch):
        store.ledger.record(rows[i : i + batch])
    cpu = time.thread_time() - t0
    store.close()
    return cpu / calls * 1e6


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=12_000)
    ap.add_argument("--batches", default="12,48,200")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    for b in (int(x) for x in a.batches.split(",")):
        runs = sorted(measure(a.calls, b) for _ in range(a.repeats))
        print(
            f"batch {b:4d}: median {runs[len(runs) // 2]:.1f} us CPU per call (runs: {', '.join(f'{r:.1f}' for r in runs)})"
        )
