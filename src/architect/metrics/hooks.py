"""Wires the metrics domain into a running gateway: rollups and Prometheus counters fed with every
call queued for the ledger (on the event loop), rollups written from the ledger writer's thread, the
rollup compactor, and the alert evaluator and webhook sender."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from architect.metrics.alerts import Alerter
from architect.metrics.prometheus import PromMetrics
from architect.metrics.rollups import Rollups

__all__ = ["install", "uninstall"]

log = logging.getLogger("architect.metrics")


async def _compact_loop(rollups: Rollups, every_s: float = 60.0) -> None:
    while True:
        try:
            await asyncio.to_thread(rollups.compact)
        except Exception:
            log.exception("rollup compaction failed")
        await asyncio.sleep(every_s)


async def install(runtime: Any) -> None:
    rollups = Rollups(runtime.store.rollups, runtime.store.ledger)
    prom = PromMetrics(runtime)
    previous_submit = runtime.ledger.on_submit
    previous_flushed = runtime.ledger.on_flushed

    def on_submit(row: Mapping[str, Any]) -> None:  # on the event loop, once per call
        try:
            prom.observe_one(row)
            rollups.add_one(row)
        except Exception:  # never break the request path
            log.exception("metrics: aggregating a ledger row failed")
        if previous_submit is not None:
            previous_submit(row)

    def on_flushed(rows: list[Mapping[str, Any]]) -> None:  # the ledger writer's thread
        if rollups.due():
            try:
                rollups.flush()
            except Exception:
                log.exception("metrics: writing rollups failed")
        if previous_flushed is not None:
            previous_flushed(rows)

    runtime.ledger.on_submit = on_submit
    runtime.ledger.on_flushed = on_flushed
    alerter = Alerter(runtime, interval_s=runtime.config.alert_interval_s)
    runtime.extensions.update(rollups=rollups, prometheus=prom, alerter=alerter)
    runtime.spawn(_compact_loop(rollups))
    runtime.spawn(alerter.run())
    if runtime.config.alert_webhook:
        runtime.spawn(alerter.deliver())


async def uninstall(runtime: Any) -> None:
    """Runs before the ledger's final flush: the rows of that flush are written by `on_flushed` of
    the closing ledger writer; write what is left afterwards too."""
    rollups: Rollups | None = runtime.extensions.get("rollups")
    if rollups is None:
        return
    await asyncio.to_thread(runtime.ledger.flush)
    try:
        await asyncio.to_thread(rollups.flush)
    except Exception:
        log.exception("final rollup flush failed")
