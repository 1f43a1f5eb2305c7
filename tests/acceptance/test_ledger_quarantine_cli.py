"""`architect serve` writes ledger rows the database refuses to $ARCHITECT_HOME/ledger-quarantine.jsonl
and keeps recording every other call; a client that reuses its `x-request-id` has every call
recorded (the later ones under derived ids)."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import httpx
import orjson

from tests.acceptance.conftest import Served
from tests.helpers import wait_until

# the database refuses one row (as a check it has would)
_REFUSE_POISON = """CREATE TRIGGER refuse_poison BEFORE INSERT ON calls WHEN NEW.request_id = 'poison-id'
BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"""


def test_serve_quarantines_a_refused_row_under_architect_home(served: Served) -> None:
    home = Path(served.env["ARCHITECT_HOME"])
    db = sqlite3.connect(home / "architect.db", timeout=30)
    with db:
        db.execute(_REFUSE_POISON)
    db.close()
    chat = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    with httpx.Client(base_url=served.url, timeout=30) as c:
        for rid in ("same-id", "same-id", "poison-id", "other-id"):
            assert c.post("/v1/chat/completions", json=chat, headers={"x-request-id": rid}).status_code == 200
        wait_until(lambda: c.get("/readyz").json()["checks"]["ledger"]["quarantined"] == 1)
        wait_until(lambda: c.get("/readyz").json()["checks"]["ledger"]["written"] == 3)
        calls = c.get("/api/v1/calls", params={"since": 0}).json()
    qfile = home / "ledger-quarantine.jsonl"
    (entry,) = [orjson.loads(line) for line in qfile.read_text().splitlines()]
    assert entry["row"]["request_id"] == "poison-id" and entry["row"]["model"] == "fast"
    ids = sorted(r["request_id"] for r in calls["calls"])
    assert ids[:2] == ["other-id", "same-id"] and ids[2].startswith("same-id:") and len(ids) == 3
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(30) in (0, -signal.SIGTERM)
