"""Route and attempt(s): sends a call to a group's deployments in strategy order, retrying retryable
failures with backoff (honouring Retry-After) within the group's attempt and time bounds, skipping
open breakers and deployments over their limits, then walking the fallback chain. Every attempt is
recorded on the call for the ledger."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from architect.errors import (
    GatewayError,
    ProviderError,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from architect.gateway.call import Call
from architect.gateway.providers.base import Usage
from architect.gateway.providers.transport import ConnectError, ReadError, TransportError, TransportTimeout
from architect.gateway.resilience import OPEN, backoff_delay
from architect.gateway.routing import Deployment, Group, Route, Router

__all__ = ["Executor", "transport_error"]

T = TypeVar("T")
Send = Callable[[Deployment], Awaitable[T]]


def transport_error(exc: TransportError, deployment: Deployment) -> ProviderError:
    if isinstance(exc, TransportTimeout):
        return UpstreamTimeout(f"{deployment.name} timed out", kind="timeout")
    if isinstance(exc, ConnectError):
        return UpstreamError(f"{deployment.name}: connection failed", kind="connection_error")
    if isinstance(exc, ReadError):
        return UpstreamError(f"{deployment.name}: connection broke", kind="connection_reset")
    return UpstreamError(f"{deployment.name}: {exc}", kind="transport_error")


class Executor:
    def __init__(self, router: Router, rng: random.Random | None = None) -> None:
        self.router = router
        self.rng = rng or random.Random()

    def chain(self, group: Group) -> list[Group]:
        out = [group]
        for name in group.config.fallbacks:
            g = self.router.group(name)
            if g is not None and g not in out:
                out.append(g)
        return out

    async def run(self, call: Call, send: Send[T]) -> T:
        group: Group = call.group
        retry = group.config.retry
        deadline = time.monotonic() + retry.max_time_s
        est = call.est_prompt_tokens or 0
        failures: list[str] = []
        last: ProviderError | None = None
        limited_for: float | None = None
        breakers_open: list[Deployment] = []
        chain = self.chain(group)
        gi = 0
        while gi < len(chain):
            g = chain[gi]
            gi += 1
            if g is not group:
                call.fallbacks += 1
            routes = self.router.order(g, est, call.max_tokens)
            if not routes:
                failures.append(f"{g.name}: no deployment with a large enough context window")
                continue
            tries = 0
            start = 0
            while tries < g.config.retry.max_attempts and time.monotonic() < deadline:
                route, wait, open_ = self._pick(routes, start, est + call.max_tokens)
                breakers_open.extend(d for d in open_ if d not in breakers_open)
                if route is None and wait is not None and g.config.limit_wait_s > 0:
                    pause = min(wait, g.config.limit_wait_s, deadline - time.monotonic())
                    if pause > 0:
                        await asyncio.sleep(pause)
                        route, wait, _ = self._pick(routes, start, est + call.max_tokens)
                if route is None:
                    if wait is not None:
                        limited_for = wait if limited_for is None else min(limited_for, wait)
                        failures.append(f"{g.name}: every deployment is at its rate/concurrency limit")
                    break
                d = route.deployment
                tries += 1
                call.route_reason = route.reason
                try:
                    return await self._attempt(call, d, send, est)
                except ProviderError as exc:
                    last = exc
                    failures.append(f"{d.name} ({exc.kind})")
                    if not exc.retryable:
                        if exc.kind == "context_window" and g.config.context_window_fallbacks:
                            extra = [self.router.group(n) for n in g.config.context_window_fallbacks]
                            chain[gi:gi] = [x for x in extra if x is not None and x not in chain]
                            break
                        raise
                    start = routes.index(route) + 1
                    single = len(routes) == 1
                    remaining = deadline - time.monotonic()
                    if tries < g.config.retry.max_attempts and remaining > 0 and (single or exc.retry_after):
                        delay = backoff_delay(g.config.retry, tries, exc.retry_after, self.rng)
                        await asyncio.sleep(min(delay, remaining))
        raise self._final_error(call, failures, last, limited_for, breakers_open)

    @staticmethod
    def _pick(
        routes: list[Route], start: int, tokens: int
    ) -> tuple[Route | None, float | None, list[Deployment]]:
        """The first route from `start` (wrapping) whose limits and breaker admit it; else the shortest
        limit wait (None if no limit blocked) and the deployments whose breakers are open."""
        n = len(routes)
        wait: float | None = None
        open_: list[Deployment] = []
        for i in range(n):
            route = routes[(start + i) % n]
            d = route.deployment
            w = d.limiter.check(tokens)
            if w > 0:
                wait = w if wait is None else min(wait, w)
                continue
            if not d.breaker.allow():
                open_.append(d)
                continue
            return route, None, open_
        return None, wait, open_

    async def _attempt(self, call: Call, d: Deployment, send: Send[T], est: int) -> T:
        tokens = est + call.max_tokens
        ticket = d.limiter.acquire(tokens)
        d.in_flight += 1
        t0 = time.perf_counter()
        ok = False
        row: dict[str, Any] = {
            "request_id": call.request_id,
            "attempt": len(call.attempt_rows) + 1,
            "ts": time.time(),
            "model_group": d.group,
            "deployment": d.name,
            "provider": d.provider,
            "route_reason": call.route_reason,
        }
        call.attempt_rows.append(row)
        try:
            try:
                result = await send(d)
            except TransportError as exc:
                raise transport_error(exc, d) from None
            ok = True
            row.update(status="ok", http_status=200)
            return result
        except ProviderError as exc:
            row.update(status="error", http_status=exc.upstream_status, error_kind=exc.kind)
            raise
        except asyncio.CancelledError:
            row.update(status="cancelled", error_kind="client_closed")
            raise
        finally:
            d.in_flight -= 1
            total = (time.perf_counter() - t0) * 1000.0
            row["total_ms"] = total
            if row.get("error_kind") != "client_closed":
                # a client going away says nothing about the deployment's health
                d.breaker.record(ok)
            usage: Usage | None = call.usage if ok else None
            d.limiter.release(ticket, (usage.prompt_tokens + usage.completion_tokens) if usage else None)
            if ok:
                row["ttft_ms"] = call.extra.get("attempt_ttft_ms")
                d.observe_latency(row["ttft_ms"], total)

    @staticmethod
    def _final_error(
        call: Call,
        failures: list[str],
        last: ProviderError | None,
        limited_for: float | None,
        breakers_open: list[Deployment],
    ) -> GatewayError:
        tried = "; ".join(failures) or "nothing could be tried"
        if last is None and breakers_open:
            names = ", ".join(d.name for d in breakers_open)
            retry_in = min(d.breaker.retry_in() for d in breakers_open)
            return Unavailable(
                f"model '{call.model}' is unavailable: circuit open for {names}; retry in {retry_in:.1f}s",
                kind="circuit_open",
                retryable=True,
                code="circuit_open",
                headers={"retry-after": str(max(1, round(retry_in + 0.499)))},
            )
        if last is None and limited_for is not None:
            return RateLimited(
                f"model '{call.model}': all deployments are at their limits ({tried})",
                retry_after=limited_for,
            )
        if last is None:
            return Unavailable(
                f"model '{call.model}': no deployment could take the request ({tried})",
                kind="no_deployment",
                retryable=False,
            )
        cls: type[ProviderError] = UpstreamTimeout if last.kind == "timeout" else UpstreamError
        if last.status == 429:
            err: ProviderError = ProviderError(
                f"model '{call.model}': upstream rate limited; tried: {tried}",
                kind=last.kind,
                retry_after=last.retry_after,
            )
            err.status, err.type = 429, "rate_limit_error"
            if last.retry_after:
                err.headers["retry-after"] = str(max(1, round(last.retry_after + 0.499)))
            return err
        if any(d.breaker.state == OPEN for d in breakers_open):
            cls = Unavailable
        return cls(f"model '{call.model}': the upstream failed; tried: {tried}", kind=last.kind, code=last.kind)
