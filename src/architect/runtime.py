"""The composition root: everything a running gateway holds, built here, explicitly and typed, from a
Config and a Store: the router, the request pipeline and its hooks (per-key limits, the response
cache, budgets, the stored Responses API answers), the ledger writer and its observers (rollups and Prometheus counters), the event bus,
the authenticator with its key resolver, key states and dashboard sessions, the login guard, the
alerter, the orchestrator's task manager, the feedback endpoint's recorder, and routing: the route hook
(`route`: every call's route settings, the `auto` groups' decisions) over the auto routes' quality model
(`quality`: built, and numpy imported, only when the config has an auto group or it is asked for). No
globals: the app and the API reach it through
`app.state.runtime`.

It sits above the domains (it builds their services) and below the API, the dashboard and the CLI
(which read it); see docs/architecture.md for the layering rule. Construction does no I/O; `start`
runs what needs the event loop (loading budgets, the semantic cache, background loops) and `stop`
drains it."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from architect.access.auth import Authenticator, Sessions
from architect.access.budgets import BudgetGuard
from architect.access.keys import KeyResolver, KeyService, principal_for
from architect.access.keystate import KeyStates
from architect.access.limits import KeyLimiter
from architect.access.login import AuditRow, LoginGuard
from architect.cache.service import CacheService
from architect.cache.tiers import L1Cache, L2Tier, RedisL2, StoreL2, Tiers
from architect.config import Config
from architect.errors import ConfigError
from architect.events import EventBus
from architect.gateway.apis.responses_state import ResponseStore
from architect.gateway.feedback import Feedback
from architect.gateway.hooks import Hooks
from architect.gateway.ledger import LedgerWriter
from architect.gateway.pipeline import Pipeline
from architect.gateway.providers.transport import Transport
from architect.gateway.routing import Router
from architect.metrics.alerts import Alerter
from architect.metrics.observer import LedgerMetrics
from architect.metrics.prometheus import PromMetrics
from architect.metrics.rollups import Rollups
from architect.principal import ADMIN, ANONYMOUS, Principal
from architect.routing.decide import AutoRouter
from architect.routing.policy import project_route
from architect.routing.predict import PriorModel
from architect.store import Store

if TYPE_CHECKING:
    from architect.orchestrator.manager import Manager
    from architect.routing.features import HashedFeatures
    from architect.routing.learner import QualityModel

__all__ = ["Runtime", "has_auto_route"]

log = logging.getLogger("architect.gateway")


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
        self.started_at = time.time()
        self.events = EventBus()
        self.router = Router.build(config, transports=transports)
        # access: who is calling, their keys, limits and budgets, the dashboard's login
        self.key_resolver = KeyResolver(store.keys)
        self.key_states = KeyStates(store.keys)
        self.keys = KeyService(store.keys, store.budgets, store.audit)
        self.auth = Authenticator(
            config.auth.admin_key,
            self.key_resolver,
            sessions=Sessions.from_config(config.auth.sessions),
            key_states=self.key_states,
        )
        self.login = LoginGuard(config.auth.login, self._write_login_audit)
        self.key_limits = KeyLimiter()

        # the ledger writer; metrics: rollups and counters it feeds, the alert evaluator
        self.ledger = LedgerWriter(
            store.ledger,
            queue_size=config.ledger.queue_size,
            flush_interval_ms=config.ledger.flush_interval_ms,
            thread_nice=config.ledger.writer_nice,
            quarantine_path=ledger_quarantine,
        )
        self.rollups = Rollups(store.rollups, store.ledger)
        self.prometheus = PromMetrics(self)  # its gauges read the router, the ledger and the bus
        self.ledger.observers.append(LedgerMetrics(self.rollups, self.prometheus))
        self.alerter = Alerter(self, interval_s=config.alert_interval_s)
        self.budgets = BudgetGuard(store.budgets, notify=self.alerter.emit)

        # the response cache (its semantic tier, an optional extra, is attached by `start`)
        tiers = Tiers(L1Cache(config.cache.l1_max_bytes, time.time), _l2(config, store))
        self.cache = CacheService(lambda: self.config.cache, tiers)

        # stored Responses API answers (previous_response_id)
        self.responses = ResponseStore(store.responses, lambda: self.config)

        # outcomes of calls (`POST /v1/feedback`) that auto routes learn from (`quality`)
        self.feedback = Feedback(self.ledger, lambda: store.routing)
        self._quality_started = False
        # routing: the route settings of every call and the `auto` groups' decisions; P(acceptable) is
        # the prior until `_start_quality` hands the route the learner (a config with an auto group)
        self.route = AutoRouter(PriorModel())

        # the request path
        self.hooks = Hooks(
            key_limits=self.key_limits,
            cache=self.cache,
            budgets=self.budgets,
            conversations=self.responses,
            routes=self.route,
        )
        self.pipeline = Pipeline(config, self.router, self.ledger, self.events, self.hooks)
        self._tasks: list[asyncio.Task[Any]] = []

    @functools.cached_property
    def tasks(self) -> Manager:
        """The orchestrator's task manager (built, and the orchestrator imported, on first use); its
        state changes are published on the event bus."""
        from architect.orchestrator.manager import Manager

        return Manager(
            self.store.tasks,
            publish=functools.partial(self.events.publish_from_thread, "task"),
            audit=self.store.audit.add_audit,
        )

    @functools.cached_property
    def quality(self) -> QualityModel:
        """The auto routes' model of each candidate's quality, synced with the store (built, and
        numpy imported, on first use; started with the runtime when the config has an auto group)."""
        from architect.routing.learner import QualityModel

        cfg = self.config.routing
        return QualityModel(
            self.store.routing, scope=cfg.scope, refresh_s=cfg.refresh_s, dim=self.route_features.dim
        )

    @functools.cached_property
    def route_features(self) -> HashedFeatures:
        """The auto route's feature maker: hashed n-grams, shape and request columns, plus the static
        embedding when `routing.embed` is set (ConfigError when the `semantic` extra is missing)."""
        from architect.routing.features import HashedFeatures, embeddings_available

        embed = self.config.routing.embed
        if embed and not embeddings_available():
            raise ConfigError(
                "routing.embed needs the semantic extra (pip install 'architect-llm[semantic]')"
            )
        return HashedFeatures(embed=embed)

    def quality_priors(self) -> dict[str, float]:
        """The price-tier prior means auto routes used last (none while no model is built)."""
        return self.quality.priors if "quality" in self.__dict__ else {}

    async def _start_quality(self) -> None:
        if self._quality_started or not has_auto_route(self.config):
            return
        self._quality_started = True
        self.route.use_features(self.route_features)
        self.route.quality = self.quality
        await self.quality.start()

    async def project_settings_changed(self) -> None:
        """Read every project's route settings from the store into the route hook (at start, then
        every `routing.refresh_s`: another process's change is in force here within that)."""
        rows = await asyncio.to_thread(self.store.routing.list_settings)
        self.route.set_projects({r["project"]: project_route(r) for r in rows})

    async def _sweep_key_outcomes(self) -> None:
        await asyncio.to_thread(self.store.routing.sweep_key_outcomes)

    # -- life cycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        _warn_unpriced(self.router)
        self.ledger.start()
        self.spawn(_every(self.login.config.window_s, self.login.flush, "writing the login audit"))
        await self.budgets_changed()
        self.spawn(_every(self.budgets.refresh_s, self.budgets_changed, "refreshing budgets"))
        if self.config.cache.semantic.get("enabled"):
            from architect.cache.semantic import build_semantic  # the optional extra's seam

            semantic = build_semantic(self.config.cache.semantic, self.pipeline.chat)
            await semantic.start()
            self.cache.attach_semantic(semantic)
        self.spawn(_compact_loop(self.rollups))
        self.spawn(self.alerter.run())
        if self.config.alert_webhook:
            self.spawn(self.alerter.deliver())
        self.spawn(_every(3600.0, self._purge_responses, "removing expired responses"))
        await self._start_quality()
        await self.project_settings_changed()
        self.spawn(
            _every(self.config.routing.refresh_s, self.project_settings_changed, "reading project settings")
        )
        self.spawn(
            _every(KEY_SWEEP_EVERY_S, self._sweep_key_outcomes, "applying task outcomes to late calls")
        )
        if self.config.ledger.retention_days:
            self.spawn(self._retention_loop(self.config.ledger.retention_days))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        return task

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await self.responses.aclose()
        if "quality" in self.__dict__:
            await self.quality.aclose()
        # what the ledger holds now, and the rollups of it (the final flush's rows are aggregated by
        # the closing writer's observers; `close` below writes those)
        await asyncio.to_thread(self.ledger.flush)
        try:
            await asyncio.to_thread(self.rollups.flush)
        except Exception:
            log.exception("final rollup flush failed")
        semantic = self.cache.semantic
        if semantic is not None:
            await semantic.aclose()
        await self.cache.aclose()
        await self.login.flush(force=True)
        await self.budgets.drain()
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
        _warn_unpriced(router)
        await self._start_quality()

    # -- services the API and the CLI use ------------------------------------------------------
    async def budgets_changed(self) -> None:
        """Re-read the budgets (after one was set or deleted, and every `refresh_s`)."""
        await self.budgets.refresh()
        self.hooks.budgets_active = self.budgets.active

    def principal_of(self, key_id: str | None) -> Principal | None:
        """The principal a ledger row's key id stands for now (None: the key is gone, revoked or
        expired). Reads the store."""
        if key_id is None:
            return ANONYMOUS
        if key_id == "admin":
            return ADMIN
        row = self.store.keys.get_key(key_id)
        if row is None or row.get("revoked_at") is not None:
            return None
        if row.get("expires_at") is not None and row["expires_at"] <= time.time():
            return None
        return principal_for(row)

    async def _purge_responses(self) -> None:
        n = await self.responses.purge()
        if n:
            log.info("responses: removed %d expired", n)

    async def _write_login_audit(self, row: AuditRow) -> None:
        audit = self.store.audit
        await asyncio.to_thread(audit.add_audit, row.actor, row.action, row.target, None, row.after)

    async def _retention_loop(self, days: int) -> None:
        while True:
            try:
                n = await asyncio.to_thread(self.store.ledger.purge_before, time.time() - days * 86400)
                if n:
                    log.info("ledger retention: removed %d calls older than %d days", n, days)
            except Exception:  # keep serving; the next pass retries
                log.exception("ledger retention pass failed")
            await asyncio.sleep(3600)


