"""Wires the access domain into a running gateway: the key resolver of the authenticator, per-key
limits, budgets (and the `budgets_active` flag, refreshed every second)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from architect.access.budgets import BudgetGuard
from architect.access.keys import KeyResolver, KeyService
from architect.access.limits import KeyLimiter

__all__ = ["AccessDomain", "install", "uninstall"]

log = logging.getLogger("architect.access")


@dataclass
class AccessDomain:
    keys: KeyService
    budgets: BudgetGuard
    resolver: KeyResolver

    async def budgets_changed(self, runtime: Any) -> None:
        await self.budgets.refresh()
        runtime.hooks.budgets_active = self.budgets.active


async def _notify(runtime: Any, event: dict[str, Any]) -> None:
    alerter = runtime.extensions.get("alerter")
    if alerter is not None:
        await alerter.emit(event)
        return
    row = {"ts": time.time(), **event}
    row["id"] = await asyncio.to_thread(runtime.store.access.add_alert_event, row)
    log.warning("alert %s %s: %s", event["rule"], event["state"], event["message"])
    runtime.events.publish("alert", row)


async def _refresh_loop(runtime: Any, domain: AccessDomain, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await domain.budgets_changed(runtime)
        except Exception:  # keep the last known budgets; the next pass retries
            log.exception("refreshing budgets failed")


async def install(runtime: Any) -> None:
    repo = runtime.store.access
    resolver = KeyResolver(repo)
    guard = BudgetGuard(repo, notify=lambda ev: _notify(runtime, ev))
    domain = AccessDomain(KeyService(repo), guard, resolver)
    runtime.auth.key_resolver = resolver
    runtime.hooks.key_limits = KeyLimiter()
    runtime.hooks.budgets = guard
    await domain.budgets_changed(runtime)
    runtime.extensions["access"] = domain
    runtime.spawn(_refresh_loop(runtime, domain, guard.refresh_s))


async def uninstall(runtime: Any) -> None:
    domain = runtime.extensions.get("access")
    if domain is not None:
        await domain.budgets.drain()
