"""Route and attempt(s): sends a call to a group's deployments in strategy order, then along the
group's fallback chain.

- A deployment whose breaker is open or that is over a limit is skipped (noted in the route reason);
  when every deployment is over a limit the call waits up to the group's `limit_wait_s`, then gets a
  429 with Retry-After; when every breaker is open it gets a 503 at once, naming them.
- Retryable failures (429, 5xx, timeouts, connection errors) move on to the next deployment at once;
  trying a deployment again waits a full-jitter exponential backoff, and never less than the
  Retry-After it sent (a Retry-After beyond `max_retry_after_s` or the time left rules it out).
  Attempts and total time are bounded by the group's `retry` settings.
- Non-retryable errors (400, 401, content policy) are returned at once; a context-window error moves
  to the group's `context_window_fallbacks`.
- A call under a budget skips a group none of whose deployments has a known price (its cost could not
  be held against the budget; `gateway.prices`); the failure names it.
- Streams: `send` returns once the first bytes arrived, so failover happens only before them. The
  deployment's slot, in-flight count and breaker outcome are settled when the stream ends, through
  `call.settle_stream` (a stream broken mid-way counts as a failure).

Every attempt is recorded on the call for the ledger."""

from __future__ import annotations

import asyncio
import functools
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
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)
from architect.events import EventBus
from architect.gateway.call import Call, StreamSettle
from architect.gateway.constraints import admitted, refusal
from architect.gateway.limits import Ticket
from architect.gateway.providers.base import UNSUPPORTED, Usage
from architect.gateway.providers.transport import ConnectError, ReadError, TransportError, TransportTimeout
from architect.gateway.resilience import HALF_OPEN, OPEN, CircuitBreaker, backoff_delay
from architect.gateway.routing import Deployment, Group, Route, Router
from architect.records import AttemptRecord

__all__ = ["Executor", "transport_error"]

T = TypeVar("T")
Send = Callable[[Deployment], Awaitable[T]]
_REASON_MAX = 200


def transport_error(exc: TransportError, deployment: Deployment) -> ProviderError:
    if isinstance(exc, TransportTimeout):
        return UpstreamTimeout(f"{deployment.name} timed out", kind="timeout")
    if isinstance(exc, ConnectError):
        return UpstreamError(f"{deployment.name}: connection failed", kind="connection_error")
    if isinstance(exc, ReadError):
        return UpstreamError(f"{deployment.name}: connection broke", kind="connection_reset")
    return UpstreamError(f"{deployment.name}: {exc}", kind="transport_error")


def _health(exc: ProviderError) -> bool:
    """Does this failure say the deployment is healthy? A 400 for a bad prompt does; a 5xx, timeout,
    429 or rejected credentials do not."""
    return not exc.retryable and exc.kind != "upstream_auth"


def _constraint_note(g: Group, needs: frozenset[str], local_only: bool) -> str:
    """Why none of `g`'s deployments may take the call (for the route's failure list)."""
    why = sorted({r for d in g.deployments if (r := refusal(d, needs, local_only)) is not None})
    return "no deployment may take the call (" + ", ".join(why or ["none"]) + ")"


class _Run:
    """What one call's walk through the chain has seen, for the final error."""

    __slots__ = ("failures", "last", "limited_for", "open", "too_large")

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.last: ProviderError | None = None
        self.limited_for: float | None = None
        self.open: list[Deployment] = []
        self.too_large = False


class _Next(Exception):
    """This group is done; go on along the chain (`context`: insert the context-window fallbacks)."""

    def __init__(self, context: bool = False) -> None:
        self.context = context


Sleep = Callable[[float], Awaitable[None]]


