from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from architect.errors import StoreError
from architect.gateway.ledger import LedgerWriter
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
        w.submit({**_row(i), "attempt_log": [{**attempt, "status": "ok", "total_ms": 1.0}]})
    w.close()
    assert len(repo.calls) == 250 and repo.attempts_for("r249")[0]["deployment"] == "d"
    assert w.written == 250 and w.dropped == 0


def test_full_queue_drops_and_counts_without_blocking() -> None:
    w = LedgerWriter(MemoryLedger(), queue_size=3)
    results = [w.submit(_row(i)) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert w.dropped == 2


class FlakyRepo(MemoryLedger):
    def __init__(self) -> None:
        super().__init__()
        self.fail = 1

    def record(self, call_rows: Sequence[Mapping[str, Any]]) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreError("database is locked")
        super().record(call_rows)


def test_a_failed_flush_keeps_rows_for_the_next_one() -> None:
    repo = FlakyRepo()
    w = LedgerWriter(repo)
    w.submit(_row(1))
    assert w.flush() == 0 and w.failed_batches == 1 and w.depth == 1
    assert w.flush() == 1 and [c["request_id"] for c in repo.calls] == ["r1"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature")
def test_the_writer_thread_runs_at_a_lower_priority_than_the_gateway() -> None:
    seen: list[int] = []

    class Probe(MemoryLedger):
        def record(self, call_rows: Sequence[Mapping[str, Any]]) -> None:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            super().record(call_rows)

    base = os.getpriority(os.PRIO_PROCESS, 0)
    w = LedgerWriter(Probe(), flush_interval_ms=1, thread_nice=5)
    w.start()
    w.submit(_row(1))
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    w.close()
    assert seen and seen[0] == min(19, base + 5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the gateway's own threads keep theirs
