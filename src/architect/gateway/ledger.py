"""The batched ledger writer: the request path appends a row to a bounded in-memory queue (no I/O);
a background thread flushes every `flush_interval_ms` (≤ 100 ms, 25 by default) with one batched
insert (executemany, one transaction). The interval trades the cost of a commit per flush against how
long one flush holds the core the event loop shares (measured in bench/RESULTS.md). On Linux the thread
runs `thread_nice` steps below the gateway's priority: the scheduler lets a thread that has slept run
its whole batch at once, a 1-3 ms stall of every request in flight (most of the gateway's p99 excess
under load). With a lower weight it is preempted more often, though not always (bench/RESULTS.md),
and the short GIL switch interval that `serve` sets bounds how long the loop then waits for the GIL. Per-call
aggregation (`on_submit`) runs on the event loop, spread evenly over the requests, so the thread does
little Python work that would compete with the loop for the GIL. What else is fed from the
ledger (rollups, Prometheus counters) is a `LedgerObserver`: `on_submit` per call on the event loop,
`on_flushed` per written batch on the writer's thread. When the queue is full the row is
dropped and counted (`dropped`, exported as a metric and in /readyz), and the gateway keeps serving.
`close()` drains everything (graceful shutdown loses nothing).

A batch the database refuses because of a row's values (`StoreDataError`) is retried in halves down to
single rows, so every other row is written; a row that still fails is appended to the quarantine file
(JSON lines: the row, the error and the time) and counted (`quarantined`, in /readyz and /metrics).
Any other failure (the database is down or locked) keeps the rows queued for the next flush.

A request id is the client's `x-request-id` when it sent one, and `calls.request_id` is unique: a
client may reuse its id, and its calls must all be recorded. A call whose request id is already taken
(by an earlier row of its batch, or by a row in the ledger: the row the database refused is then
looked up) is recorded under a derived id, `<the client's id, up to 47 characters>:<16 hex digits>`
(`reused_id`; a valid request id, so `GET /api/v1/calls/{id}` reads it), and counted (`renamed`);
nothing is quarantined for it."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, Protocol

from architect.errors import StoreDataError, StoreError
from architect.records import CallRecord
from architect.store.ledger import LedgerRepo
from architect.store.request_ids import reused_id

__all__ = ["LedgerObserver", "LedgerWriter", "lower_thread_priority", "reused_id"]

log = logging.getLogger("architect.ledger")

_REQUEST_ID = attrgetter("request_id")


def _distinct(calls: list[CallRecord]) -> list[CallRecord]:
    """`calls` with every request id but the first of its kind made unique (`reused_id`)."""
    seen: set[str] = set()
    out: list[CallRecord] = []
    for c in calls:
        if c.request_id in seen:
            c = dataclasses.replace(c, request_id=reused_id(c.request_id))
        seen.add(c.request_id)
        out.append(c)
    return out


class LedgerObserver(Protocol):
    """Fed with every call the ledger takes. Both must be cheap and must not raise."""

    def on_submit(self, record: CallRecord) -> None:
        """One call queued for the ledger, on the event loop (per-call aggregation goes here)."""

    def on_flushed(self, records: Sequence[CallRecord]) -> None:
        """A batch the writer wrote, on its thread (periodic writes of aggregates go here)."""


class LedgerWriter:
    def __init__(
        self,
        repo: LedgerRepo,
        *,
        queue_size: int = 100_000,
        flush_interval_ms: int = 25,
        batch_size: int = 2000,
        thread_nice: int = 0,
        quarantine_path: Path | None = None,
        observers: Sequence[LedgerObserver] = (),
    ) -> None:
        self._repo = repo
        self.quarantine_path = quarantine_path  # None: refused rows are counted, not kept
        self._queue: deque[CallRecord] = deque()
        self._max = queue_size
        self._interval = flush_interval_ms / 1000.0
        self._batch = batch_size
        self._nice = thread_nice
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one flush at a time
        self.observers: list[LedgerObserver] = list(observers)
        self.dropped = 0
        self.written = 0
        self.failed_batches = 0
        self.quarantined = 0
        self.renamed = 0  # calls recorded under a derived id: their request id was taken (`reused_id`)
        self._last_warning = -1e9

    @property
    def depth(self) -> int:
        return len(self._queue)

    def submit(self, call: CallRecord) -> bool:
        """Queue one call (its attempts in `attempt_log`). Never blocks; False if the queue was full.
        Runs on the event loop: the observers' `on_submit` (cheap per-call aggregation) runs here, so
        the writer thread does little Python work that would compete with the loop for the GIL."""
        if len(self._queue) >= self._max:
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_warning > 10:
                self._last_warning = now
                log.warning("ledger queue full (%d rows): %d calls dropped so far", self._max, self.dropped)
            return False
        self._queue.append(call)
        for o in self.observers:
            o.on_submit(call)
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="architect-ledger", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        if self._nice:
            lower_thread_priority(self._nice)
        while not self._stop.is_set():
            self._stop.wait(self._interval)
            try:
                self.flush()
            except Exception:  # the thread must outlive any one flush, or the ledger stops for good
                log.exception("ledger flush failed unexpectedly")

    def flush(self) -> int:
        """Write everything queued now; returns the number of calls written."""
        written = 0
        with self._lock:
            while self._queue:
                queue = self._queue
                calls = [queue.popleft() for _ in range(min(len(queue), self._batch))]
                if len(set(map(_REQUEST_ID, calls))) != len(calls):  # a client reused its x-request-id
                    calls = self._distinct(calls)
                try:
                    self._repo.record(calls)
                except StoreDataError as exc:
                    done, left = self._isolate(calls, exc)
                    written += done
                    if left:
                        self._keep(left)
                        break
                    continue
                except StoreError as exc:
                    log.error("ledger flush failed (%d calls kept for retry): %s", len(calls), exc)
                    self._keep(calls)
                    break
                written += len(calls)
                self._written(calls)
        return written

    def _distinct(self, calls: list[CallRecord]) -> list[CallRecord]:
        out = _distinct(calls)
        renamed = sum(a is not b for a, b in zip(calls, out, strict=True))
        self.renamed += renamed
        log.info("ledger: %d calls reused a request id of their batch; recorded under derived ids", renamed)
        return out

    def _reused(self, row: CallRecord) -> CallRecord | None:
        """`row` under a derived id when the ledger already holds its request id (a client reused its
        `x-request-id`), else None."""
        try:
            taken = self._repo.get_call(row.request_id) is not None
        except Exception:  # the database went away meanwhile: the row is quarantined as refused
            log.debug("ledger: cannot look up request id %.64r", row.request_id, exc_info=True)
            return None
        return dataclasses.replace(row, request_id=reused_id(row.request_id)) if taken else None

    def _written(self, calls: list[CallRecord]) -> None:
        self.written += len(calls)
        for o in self.observers:
            o.on_flushed(calls)

    def _keep(self, calls: list[CallRecord]) -> None:
        """Put rows a failed write left back at the head of the queue, for the next flush; give up
        (count them dropped) only when the queue would overflow."""
        self.failed_batches += 1
        room = self._max - len(self._queue)
        keep = calls[: max(room, 0)]
        self.dropped += len(calls) - len(keep)
        self._queue.extendleft(reversed(keep))

    def _isolate(self, calls: list[CallRecord], refused: StoreDataError) -> tuple[int, list[CallRecord]]:
        """Write a batch the database refused in halves, down to the single rows it refuses, which
        are quarantined. Returns (rows written, rows left for the next flush): when a write fails for
        another reason (the database went away meanwhile), that part and the rest are left."""
        written = 0
        # a stack of parts, the next one to write last (rows keep their order), each with the error
        # the database gave for it if it was already tried
        parts: list[tuple[list[CallRecord], StoreDataError | None]] = [(calls, refused)]
        while parts:
            part, error = parts.pop()
            if error is None:
                try:
                    self._repo.record(part)
                except StoreDataError as exc:
                    error = exc
                except StoreError as exc:
                    left = part + [row for p, _ in reversed(parts) for row in p]
                    log.error("ledger flush failed (%d calls kept for retry): %s", len(left), exc)
                    return written, left
                else:
                    written += len(part)
                    self._written(part)
                    continue
            if len(part) == 1:
                renamed = self._reused(part[0])
                if renamed is not None:
                    try:
                        self._repo.record([renamed])
                    except StoreDataError as exc:
                        error = exc
                    except StoreError as exc:
                        left = part + [row for p, _ in reversed(parts) for row in p]
                        log.error("ledger flush failed (%d calls kept for retry): %s", len(left), exc)
                        return written, left
                    else:
                        written += 1
                        self.renamed += 1
                        log.info(
                            "ledger: request id %.64r was already recorded (a client reused its "
                            "x-request-id); this call is recorded as %s",
                            part[0].request_id,
                            renamed.request_id,
                        )
                        self._written([renamed])
                        continue
                self._quarantine(part[0], error)
            else:
                mid = len(part) // 2
                parts += ((part[mid:], None), (part[:mid], None))
        return written, []

    def _quarantine(self, row: CallRecord, error: StoreDataError) -> None:
        """Count a row the database refuses and append it to the quarantine file. The row's contents
        go to the file only, never to the log."""
        self.quarantined += 1
        path = self.quarantine_path
        where = str(path) if path is not None else "nowhere (no quarantine file configured)"
        log.error(
            "ledger: the database refused call %.64r (%s); quarantined in %s",
            row.request_id,
            type(error.__cause__ or error).__name__,
            where,
        )
        if path is None:
            return
        line = json.dumps(
            {"ts": time.time(), "error": str(error), "row": _plain(row.as_dict())},
            ensure_ascii=True,
            allow_nan=False,
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode("ascii"))
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("ledger: cannot write the quarantine file %s: %s", path, exc.strerror or exc)

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()


def _plain(value: Any) -> Any:
    """`value` as JSON can hold it: numbers that are not finite and values of other types become
    their text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float):
        return value
    return repr(value)


def lower_thread_priority(steps: int) -> None:
    """Raise the calling thread's nice value by `steps` (Linux keeps one per thread; elsewhere, or if
    the system refuses, the thread keeps the process's priority)."""
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except OSError as exc:
        log.debug("could not lower the ledger writer's priority: %s", exc)
