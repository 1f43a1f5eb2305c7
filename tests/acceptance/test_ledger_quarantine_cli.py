"""`architect serve` writes ledger rows the database refuses to $ARCHITECT_HOME/ledger-quarantine.jsonl
and keeps recording every other call."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import orjson

from tests.acceptance.conftest import Served
from tests.helpers import wait_until


def test_serve_quarantines_a_refused_row_under_architect_home(served: Served) -> None:
    chat = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    with httpx.Client(base_url=served.url, timeout=30) as c:
        for rid in ("same-id", "same-id", "other-id"):  # the second row breaks the unique request id
            assert c.post("/v1/chat/completions", json=chat, headers={"x-request-id": rid}).status_code == 200
        wait_until(lambda: c.get("/readyz").json()["checks"]["ledger"]["quarantined"] == 1)
        calls = c.get("/api/v1/calls", params={"since": 0}).json()
    qfile = Path(served.env["ARCHITECT_HOME"]) / "ledger-quarantine.jsonl"
    (entry,) = [orjson.loads(line) for line in qfile.read_text().splitlines()]
    assert entry["row"]["request_id"] == "same-id" and entry["row"]["model"] == "fast"
    assert sorted(r["request_id"] for r in calls["calls"]) == ["other-id", "same-id"]
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(30) in (0, -signal.SIGTERM)
