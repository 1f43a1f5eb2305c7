from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from architect.errors import StoreDataError, StoreError
from architect.gateway.ledger import LedgerWriter
from architect.records import CallRecord
from architect.store.ledger import MemoryLedger


def _row(i: int) -> dict[str, Any]:
    return {
        "request_id": f"r{i}",
        "ts": time.time(),
        "endpoint": "chat",
        "model": "m",
        "status": "ok",
        "http_status": 200,
        "total_ms": 1.0,
    }


def test_batches_are_written_and_close_flushes_everything() -> None:
    repo = MemoryLedger()
    w = LedgerWriter(repo, flush_interval_ms=10_000 // 100)
    w.start()
    for i in range(250):
        attempt = {"attempt": 1, "ts": 0.0, "model_group": "g", "deployment": "d", "provider": "p"}
        w.submit(
            CallRecord.from_row({**_row(i), "attempt_log": [{**attempt, "status": "ok", "total_ms": 1.0}]})
        )
    w.close()
    assert len(repo.calls) == 250 and repo.attempts_for("r249")[0]["deployment"] == "d"
    assert w.written == 250 and w.dropped == 0


def test_full_queue_drops_and_counts_without_blocking() -> None:
    w = LedgerWriter(MemoryLedger(), queue_size=3)
    results = [w.submit(CallRecord.from_row(_row(i))) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert w.dropped == 2


class FlakyRepo(MemoryLedger):
    def __init__(self) -> None:
        super().__init__()
        self.fail = 1

    def record(self, call_rows: Sequence[CallRecord]) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreError("database is locked")
        super().record(call_rows)


def test_a_failed_flush_keeps_rows_for_the_next_one() -> None:
    repo = FlakyRepo()
    w = LedgerWriter(repo)
    w.submit(CallRecord.from_row(_row(1)))
    assert w.flush() == 0 and w.failed_batches == 1 and w.depth == 1
    assert w.flush() == 1 and [c["request_id"] for c in repo.calls] == ["r1"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature")
def test_the_writer_thread_runs_at_a_lower_priority_than_the_gateway() -> None:
    seen: list[int] = []

    class Probe(MemoryLedger):
        def record(self, call_rows: Sequence[CallRecord]) -> None:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            super().record(call_rows)

    base = os.getpriority(os.PRIO_PROCESS, 0)
    w = LedgerWriter(Probe(), flush_interval_ms=1, thread_nice=5)
    w.start()
    w.submit(CallRecord.from_row(_row(1)))
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    w.close()
    assert seen and seen[0] == min(19, base + 5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the gateway's own threads keep theirs


class RefusingRepo(MemoryLedger):
    """Refuses any batch holding a row whose request id starts with "bad"; after `down_after` writes
    the database goes away (every write fails for a reason that is not the rows')."""

    def __init__(self, down_after: int | None = None) -> None:
        super().__init__()
        self.writes = 0
        self.down_after = down_after

    def record(self, call_rows: Sequence[CallRecord]) -> None:
        self.writes += 1
        if self.down_after is not None and self.writes > self.down_after:
            raise StoreError("ledger write failed: cannot connect: OperationalError")
        if any(r.request_id.startswith("bad") for r in call_rows):
            raise StoreDataError("ledger write failed: IntegrityError: refused")
        super().record(call_rows)


def test_refused_rows_are_found_in_halves_and_the_rest_written_in_order(tmp_path: Path) -> None:
    repo = RefusingRepo()
    w = LedgerWriter(repo, quarantine_path=tmp_path / "q.jsonl")
    ids = [f"bad{i}" if i in (0, 17, 18, 63) else f"r{i}" for i in range(64)]
    for rid in ids:
        w.submit(CallRecord.from_row({**_row(0), "request_id": rid}))
    assert w.flush() == 60 and w.quarantined == 4
    assert [c["request_id"] for c in repo.calls] == [i for i in ids if not i.startswith("bad")]
    lines = (tmp_path / "q.jsonl").read_text().splitlines()
    assert [orjson.loads(x)["row"]["request_id"] for x in lines] == ["bad0", "bad17", "bad18", "bad63"]
    assert repo.writes < 64  # halving, not one write per row


def test_a_database_that_goes_away_while_rows_are_isolated_keeps_the_rest_queued(tmp_path: Path) -> None:
    repo = RefusingRepo(down_after=2)  # the batch is refused, its first half written, then down
    w = LedgerWriter(repo, quarantine_path=tmp_path / "q.jsonl")
    ids = [f"r{i}" for i in range(8)] + ["bad"] + [f"s{i}" for i in range(7)]
    for rid in ids:
        w.submit(CallRecord.from_row({**_row(0), "request_id": rid}))
    assert w.flush() == 8
    assert w.quarantined == 0 and w.depth == 8 and not (tmp_path / "q.jsonl").exists()
    repo.down_after = None  # back up: the rest is written, the refused row quarantined
    assert w.flush() == 7 and w.quarantined == 1
    assert [c["request_id"] for c in repo.calls] == [i for i in ids if i != "bad"]


def test_quarantined_rows_are_valid_json_whatever_they_hold(tmp_path: Path) -> None:
    repo = RefusingRepo()
    w = LedgerWriter(repo, quarantine_path=tmp_path / "q.jsonl")
    w.submit(
        CallRecord.from_row(
            {**_row(0), "request_id": "bad", "total_ms": float("nan"), "tags": b"\x00", "cost_usd": 2**80}
        )
    )
    w.flush()
    (entry,) = [json.loads(x) for x in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert entry["row"]["total_ms"] == "nan" and entry["row"]["tags"] == "b'\\x00'"
    assert entry["row"]["cost_usd"] == 2**80


def test_a_reused_request_id_is_recorded_under_a_derived_id_never_quarantined(tmp_path: Path) -> None:
    repo = MemoryLedger()
    repo.record([CallRecord.from_row({**_row(0), "request_id": "same"})])  # an earlier batch's
    w = LedgerWriter(repo, quarantine_path=tmp_path / "q.jsonl")
    ids = ["a", "same", "b", "same", "same", "c"]
    for i, rid in enumerate(ids):
        w.submit(CallRecord.from_row({**_row(i), "request_id": rid, "total_ms": float(i)}))
    assert w.flush() == 6 and w.renamed == 3 and w.quarantined == 0 and w.depth == 0
    assert not (tmp_path / "q.jsonl").exists()
    got = [(c["request_id"], c["total_ms"]) for c in repo.calls[1:]]
    assert sorted(t for _, t in got) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # every call, once
    derived = [rid for rid, _ in got if rid.startswith("same:")]
    assert len(derived) == 3 and len(set(derived)) == 3 and all(len(d) == 21 for d in derived)
    assert {rid for rid, _ in got} - set(derived) == {"a", "b", "c"}
