"""One percentile definition: the same calls give the same latency percentiles whether a summary is
answered from the rollups or by a scan of the ledger (a grouping outside the rollup dimensions)."""

from __future__ import annotations

from tests.helpers import record_rows

from architect.metrics.rollups import Rollups
from architect.store import Store

T0 = 1_700_000_000 - 1_700_000_000 % 3600
# ten calls of one group, spread like the slow tail of a real window
LATENCIES = [812.0, 954.0, 1210.0, 1388.0, 1630.0, 1901.0, 2250.0, 2722.0, 3190.0, 3612.0]


def _rows() -> list[dict[str, object]]:
    return [
        {
            "request_id": f"r{i}",
            "ts": T0 + 10 + i,
            "endpoint": "chat",
            "model": "strong",
            "model_group": "strong",
            "deployment": "strong-a",
            "provider": "p",
            "feature": "summaries",
            "status": "ok",
            "total_ms": ms,
            "ttft_ms": ms / 4,
            "attempts": 1,
        }
        for i, ms in enumerate(LATENCIES)
    ]


def test_rollups_and_ledger_scan_report_the_same_percentiles() -> None:
    store = Store.memory()
    rows = _rows()
    record_rows(store.ledger, rows)
    r = Rollups(store.rollups, store.ledger)
    r.add(rows)
    r.flush()
    window = (T0, T0 + 120)
    (rolled,), _, source = r.summary(*window, ["model_group"], {"model_group": "strong"}, now=T0 + 120)
    assert source == "rollups"
    (scanned,), _, source = r.summary(*window, ["model_group", "feature"], {}, now=T0 + 120)
    assert source == "ledger"
    for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms"):
        assert rolled[k] == scanned[k], k
    # the documented rule: within 1 % of the value of rank floor(q * (n - 1)) (the 9th of 10 for p95
    # and p99), never an interpolation towards the slowest call
    for k in ("p95_ms", "p99_ms"):
        assert abs(scanned[k] - 3190.0) <= 0.01 * 3190.0, k
