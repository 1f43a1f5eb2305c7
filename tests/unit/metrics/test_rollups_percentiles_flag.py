from __future__ import annotations

import time

from architect.metrics.rollups import Rollups
from architect.store import Store


def test_summary_without_percentiles_keeps_the_sums_and_leaves_percentiles_out() -> None:
    store = Store.memory()
    rollups = Rollups(store.rollups, store.ledger)
    now = time.time()
    rows = [
        {
            "request_id": f"r{i}",
            "ts": now - 120 + i,
            "model_group": "m",
            "deployment": "d",
            "provider": "p",
            "status": "ok",
            "total_ms": 10.0 + i,
            "ttft_ms": 5.0,
            "prompt_tokens": 3,
            "completion_tokens": 2,
            "cost_usd": 0.5,
            "attempts": 1,
            "fallbacks": 0,
        }
        for i in range(20)
    ]
    rollups.on_flushed(rows)
    rollups.flush()
    full, _, _ = rollups.summary(now - 3600, now + 60, [], {})
    fast, _, _ = rollups.summary(now - 3600, now + 60, [], {}, percentiles=False)
    assert full[0]["requests"] == fast[0]["requests"] == 20
    assert fast[0]["cost_usd"] == full[0]["cost_usd"] == 10.0
    assert full[0]["p50_ms"] is not None and fast[0]["p50_ms"] is None