class Executor:
    """Runs calls along their group's chain. `clock` (seconds, monotonic) bounds a call's retries and
    waits and `sleep` does the waiting (backoff, limit waits); tests inject both so no test waits."""

    def __init__(
        self,
        router: Router,
        rng: random.Random | None = None,
        events: EventBus | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.router = router
        self.rng = rng or random.Random()
        self.events = events
        self.clock = clock
        self.sleep = sleep
        if events is not None:
            for d in router.deployments():
                d.breaker.listener = functools.partial(self._on_transition, d.group)

    def _on_transition(self, group: str, breaker: CircuitBreaker, entry: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.publish("breaker", {"deployment": breaker.name, "group": group, **entry})

    def chain(self, group: Group, call: Call | None = None) -> list[Group]:
        """The groups a call to `group` may go to, in order: the group, then its fallbacks; for a call
        an `auto` route sent to `group`, the chain it chose (`call.chain`)."""
        if call is not None and call.chain is not None:
            return list(call.chain)
        out = [group]
        for name in group.config.fallbacks:
            g = self.router.group(name)
            if g is not None and g not in out:
                out.append(g)
        return out

    def _insert_context_fallbacks(self, g: Group, chain: list[Group], at: int) -> None:
        """Put `g`'s context-window fallbacks next in the chain (moved up if already further on)."""
        extra: list[Group] = []
        for name in g.config.context_window_fallbacks:
            x = self.router.group(name)
            if x is not None and x not in chain[:at] and x not in extra:
                extra.append(x)
        chain[at:] = extra + [x for x in chain[at:] if x not in extra]

    async def run(self, call: Call, send: Send[T]) -> T:
        group = call.group
        assert group is not None, "the pipeline resolves the group before routing"
        deadline = self.clock() + group.config.retry.max_time_s
        run = _Run()
        chain = self.chain(group, call)
        needs, local_only = call.needs, call.local_only
        gi = 0
        while gi < len(chain):
            g = chain[gi]
            gi += 1
            if g is not group:
                call.fallbacks += 1
            low = call.prompt_size.low if call.prompt_size is not None else None
            admit = admitted(g, needs, local_only)
            if not admit:
                run.failures.append(f"{g.name}: skipped, {_constraint_note(g, needs, local_only)}")
                continue
            routes = self.router.order(
                g, call.est_prompt_tokens or 0, call.max_tokens, fit_tokens=low, deployments=admit
            )
            if not routes:
                run.too_large = True
                run.failures.append(f"{g.name}: the request exceeds every deployment's context window")
                self._insert_context_fallbacks(g, chain, gi)
                continue
            if call.budget_reservation is not None and all(r.deployment.budget_price is None for r in routes):
                run.failures.append(
                    f"{g.name}: skipped, the price of each of its deployments is unknown and the call is "
                    "under a budget (give them price:)"
                )
                continue
            try:
                return await self._group(call, g, routes, send, deadline, run)
            except _Next as nxt:
                if nxt.context:
                    self._insert_context_fallbacks(g, chain, gi)
            if self.clock() >= deadline:
                run.failures.append(f"gave up after {group.config.retry.max_time_s:g}s")
                break
        raise self._final_error(call, run)

    async def _group(
        self, call: Call, g: Group, routes: list[Route], send: Send[T], deadline: float, run: _Run
    ) -> T:
        retry = g.config.retry
        need = (call.est_prompt_tokens or 0) + call.max_tokens
        clock = self.clock
        tries = 0
        start = 0
        tried: dict[Deployment, float | None] = {}  # deployment -> Retry-After of its last failure
        excluded: set[Deployment] = set()
        while tries < retry.max_attempts and clock() < deadline:
            route, probe, wait, skipped = self._pick(routes, start, need, excluded, run)
            if route is None and wait is not None and g.config.limit_wait_s > 0:
                until = min(clock() + g.config.limit_wait_s, deadline)
                while route is None and wait is not None:
                    pause = min(wait, until - clock())
                    if pause <= 0:
                        break
                    await self.sleep(pause)
                    route, probe, wait, skipped = self._pick(routes, start, need, excluded, run)
            if route is None:
                if wait is not None:
                    run.limited_for = wait if run.limited_for is None else min(run.limited_for, wait)
                    run.failures.append(f"{g.name}: every deployment is at its rate/concurrency limit")
                break
            d = route.deployment
            if d in tried:  # trying a deployment again: back off (at least its Retry-After)
                delay = backoff_delay(retry, tries, tried[d], self.rng)
                remaining = deadline - clock()
                if delay >= remaining:
                    d.breaker.release(probe)
                    break
                await self.sleep(delay)
            tries += 1
            reason = route.reason if call.route_prefix is None else f"{call.route_prefix} | {route.reason}"
            if probe:
                reason += "; half-open probe"
            if skipped:
                reason += "; skipped " + ", ".join(skipped)
            call.route_reason = reason[:_REASON_MAX]
            try:
                return await self._attempt(call, d, send, need, probe)
            except ProviderError as exc:
                run.last = exc
                run.failures.append(f"{d.name} ({exc.kind})")
                if exc.code == UNSUPPORTED:  # this deployment cannot take the request: try the others
                    excluded.add(d)
                    tries -= 1
                    start = routes.index(route) + 1
                    continue
                if not exc.retryable:
                    if exc.kind == "context_window" and g.config.context_window_fallbacks:
                        raise _Next(context=True) from None
                    raise
                tried[d] = exc.retry_after
                ra = exc.retry_after
                if ra is not None and ra > min(retry.max_retry_after_s, deadline - clock()):
                    excluded.add(d)  # it asked for more patience than this call has
                start = routes.index(route) + 1
        raise _Next()

    @staticmethod
    def _pick(
        routes: list[Route], start: int, tokens: int, excluded: set[Deployment], run: _Run
    ) -> tuple[Route | None, bool, float | None, list[str]]:
        """The first route from `start` (wrapping) whose limits and breaker admit it, and whether it
        is a half-open probe; else the shortest limit wait (None if no limit blocked). Also the
        deployments passed over and why (for the route reason)."""
        n = len(routes)
        wait: float | None = None
        skipped: list[str] = []
        for i in range(n):
            route = routes[(start + i) % n]
            d = route.deployment
            if d in excluded:
                continue
            w = d.limiter.check(tokens)
            if w > 0:
                wait = w if wait is None else min(wait, w)
                skipped.append(f"{d.name} (limit)")
                continue
            if not d.breaker.allow():
                if d not in run.open:
                    run.open.append(d)
                skipped.append(f"{d.name} (circuit {d.breaker.state})")
                continue
            return route, d.breaker.state == HALF_OPEN, None, skipped
        return None, False, wait, skipped

    async def _attempt(self, call: Call, d: Deployment, send: Send[T], tokens: int, probe: bool) -> T:
        ticket = d.limiter.acquire(tokens)
        d.in_flight += 1
        t0 = time.perf_counter()
        row = AttemptRecord(
            attempt=len(call.attempts) + 1,
            ts=time.time(),
            model_group=d.group,
            deployment=d.name,
            provider=d.provider,
            route_reason=call.route_reason,
        )
        call.attempts.append(row)
        call.attempt_ttft_ms = None
        health: bool | None = None
        deferred = False
        try:
            try:
                result = await send(d)
            except TransportError as exc:
                raise transport_error(exc, d) from None
            except TimeoutError:
                raise UpstreamTimeout(
                    f"{d.name} timed out after {d.config.timeout_s:g}s", kind="timeout"
                ) from None
            row.status, row.http_status, row.ttft_ms = "ok", 200, call.attempt_ttft_ms
            if call.stream:
                call.settle_stream = self._stream_done(d, ticket, probe, row, t0)
                deferred = True
            else:
                health = True
            return result
        except ProviderError as exc:
            row.status, row.http_status, row.error_kind = "error", exc.upstream_status, exc.kind
            health = _health(exc)
            raise
        except asyncio.CancelledError:
            row.status, row.error_kind = "cancelled", "client_closed"
            raise
        except Exception:
            row.status, row.error_kind = "error", "internal"
            health = False
            raise
        finally:
            if not deferred:
                total = (time.perf_counter() - t0) * 1000.0
                row.total_ms = total
                usage = call.usage if health is True else None
                self._settle(d, ticket, probe, health, usage)
                if health is True and row.status == "ok":
                    d.observe_latency(row.ttft_ms, total)

    @staticmethod
    def _settle(d: Deployment, ticket: Ticket, probe: bool, health: bool | None, usage: Usage | None) -> None:
        d.in_flight -= 1
        d.limiter.release(ticket, (usage.prompt_tokens + usage.completion_tokens) if usage else None)
        if health is None:  # a client going away says nothing about the deployment's health
            d.breaker.release(probe)
        else:
            d.breaker.record(health, probe=probe)

    def _stream_done(
        self, d: Deployment, ticket: Ticket, probe: bool, row: AttemptRecord, t0: float
    ) -> StreamSettle:
        settled = False

        def done(healthy: bool | None, usage: Usage | None) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            total = (time.perf_counter() - t0) * 1000.0
            row.total_ms = total
            if healthy is False:
                row.status, row.error_kind = "error", "truncated"
            self._settle(d, ticket, probe, healthy, usage)
            if healthy:
                d.observe_latency(row.ttft_ms, total)

        return done

    @staticmethod
    def _final_error(call: Call, run: _Run) -> GatewayError:
        tried = "; ".join(run.failures) or "nothing could be tried"
        last = run.last
        still_open = [d for d in run.open if d.breaker.state == OPEN]
        group = f"model '{call.model}'"
        if last is None:
            if run.limited_for is not None:
                return RateLimited(
                    f"{group}: every deployment is at its limits; retry in {run.limited_for:.1f}s ({tried})",
                    retry_after=run.limited_for,
                )
            if run.open:
                names = ", ".join(d.name for d in run.open)
                retry_in = min(d.breaker.retry_in() for d in run.open)
                return Unavailable(
                    f"{group} is unavailable: circuit open for {names}; retry in {retry_in:.1f}s",
                    kind="circuit_open",
                    retryable=True,
                    code="circuit_open",
                    headers={"retry-after": str(max(1, round(retry_in + 0.499)))},
                )
            if run.too_large:
                low = call.prompt_size.low if call.prompt_size is not None else call.est_prompt_tokens or 0
                return UpstreamRefused(
                    f"{group}: the request is larger than the context window of every deployment "
                    f"(at least about {low} prompt + {call.max_tokens} completion tokens)",
                    kind="context_window",
                    code="context_length_exceeded",
                )
            return Unavailable(
                f"{group}: no deployment could take the request ({tried})",
                kind="no_deployment",
                retryable=False,
                code="no_deployment",
            )
        if not last.retryable:
            return last
        if last.status == 429:
            return UpstreamRateLimited(
                f"{group}: upstream rate limited; tried: {tried}",
                kind=last.kind,
                retry_after=last.retry_after,
                code="rate_limit_exceeded",
                headers={"retry-after": str(max(1, round((last.retry_after or 1.0) + 0.499)))},
            )
        cls: type[ProviderError] = UpstreamTimeout if last.kind == "timeout" else UpstreamError
        headers: dict[str, str] = {}
        if still_open:
            cls = Unavailable
            retry_in = min(d.breaker.retry_in() for d in still_open)
            headers["retry-after"] = str(max(1, round(retry_in + 0.499)))
        return cls(
            f"{group}: the upstream failed; tried: {tried}",
            kind=last.kind,
            code=last.kind,
            headers=headers,
            upstream_status=last.upstream_status,
        )
