"""The batched ledger writer: the request path appends a row to a bounded in-memory queue (no I/O);
a background thread flushes every `flush_interval_ms` (≤ 100 ms, 25 by default) with one batched
insert (executemany, one transaction). The interval trades the cost of a commit per flush against how
long one flush holds the core the event loop shares (measured in bench/RESULTS.md). On Linux the thread
runs `thread_nice` steps below the gateway's priority: the scheduler lets a thread that has slept run
its whole batch at once, a 1-3 ms stall of every request in flight (most of the gateway's p99 excess
under load). With a lower weight it is preempted more often, though not always (bench/RESULTS.md),
and the short GIL switch interval that `serve` sets bounds how long the loop then waits for the GIL. Per-call
aggregation (`on_submit`) runs on the event loop, spread evenly over the requests, so the thread does
little Python work that would compete with the loop for the GIL. When the queue is full the row is
dropped and counted (`dropped`, exported as a metric and in /readyz), and the gateway keeps serving.
`close()` drains everything (graceful shutdown loses nothing)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from architect.errors import StoreError
from architect.store.ledger import LedgerRepo

__all__ = ["LedgerWriter"]

log = logging.getLogger("architect.ledger")


class LedgerWriter:
    def __init__(
        self,
        repo: LedgerRepo,
        *,
        queue_size: int = 100_000,
        flush_interval_ms: int = 25,
        batch_size: int = 2000,
        on_flushed: Callable[[list[Mapping[str, Any]]], None] | None = None,
        on_submit: Callable[[Mapping[str, Any]], None] | None = None,
        thread_nice: int = 0,
    ) -> None:
        self._repo = repo
        self._queue: deque[Mapping[str, Any]] = deque()
        self._max = queue_size
        self._interval = flush_interval_ms / 1000.0
        self._batch = batch_size
        self._nice = thread_nice
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one flush at a time
        self.on_flushed = on_flushed
        self.on_submit = on_submit
        self.dropped = 0
        self.written = 0
        self.failed_batches = 0
        self._last_warning = -1e9

    @property
    def depth(self) -> int:
        return len(self._queue)

    def submit(self, call: Mapping[str, Any]) -> bool:
        """Queue one call (its attempts in `attempt_log`). Never blocks; False if the queue was full.
        Runs on the event loop: `on_submit` (cheap per-call aggregation) runs here, so the writer
        thread does little Python work that would compete with the loop for the GIL."""
        if len(self._queue) >= self._max:
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_warning > 10:
                self._last_warning = now
                log.warning("ledger queue full (%d rows): %d calls dropped so far", self._max, self.dropped)
            return False
        self._queue.append(call)
        if self.on_submit is not None:
            self.on_submit(call)
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="architect-ledger", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        if self._nice:
            _lower_thread_priority(self._nice)
        while not self._stop.is_set():
            self._stop.wait(self._interval)
            self.flush()

    def flush(self) -> int:
        """Write everything queued now; returns the number of calls written."""
        written = 0
        with self._lock:
            while self._queue:
                queue = self._queue
                calls = [queue.popleft() for _ in range(min(len(queue), self._batch))]
                try:
                    self._repo.record(calls)
                except StoreError as exc:
                    # Keep the rows for the next flush rather than losing them; give up only when
                    # the queue would overflow.
                    self.failed_batches += 1
                    log.error("ledger flush failed (%d calls kept for retry): %s", len(calls), exc)
                    room = self._max - len(self._queue)
                    keep = calls[: max(room, 0)]
                    self.dropped += len(calls) - len(keep)
                    self._queue.extendleft(reversed(keep))
                    break
                written += len(calls)
                self.written += len(calls)
                if self.on_flushed is not None:
                    self.on_flushed(calls)
        return written

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()


def _lower_thread_priority(steps: int) -> None:
    """Raise the calling thread's nice value by `steps` (Linux keeps one per thread; elsewhere, or if
    the system refuses, the thread keeps the process's priority)."""
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except OSError as exc:
        log.debug("could not lower the ledger writer's priority: %s", exc)