KEY_SWEEP_EVERY_S = 30.0  # task outcomes are applied to the calls the ledger wrote since, this often


def has_auto_route(config: Config) -> bool:
    """Whether a model group of the config is an `auto` route (the model is started only then)."""
    return any(str(g.strategy) == "auto" for g in config.models)


def _l2(config: Config, store: Store) -> L2Tier | None:
    cfg = config.cache
    if cfg.l2 == "store":
        return StoreL2(store.cache, time.time)
    if cfg.l2 == "redis":
        if not cfg.redis_url:
            raise ConfigError("cache.redis_url: required when cache.l2 is 'redis'")
        return RedisL2(cfg.redis_url, cfg.redis_prefix, time.time)
    return None


async def _every(seconds: float, job: Callable[[], Awaitable[None]], what: str) -> None:
    """Run `job()` every `seconds`; a failure is logged and the next pass retries."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("%s failed", what)


async def _compact_loop(rollups: Rollups, every_s: float = 60.0) -> None:
    while True:
        try:
            await asyncio.to_thread(rollups.compact)
        except Exception:
            log.exception("rollup compaction failed")
        await asyncio.sleep(every_s)


async def _close_later(transport: Transport, delay: float = 120.0) -> None:
    await asyncio.sleep(delay)  # let in-flight calls on the old transport finish
    await transport.aclose()


def _warn_unpriced(router: Router) -> None:
    """Log a warning naming each deployment whose price is unknown (its calls' cost is recorded as
    unknown, and totals say how many calls they leave out)."""
    for d in router.unpriced():
        log.warning("deployment %s: price unknown: %s", d.name, d.pricing.detail)
