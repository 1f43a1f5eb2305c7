"""Per-deployment limits: concurrency, requests per minute and tokens per minute.

rpm and tpm count what started in the last 60 s, so no 60-second window ever holds more than the
limit (no burst at a window boundary). What started is kept in buckets of `BUCKET_S` (1 s): a bucket
leaves the count only once all of it is older than the window, so a start is held at most `BUCKET_S`
longer than 60 s (never shorter), and memory is at most 61 buckets per limiter whatever the call rate.
tpm is charged with the estimate (prompt + max_tokens) when a request starts and corrected with the
reported usage when it ends (in its bucket, while that is still counted). Running totals keep `check`
O(1) amortised; only the "how long until there is room" answer walks the buckets, and only when a
request is refused."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from architect.config import LimitsConfig

__all__ = ["WINDOW_S", "DeploymentLimiter", "Ticket"]

WINDOW_S = 60.0
BUCKET_S = 1.0
CONCURRENCY_RETRY_S = 0.05


class _Bucket:
    """What started in [ts, ts + BUCKET_S): requests and tokens (estimates, then corrected)."""

    __slots__ = ("live", "requests", "tokens", "ts")

    def __init__(self, ts: float) -> None:
        self.ts = ts
        self.requests = 0
        self.tokens = 0
        self.live = True  # still counted

    @property
    def leaves_at(self) -> float:
        """When all of the bucket is older than the window."""
        return self.ts + BUCKET_S + WINDOW_S


@dataclass(slots=True)
class Ticket:
    tokens: int
    bucket: _Bucket | None  # where the tpm charge is, corrected with the actual usage on release


@dataclass(eq=False)
class DeploymentLimiter:
    config: LimitsConfig
    in_flight: int = 0
    buckets: deque[_Bucket] = field(default_factory=deque)
    requests_used: int = 0
    tokens_used: int = 0
    clock: Callable[[], float] = time.monotonic

    def reconfigured(self, config: LimitsConfig) -> DeploymentLimiter:
        """Keep the logs and counters, apply new limits (config reload)."""
        self.config = config
        return self

    def _trim(self, now: float) -> None:
        buckets = self.buckets
        while buckets and buckets[0].leaves_at <= now:
            b = buckets.popleft()
            b.live = False
            self.requests_used -= b.requests
            self.tokens_used -= b.tokens

    def check(self, est_tokens: int) -> float:
        """0 if a request of `est_tokens` may start now, else seconds until it might."""
        cfg = self.config
        if cfg.max_concurrency is not None and self.in_flight >= cfg.max_concurrency:
            return CONCURRENCY_RETRY_S
        if cfg.rpm is None and cfg.tpm is None:
            return 0.0
        now = self.clock()
        self._trim(now)
        wait = 0.0
        if cfg.rpm is not None and self.requests_used >= cfg.rpm:
            # the bucket that must leave the window before one more request fits
            need = self.requests_used - cfg.rpm + 1
            for b in self.buckets:
                need -= b.requests
                if need <= 0:
                    wait = b.leaves_at - now
                    break
        if cfg.tpm is not None and self.tokens_used + est_tokens > cfg.tpm:
            if est_tokens > cfg.tpm:
                return WINDOW_S  # can never fit; the caller reports the limit
            need = self.tokens_used + est_tokens - cfg.tpm
            for b in self.buckets:
                need -= b.tokens
                if need <= 0:
                    wait = max(wait, b.leaves_at - now)
                    break
            else:
                wait = max(wait, CONCURRENCY_RETRY_S)  # in-flight estimates: room when they settle
        return max(wait, 0.0) if wait > 0 else 0.0

    def acquire(self, est_tokens: int) -> Ticket:
        """Take the slot (call after `check` returned 0)."""
        self.in_flight += 1
        cfg = self.config
        if cfg.rpm is None and cfg.tpm is None:
            return Ticket(est_tokens, None)
        now = self.clock()
        start = now - now % BUCKET_S
        buckets = self.buckets
        if buckets and buckets[-1].ts == start:
            b = buckets[-1]
        else:
            b = _Bucket(start)
            buckets.append(b)
        b.requests += 1
        self.requests_used += 1
        if cfg.tpm is None:
            return Ticket(est_tokens, None)
        b.tokens += est_tokens
        self.tokens_used += est_tokens
        return Ticket(est_tokens, b)

    def release(self, ticket: Ticket, actual_tokens: int | None) -> None:
        """The request ended; correct its tpm charge with the reported usage when known."""
        self.in_flight = max(0, self.in_flight - 1)
        b = ticket.bucket
        if b is not None and actual_tokens is not None and b.live:
            b.tokens += actual_tokens - ticket.tokens
            self.tokens_used += actual_tokens - ticket.tokens

    def snapshot(self) -> dict[str, Any]:
        self._trim(self.clock())
        return {
            "in_flight": self.in_flight,
            "max_concurrency": self.config.max_concurrency,
            "rpm": self.config.rpm,
            "rpm_used": self.requests_used,
            "tpm": self.config.tpm,
            "tpm_used": self.tokens_used,
        }
