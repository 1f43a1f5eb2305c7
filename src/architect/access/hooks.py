"""Wires the access domain into a running gateway: the key resolver of the authenticator, the check
of dashboard sessions against their keys, the dashboard login guard, per-key limits, budgets (and the
`budgets_active` flag, refreshed every second)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from architect.access.budgets import BudgetGuard
from architect.access.keys import KeyResolver, KeyService
from architect.access.keystate import KeyStates
from architect.access.limits import KeyLimiter
from architect.access.login import AuditRow, LoginGuard

__all__ = ["AccessDomain", "install", "login_guard", "uninstall"]

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
    row["id"] = await asyncio.to_thread(runtime.store.alerts.add_alert_event, row)
    log.warning("alert %s %s: %s", event["rule"], event["state"], event["message"])
    runtime.events.publish("alert", row)


async def _refresh_loop(runtime: Any, domain: AccessDomain, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await domain.budgets_changed(runtime)
        except Exception:  # keep the last known budgets; the next pass retries
            log.exception("refreshing budgets failed")


def login_guard(runtime: Any) -> LoginGuard:
    """The dashboard login guard of this runtime (made on first use), auditing to the access store."""
    guard: LoginGuard | None = runtime.extensions.get("login")
    if guard is None:
        audit = runtime.store.audit

        async def write(row: AuditRow) -> None:
            await asyncio.to_thread(audit.add_audit, row.actor, row.action, row.target, None, row.after)

        guard = runtime.extensions["login"] = LoginGuard(runtime.config.auth.login, write)
    return guard


async def _login_audit_loop(guard: LoginGuard) -> None:
    while True:
        await asyncio.sleep(guard.config.window_s)
        await guard.flush()


async def install(runtime: Any) -> None:
    store = runtime.store
    resolver = KeyResolver(store.keys)
    guard = BudgetGuard(store.budgets, notify=lambda ev: _notify(runtime, ev))
    domain = AccessDomain(KeyService(store.keys, store.budgets, store.audit), guard, resolver)
    runtime.auth.key_resolver = resolver
    runtime.auth.key_states = KeyStates(store.keys)
    runtime.spawn(_login_audit_loop(login_guard(runtime)))
    runtime.hooks.key_limits = KeyLimiter()
    runtime.hooks.budgets = guard
    await domain.budgets_changed(runtime)
    runtime.extensions["access"] = domain
    runtime.spawn(_refresh_loop(runtime, domain, guard.refresh_s))


async def uninstall(runtime: Any) -> None:
    login = runtime.extensions.get("login")
    if login is not None:
        await login.flush(force=True)
    domain = runtime.extensions.get("access")
    if domain is not None:
        await domain.budgets.drain()
