"""Everything a running gateway holds, built from a Config and a Store: router, pipeline, ledger
writer, event bus, authenticator and the domain hooks (keys/budgets, cache). No globals: the app
and the API reach it through `app.state.runtime`."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from architect._optional import optional_module
from architect.access.auth import Authenticator, Sessions
from architect.config import Config
from architect.events import EventBus
from architect.gateway.hooks import Hooks
from architect.gateway.ledger import LedgerWriter
from architect.gateway.pipeline import Pipeline
from architect.gateway.providers.transport import Transport
from architect.gateway.routing import Router
from architect.store import Store

__all__ = ["Runtime"]

log = logging.getLogger("architect.gateway")

# Domain modules that contribute hooks: each has `install(runtime)` (called at start) and may define
# `uninstall(runtime)` (called at stop).
_HOOK_MODULES = ("architect.access.hooks", "architect.cache.hooks", "architect.metrics.hooks")


class Runtime:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        transports: dict[str, Transport] | None = None,
        config_path: str | None = None,
        ledger_quarantine: Path | None = None,
    ) -> None:
        """`ledger_quarantine`: the JSON-lines file that ledger rows the database refuses are
        appended to (None: they are only counted)."""
        self.config = config
        self.config_path = config_path
        self.store = store
        self.events = EventBus()
        self.router = Router.build(config, transports=transports)
        self.ledger = LedgerWriter(
            store.ledger,
            queue_size=config.ledger.queue_size,
            flush_interval_ms=config.ledger.flush_interval_ms,
            thread_nice=config.ledger.writer_nice,
            quarantine_path=ledger_quarantine,
        )
        self.auth = Authenticator(config.auth.admin_key, sessions=Sessions.from_config(config.auth.sessions))
        self.hooks = Hooks()
        self.pipeline = Pipeline(config, self.router, self.ledger, self.events, self.hooks)
        self.started_at = time.time()
        self.extensions: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._installed: list[Any] = []

    async def start(self) -> None:
        self.ledger.start()
        for name in _HOOK_MODULES:
            mod = optional_module(name)
            if mod is None:
                continue
            await mod.install(self)
            self._installed.append(mod)
        if self.config.ledger.retention_days:
            self.spawn(self._retention_loop(self.config.ledger.retention_days))

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        return task

    async def _retention_loop(self, days: int) -> None:
        while True:
            try:
                n = await asyncio.to_thread(self.store.ledger.purge_before, time.time() - days * 86400)
                if n:
                    log.info("ledger retention: removed %d calls older than %d days", n, days)
            except Exception:  # keep serving; the next pass retries
                log.exception("ledger retention pass failed")
            await asyncio.sleep(3600)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        for mod in reversed(self._installed):
            if hasattr(mod, "uninstall"):
                await mod.uninstall(self)
        await asyncio.to_thread(self.ledger.close)
        await self.router.aclose()

    async def reload(self, config: Config) -> None:
        """Apply a changed config without dropping in-flight calls; breaker, limit and latency state
        of deployments that still exist is kept."""
        router = Router.build(config, previous=self.router)
        old = self.router
        self.config, self.router = config, router
        self.pipeline.reconfigure(config, router)
        for transport in old.transports.values():
            if transport not in router.transports.values():
                self.spawn(_close_later(transport))
        log.info("configuration reloaded: %d model groups", len(router.groups))


async def _close_later(transport: Transport, delay: float = 120.0) -> None:
    await asyncio.sleep(delay)  # let in-flight calls on the old transport finish
    await transport.aclose()
