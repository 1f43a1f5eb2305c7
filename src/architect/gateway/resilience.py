"""Circuit breakers and retry backoff.

Breaker per deployment (also for single-deployment groups): closed → open when the failure rate over
a sliding window reaches the threshold (with a minimum number of calls) or after N consecutive
failures; after a cooldown, half-open with a bounded number of concurrent probes; a probe's success
closes it, a failure opens it again. Transitions are kept (bounded) for /readyz and the API, and are
reported to an optional listener (the executor publishes them on the event bus).

Every operation is O(1) amortised: the window keeps running counts instead of rescanning. The window is
held as `_BUCKETS` time buckets of calls and failures, so its memory does not grow with the call rate
(a log of every outcome held ~90 bytes per call: ~5 MiB at 2,000 calls/s over the default 30 s); a
bucket leaves the window once all of it is older than `window_s`."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from architect.config import BreakerConfig, RetryConfig

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker", "backoff_delay"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
_HISTORY = 50
_BUCKETS = 32

Listener = Callable[["CircuitBreaker", dict[str, Any]], None]


@dataclass(eq=False)
class CircuitBreaker:
    name: str
    config: BreakerConfig
    state: str = CLOSED
    opened_at: float = 0.0
    consecutive_failures: int = 0
    probes_in_flight: int = 0
    outcomes: deque[list[float]] = field(default_factory=deque)  # [bucket start, calls, failures]
    window_calls: int = 0
    window_failures: int = 0
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_HISTORY))
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    listener: Listener | None = None
    opened_count: int = 0

    def reconfigured(self, config: BreakerConfig) -> CircuitBreaker:
        """Keep the state, apply new thresholds (config reload)."""
        self.config = config
        return self

    def _transition(self, to: str, reason: str) -> None:
        entry = {"ts": self.wall(), "from": self.state, "to": to, "reason": reason}
        self.history.append(entry)
        self.state = to
        if to == OPEN:
            self.opened_at = self.clock()
            self.probes_in_flight = 0
            self.opened_count += 1
        elif to == CLOSED:
            self.outcomes.clear()
            self.window_calls = self.window_failures = 0
            self.consecutive_failures = 0
            self.probes_in_flight = 0
        if self.listener is not None:
            self.listener(self, entry)

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.config.cooldown_s - self.clock())

    def allow(self) -> bool:
        """May a request go to this deployment now? Takes a probe slot when half-open (the caller
        must then report the outcome with `record(..., probe=True)` or give it back with `release`)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self.clock() - self.opened_at < self.config.cooldown_s:
                return False
            self._transition(HALF_OPEN, f"cooldown of {self.config.cooldown_s:g}s elapsed")
        if self.probes_in_flight < self.config.half_open_probes:
            self.probes_in_flight += 1
            return True
        return False

    def release(self, probe: bool) -> None:
        """An admitted call ended without saying anything about health (e.g. the client left)."""
        if probe and self.state == HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)

    def record(self, ok: bool, *, probe: bool = False) -> None:
        """The outcome of a call admitted by `allow` (`probe`: it was admitted while half-open)."""
        if self.state == HALF_OPEN:
            if not probe:
                return  # a call admitted before the breaker opened says nothing about the probe
            self.probes_in_flight = max(0, self.probes_in_flight - 1)
            if ok:
                self._transition(CLOSED, "probe succeeded")
            else:
                self._transition(OPEN, "probe failed")
            return
        if self.state == OPEN:
            return  # a call admitted before the breaker opened
        now = self.clock()
        window = self.outcomes
        width = self.config.window_s / _BUCKETS
        if window and window[-1][0] <= now < window[-1][0] + width:
            bucket = window[-1]
        else:
            bucket = [now - now % width, 0, 0]
            window.append(bucket)
        bucket[1] += 1
        self.window_calls += 1
        if not ok:
            bucket[2] += 1
            self.window_failures += 1
        horizon = now - self.config.window_s
        while window and window[0][0] + width <= horizon:
            _, calls, failures = window.popleft()
            self.window_calls -= int(calls)
            self.window_failures -= int(failures)
        if ok:
            self.consecutive_failures = 0
            return
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.config.consecutive_failures:
            self._transition(OPEN, f"{self.consecutive_failures} consecutive failures")
            return
        n = self.window_calls
        if n >= self.config.min_calls:
            rate = self.window_failures / n
            if rate >= self.config.failure_rate:
                self._transition(OPEN, f"failure rate {rate:.0%} over {n} calls in {self.config.window_s:g}s")

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "window_calls": self.window_calls,
            "window_failures": self.window_failures,
            "probes_in_flight": self.probes_in_flight,
            "retry_in_s": round(self.retry_in(), 3),
            "opened_count": self.opened_count,
            "config": self.config.model_dump(),
            "history": list(self.history),
        }


def backoff_delay(retry: RetryConfig, attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Full-jitter exponential backoff for retry number `attempt` (1-based), at least Retry-After
    (itself capped by `max_retry_after_s`)."""
    cap = min(retry.backoff_max_s, retry.backoff_base_s * (2 ** max(0, attempt - 1)))
    delay = rng.uniform(0, cap)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, retry.max_retry_after_s))
    return delay
