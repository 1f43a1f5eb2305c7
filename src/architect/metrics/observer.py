"""The metrics domain's ledger observer: every call queued for the ledger is folded into the
Prometheus counters and the rollups on the event loop, and the rollups are written from the ledger
writer's thread every `Rollups.flush_s`."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from architect.metrics.prometheus import PromMetrics
from architect.metrics.rollups import Rollups
from architect.records import CallRecord

__all__ = ["LedgerMetrics"]

log = logging.getLogger("architect.metrics")


class LedgerMetrics:
    """`LedgerObserver` feeding the rollups and the Prometheus counters."""

    __slots__ = ("prometheus", "rollups")

    def __init__(self, rollups: Rollups, prometheus: PromMetrics) -> None:
        self.rollups = rollups
        self.prometheus = prometheus

    def on_submit(self, record: CallRecord) -> None:  # on the event loop, once per call
        try:
            self.prometheus.observe_one(record)
            self.rollups.add_one(record)
        except Exception:  # never break the request path
            log.exception("metrics: aggregating a ledger row failed")

    def on_flushed(self, records: Sequence[CallRecord]) -> None:  # the ledger writer's thread
        if self.rollups.due():
            try:
                self.rollups.flush()
            except Exception:
                log.exception("metrics: writing rollups failed")
