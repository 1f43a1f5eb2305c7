"""The ledger writer over a real database isolates the rows the database refuses: the rest of their
batch is written, the refused rows go to the quarantine file and are counted. A database that is down
refuses nothing in particular: its rows stay queued, none is quarantined."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, text

from architect.gateway.ledger import LedgerWriter
from architect.records import AttemptRecord, CallRecord
from architect.store import Store, open_store
from tests.helpers import record_rows


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url, migrate="upgrade")
    yield s
    s.close()


def _row(rid: str, **kw: Any) -> dict[str, Any]:
    attempt = {
        "attempt": 1,
        "ts": 1.0,
        "model_group": "m",
        "deployment": "d",
        "provider": "p",
        "status": "ok",
    }
    return {
        "request_id": rid,
        "ts": time.time(),
        "endpoint": "chat",
        "model": "m",
        "status": "ok",
        "http_status": 200,
        "total_ms": 1.0,
        "request_body": f"prompt of {rid}",
        "attempt_log": [attempt],
        **kw,
    }


def _quarantined(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


def test_one_poison_row_among_1000_loses_no_good_row_and_is_quarantined(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    qfile = tmp_path / "home" / "ledger-quarantine.jsonl"
    w = LedgerWriter(store.ledger, quarantine_path=qfile)  # batches of up to 2000: all in one
    secret_prompt = "the poison row's own prompt, never logged"
    for i in range(1001):
        if i == 437:  # larger than any integer column holds, on both databases
            w.submit(CallRecord.from_row(_row("poison", http_status=2**70, request_body=secret_prompt)))
        else:
            w.submit(CallRecord.from_row(_row(f"good-{i:04d}")))
    with caplog.at_level(logging.DEBUG, logger="architect"):
        assert w.flush() == 1000
    assert w.depth == 0 and w.written == 1000 and w.quarantined == 1 and w.dropped == 0
    ids = [c["request_id"] for c in store.ledger.calls_between(0, time.time() + 1, limit=5000)]
    assert sorted(ids) == [f"good-{i:04d}" for i in range(1001) if i != 437]
    (entry,) = _quarantined(qfile)
    assert entry["row"]["request_id"] == "poison" and entry["row"]["http_status"] == 2**70
    assert (
        entry["row"]["request_body"] == secret_prompt and entry["row"]["attempt_log"][0]["deployment"] == "d"
    )
    assert "ledger write failed" in entry["error"] and entry["ts"] > time.time() - 60
    assert qfile.stat().st_mode & 0o077 == 0  # the rows may hold prompts: the owner's only
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("poison" in m and str(qfile) in m for m in errors)
    assert not any(secret_prompt in m for m in errors)
    # the writer goes on: later rows are written
    w.submit(CallRecord.from_row(_row("later")))
    assert w.flush() == 1 and store.ledger.get_call("later") is not None


def test_rows_the_database_refuses_for_any_reason_are_isolated_in_order(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    qfile = tmp_path / "q.jsonl"
    w = LedgerWriter(store.ledger, quarantine_path=qfile, batch_size=50)
    record_rows(store.ledger, [_row("dup")])
    rows = [_row(f"r{i:03d}") for i in range(120)]
    rows[3] = _row("dup")  # a request id already recorded: recorded under a derived id, not refused
    rows[60] = _row("no-model", model=None)  # a missing required value
    unjsonable = AttemptRecord(  # a value that is not JSON
        attempt=1, ts=0.0, model_group="g", deployment="d", provider="p", route_reason=object()
    )  # type: ignore[arg-type]
    rows[61] = _row("bad-log", attempt_log=[unjsonable])  # cannot become a parameter
    rows[119] = _row("neg", prompt_tokens=-(2**70))
    for r in rows:
        w.submit(CallRecord.from_row(r))
    with caplog.at_level(logging.DEBUG, logger="architect"):
        assert w.flush() == 117
    # PostgreSQL's own message quotes the failing row ("Failing row contains ..."): never in the log
    assert not any("prompt of" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert w.quarantined == 3 and w.renamed == 1 and w.depth == 0
    assert [e["row"]["request_id"] for e in _quarantined(qfile)] == ["no-model", "bad-log", "neg"]
    got = [c["request_id"] for c in store.ledger.calls_between(0, time.time() + 1, limit=500)]
    (renamed,) = [rid for rid in got if rid.startswith("dup:")]
    assert len(renamed) == 20 and store.ledger.get_call(renamed) is not None
    got.remove(renamed)
    assert got == ["dup"] + [r["request_id"] for i, r in enumerate(rows) if i not in (3, 60, 61, 119)]


def test_on_postgresql_a_value_longer_than_its_column_is_quarantined_not_blocking(
    pg_url: str, tmp_path: Path
) -> None:
    store = open_store(pg_url, migrate="upgrade")
    try:
        qfile = tmp_path / "q.jsonl"
        w = LedgerWriter(store.ledger, quarantine_path=qfile)
        for i in range(10):
            w.submit(CallRecord.from_row(_row(f"r{i}", model="x" * 201 if i == 5 else "m")))
        assert w.flush() == 9 and w.quarantined == 1
        assert "StringDataRightTruncation" in _quarantined(qfile)[0]["error"]
    finally:
        store.close()


def test_without_a_quarantine_file_refused_rows_are_still_counted(store: Store) -> None:
    w = LedgerWriter(store.ledger)
    for r in (_row("a"), _row("b", http_status=2**70), _row("c")):
        w.submit(CallRecord.from_row(r))
    assert w.flush() == 2 and w.quarantined == 1 and w.depth == 0


@pytest.fixture
def pg_admin(pg_url: str) -> Iterator[Any]:
    """Takes the test database down and up (refusing connections, ending those open); always up again
    afterwards."""
    name = pg_url.rsplit("/", 1)[1]
    admin = create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")

    def set_up(up: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if up else "false"}'))
            if not up:
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                    {"n": name},
                )

    try:
        yield set_up
    finally:
        set_up(True)
        admin.dispose()


def test_a_database_that_is_down_quarantines_nothing_and_gets_every_row_when_back(
    pg_url: str, pg_admin: Any, tmp_path: Path
) -> None:
    store = open_store(pg_url, migrate="upgrade")
    try:
        qfile = tmp_path / "q.jsonl"
        w = LedgerWriter(store.ledger, quarantine_path=qfile, batch_size=100)
        w.submit(CallRecord.from_row(_row("first")))
        assert w.flush() == 1  # the writer now holds a connection
        pg_admin(False)
        for i in range(250):
            w.submit(CallRecord.from_row(_row(f"r{i:03d}")))
        for _ in range(3):
            assert w.flush() == 0
        assert w.depth == 250 and w.quarantined == 0 and w.dropped == 0
        assert not qfile.exists()
        pg_admin(True)
        assert w.flush() == 250 and w.depth == 0 and w.quarantined == 0
        assert len(store.ledger.calls_between(0, time.time() + 1, limit=1000)) == 251
    finally:
        store.close()
