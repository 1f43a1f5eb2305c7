"""Circuit breakers and retry backoff.

Breaker per deployment (also for single-deployment groups): closed → open when the failure rate over
a sliding window reaches the threshold (with a minimum number of calls) or after N consecutive
failures; after a cooldown, half-open with a bounded number of concurrent probes; a probe's success
closes it, a failure opens it again. Transitions are kept (bounded) for /readyz and the API."""

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


@dataclass(eq=False)
class CircuitBreaker:
    name: str
    config: BreakerConfig
    state: str = CLOSED
    opened_at: float = 0.0
    consecutive_failures: int = 0
    probes_in_flight: int = 0
    outcomes: deque[tuple[float, bool]] = field(default_factory=deque)
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_HISTORY))
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time

    def reconfigured(self, config: BreakerConfig) -> CircuitBreaker:
        self.config = config
        return self

    def _transition(self, to: str, reason: str) -> None:
        self.history.append({"ts": self.wall(), "from": self.state, "to": to, "reason": reason})
        self.state = to
        if to == OPEN:
            self.opened_at = self.clock()
            self.probes_in_flight = 0
        elif to == CLOSED:
            self.outcomes.clear()
            self.consecutive_failures = 0
            self.probes_in_flight = 0

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.config.cooldown_s - self.clock())

    def allow(self) -> bool:
        """May a request go to this deployment now? Takes a probe slot when half-open."""
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

    def record(self, ok: bool, *, probe: bool | None = None) -> None:
        now = self.clock()
        if self.state == HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)
            if ok:
                self._transition(CLOSED, "probe succeeded")
            else:
                self._transition(OPEN, "probe failed")
            return
        if self.state == OPEN:
            return  # a call admitted before the breaker opened
        window = self.outcomes
        window.append((now, ok))
        horizon = now - self.config.window_s
        while window and window[0][0] < horizon:
            window.popleft()
        if ok:
            self.consecutive_failures = 0
            return
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.config.consecutive_failures:
            self._transition(OPEN, f"{self.consecutive_failures} consecutive failures")
            return
        if len(window) >= self.config.min_calls:
            failures = sum(1 for _, good in window if not good)
            rate = failures / len(window)
            if rate >= self.config.failure_rate:
                self._transition(
                    OPEN, f"failure rate {rate:.0%} over {len(window)} calls in {self.config.window_s:g}s"
                )

    def snapshot(self) -> dict[str, Any]:
        window = list(self.outcomes)
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "window_calls": len(window),
            "window_failures": sum(1 for _, ok in window if not ok),
            "retry_in_s": round(self.retry_in(), 3),
            "history": list(self.history),
        }


def backoff_delay(retry: RetryConfig, attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Full-jitter exponential backoff for retry number `attempt` (1-based), at least Retry-After."""
    cap = min(retry.backoff_max_s, retry.backoff_base_s * (2 ** (attempt - 1)))
    delay = rng.uniform(0, cap)
    if retry_after is not None:
        delay = max(delay, min(retry_after, retry.max_retry_after_s))
    return delay
