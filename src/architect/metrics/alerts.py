"""Alert rules from `config.alerts`, evaluated continuously in a background task.

Kinds: `budget` (a budget's spend / limit >= threshold, a fraction, e.g. 0.8; target "scope:target"
or all budgets), `error_rate` (errors / requests over `window_s` >= threshold, target a model group or
deployment or everything), `latency_p95` (p95 total latency over `window_s` >= threshold ms) and
`breaker_open` (a deployment's breaker not closed for >= threshold minutes).

Each firing and resolution is recorded once across processes (a conditional update of the rule's
state in the store), logged, published on the event bus (topic "alert") and POSTed to
`config.alert_webhook` by a separate task with retries and exponential backoff, so neither the
requests nor the evaluation ever wait for the webhook. The webhook client is the gateway's own
`HTTP1Transport` (TLS with the system's trusted CAs; each attempt bounded by `webhook_timeout_s`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from architect.config import AlertRule, Config
from architect.events import EventBus
from architect.gateway.providers.http1 import HTTP1Transport
from architect.gateway.providers.transport import HTTPRequest, TransportError
from architect.gateway.routing import Router
from architect.money import usd
from architect.store import Store

__all__ = ["AlertHost", "Alerter"]

log = logging.getLogger("architect.alerts")


class AlertHost(Protocol):
    """What the alerter reads (the runtime: its config and router change on a reload)."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    @property
    def events(self) -> EventBus: ...

    @property
    def router(self) -> Router: ...


