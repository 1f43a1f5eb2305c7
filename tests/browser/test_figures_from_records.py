"""Dashboard figures from recorded calls written straight to the ledger and the rollups: the cost
chart's legend reads both series at one minute, and the Providers page shows the failed attempts a
deployment made even when another deployment answered the call."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.helpers import LiveServer, record_rows

FAST, STRONG = "fast/sim/sim-fast", "strong/sim/sim-strong"


def _record(server: LiveServer, rows: list[dict[str, Any]]) -> None:
    record_rows(server.store.ledger, rows)
    server.runtime.rollups.add(rows)


def _call(rid: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {"request_id": rid, "ts": ts, "endpoint": "chat", "model": "fast", "model_group": "fast", **fields}


def test_cost_legend_reads_cost_and_baseline_at_the_same_minute(page: Any, server: LiveServer) -> None:
    now = time.time()
    answered = now - now % 60 - 120  # two minutes before the current one
    _record(
        server,
        [
            _call("priced", answered + 5, deployment=FAST, provider="sim", total_ms=40.0, attempts=1,
                  cost_usd=0.25, baseline_cost_usd=0.75),
            # the newest minute holds only an error: cost 0, no baseline
            _call("failed", now - now % 60 + 1, deployment=FAST, provider="sim", status="error",
                  http_status=502, error_kind="upstream_error", total_ms=30.0, attempts=1),
        ],
    )  # fmt: skip
    login(page)
    chart = page.locator("figure").filter(
        has=page.locator("figcaption", has_text="Cost against the baseline")
    )
    legend = chart.locator(".legend-html")
    minute = page.evaluate(f"new Date({answered} * 1000).toLocaleTimeString('en-GB', {{hour12: false}})")
    expect(legend).to_contain_text("cost: $0.25")
    expect(legend).to_contain_text("baseline cost: $0.75")
    expect(legend).to_contain_text(f"(latest, at {minute})")


def test_providers_show_failed_attempts_another_deployment_covered(page: Any, server: LiveServer) -> None:
    now = time.time()
    log = [
        {"attempt": 1, "ts": now, "model_group": "strong", "deployment": STRONG, "provider": "sim",
         "status": "error", "http_status": 429, "error_kind": "rate_limited", "total_ms": 5.0},
        {"attempt": 2, "ts": now, "model_group": "fast", "deployment": FAST, "provider": "sim",
         "status": "ok", "http_status": 200, "total_ms": 20.0},
    ]  # fmt: skip
    _record(
        server,
        [
            _call(
                "covered",
                now - 1,
                deployment=FAST,
                provider="sim",
                total_ms=25.0,
                attempts=2,
                attempt_log=log,
            )
        ],
    )
    login(page, next_path="/ui/providers")
    strong = page.locator("#health tbody tr").filter(has_text="sim-strong")
    expect(strong).to_contain_text("rate_limited 1")
    expect(strong).to_contain_text("1 (100")
    expect(page.locator("#costs")).to_contain_text(
        "Answered by another deployment than the first one tried (in the group or a fallback group): 1 calls"
    )