class Alerter:
    def __init__(
        self,
        runtime: AlertHost,
        *,
        interval_s: float = 10.0,
        webhook_attempts: int = 5,
        webhook_backoff_s: float = 0.5,
        webhook_timeout_s: float = 10.0,
    ) -> None:
        self.runtime = runtime
        self.repo = runtime.store.alerts
        self.budgets = runtime.store.budgets
        self.interval_s = interval_s
        self.webhook_attempts = webhook_attempts
        self.webhook_backoff_s = webhook_backoff_s
        self.webhook_timeout_s = webhook_timeout_s
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._not_closed_since: dict[str, float] = {}
        self._states: dict[str, str] = {}
        self.webhook_failures = 0
        self.webhook_sent = 0

    # -- recording -----------------------------------------------------------------------------------
    async def emit(self, event: Mapping[str, Any]) -> dict[str, Any]:
        row = {"ts": time.time(), "target": None, "value": None, **event}
        row["id"] = await asyncio.to_thread(self.repo.add_alert_event, row)
        (log.warning if row["state"] == "firing" else log.info)(
            "alert %s %s: %s", row["rule"], row["state"], row["message"]
        )
        self.runtime.events.publish("alert", dict(row))
        if self.runtime.config.alert_webhook:
            try:
                self._outbox.put_nowait(dict(row))
            except asyncio.QueueFull:
                self.webhook_failures += 1
                log.error("alert webhook outbox is full; alert %s not sent", row["id"])
        return row

    async def _transition(
        self, rule: AlertRule, target: str | None, firing: bool, value: float, msg: str
    ) -> None:
        key = f"{rule.name}|{target or '*'}"
        state = "firing" if firing else "resolved"
        states = self._states
        known = states.get(key)
        if known is None and not firing:
            return  # never fired: nothing to resolve
        if known == state:
            return
        if await asyncio.to_thread(self.repo.flip_alert_state, key, state, time.time()):
            await self.emit(
                {
                    "rule": rule.name,
                    "kind": rule.kind,
                    "state": state,
                    "target": target,
                    "value": value,
                    "message": msg,
                }
            )
        states[key] = state

    # -- evaluation ----------------------------------------------------------------------------------
    async def evaluate(self) -> None:
        rules = self.runtime.config.alerts
        if not rules:
            return
        self._states = {k: v["state"] for k, v in (await asyncio.to_thread(self.repo.alert_states)).items()}
        for rule in rules:
            try:
                await getattr(self, f"_eval_{rule.kind}")(rule)
            except Exception:
                log.exception("evaluating alert rule %s failed", rule.name)

    async def _eval_budget(self, rule: AlertRule) -> None:
        threshold = rule.threshold  # a fraction in (0, 1] (the config refuses others)
        for b in await asyncio.to_thread(self.budgets.list_budgets):
            target = f"{b['scope']}:{b['target']}"
            if rule.target and rule.target not in (target, b["target"]):
                continue
            frac = b["spent_usd"] / b["limit_usd"] if b["limit_usd"] else 0.0
            firing = frac >= threshold
            await self._transition(
                rule,
                f"{target}:{b['period']}",
                firing,
                round(100 * frac, 2),
                f"{b['scope']} '{b['target']}' {b['period']} budget at {100 * frac:.1f}% of "
                f"{usd(b['limit_usd'])} (threshold {100 * threshold:.0f}%)",
            )

    async def _window(self, rule: AlertRule, q: float | None = None) -> dict[str, Any]:
        """The rule's window counted by the store (never its rows: a busy window holds many)."""
        now = time.time()
        stats: dict[str, Any] = await asyncio.to_thread(
            self.runtime.store.ledger.window_stats, now - rule.window_s, now + 1, rule.target or None, q
        )
        return stats

    async def _eval_error_rate(self, rule: AlertRule) -> None:
        w = await self._window(rule)
        n, errors = w["calls"], w["errors"]
        rate = errors / n if n else 0.0
        await self._transition(
            rule,
            rule.target,
            bool(n) and rate >= rule.threshold,
            round(rate, 4),
            f"error rate {100 * rate:.1f}% ({errors}/{n}) over {rule.window_s:g}s "
            f"for {rule.target or 'all models'} (threshold {100 * rule.threshold:.1f}%)",
        )

    async def _eval_latency_p95(self, rule: AlertRule) -> None:
        p95 = (await self._window(rule, 0.95))["quantile_ms"]
        await self._transition(
            rule,
            rule.target,
            p95 is not None and p95 >= rule.threshold,
            round(p95 or 0.0, 1),
            f"p95 latency {p95 or 0:,.0f} ms over {rule.window_s:g}s for {rule.target or 'all models'} "
            f"(SLO {rule.threshold:,.0f} ms)",
        )

    async def _eval_breaker_open(self, rule: AlertRule) -> None:
        now = time.time()
        for d in self.runtime.router.deployments():
            if rule.target and rule.target not in (d.name, d.group):
                continue
            if d.breaker.state == "closed":
                self._not_closed_since.pop(d.name, None)
                since = None
            else:
                since = self._not_closed_since.setdefault(d.name, now)
            minutes = (now - since) / 60 if since is not None else 0.0
            await self._transition(
                rule,
                d.name,
                since is not None and minutes >= rule.threshold,
                round(minutes, 2),
                f"circuit breaker of {d.name} is {d.breaker.state} for {minutes:.1f} min "
                f"(threshold {rule.threshold:g} min)",
            )

    async def run(self) -> None:
        while True:
            try:
                await self.evaluate()
            except Exception:
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.interval_s)

    # -- webhook -------------------------------------------------------------------------------------
    async def deliver(self) -> None:
        url = self.runtime.config.alert_webhook
        if not url:
            return
        client = HTTP1Transport(max_connections=1)
        try:
            while True:
                event = await self._outbox.get()
                await self._post(client, url, event)
        finally:
            await client.aclose()

    async def _post(self, client: HTTP1Transport, url: str, event: dict[str, Any]) -> bool:
        body = orjson.dumps({"type": "architect.alert", "alert": event})
        headers = {"content-type": "application/json", "user-agent": "architect-alerts"}
        delay = self.webhook_backoff_s
        for attempt in range(1, self.webhook_attempts + 1):
            try:
                resp = await client.send(HTTPRequest("POST", url, headers, body, self.webhook_timeout_s))
                await resp.read()
                if resp.status < 300:
                    self.webhook_sent += 1
                    return True
                why = f"HTTP {resp.status}"
            except TransportError as exc:
                why = f"{type(exc).__name__}: {exc}"
            log.warning("alert webhook attempt %d/%d failed: %s", attempt, self.webhook_attempts, why)
            if attempt < self.webhook_attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        self.webhook_failures += 1
        log.error(
            "alert webhook gave up on alert %s after %d attempts", event.get("id"), self.webhook_attempts
        )
        return False
