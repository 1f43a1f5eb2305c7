"""Per-deployment limits: concurrency, requests per minute and tokens per minute.

rpm and tpm use a sliding log over the last 60 s, so no 60-second window ever holds more than the
limit (no burst at a window boundary). tpm is charged with the estimate (prompt + max_tokens) when a
request starts and corrected with the reported usage when it ends. Running totals keep `check`
O(1) amortised; only the "how long until there is room" answer walks the log, and only when a
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
CONCURRENCY_RETRY_S = 0.05


class _Entry:
    __slots__ = ("live", "tokens", "ts")

    def __init__(self, ts: float, tokens: int) -> None:
        self.ts = ts
        self.tokens = tokens
        self.live = True  # still inside the 60 s log


@dataclass(slots=True)
class Ticket:
    tokens: int
    entry: _Entry | None  # the tpm log entry, corrected with the actual usage on release


@dataclass(eq=False)
class DeploymentLimiter:
    config: LimitsConfig
    in_flight: int = 0
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[_Entry] = field(default_factory=deque)
    tokens_used: int = 0
    clock: Callable[[], float] = time.monotonic

    def reconfigured(self, config: LimitsConfig) -> DeploymentLimiter:
        """Keep the logs and counters, apply new limits (config reload)."""
        self.config = config
        return self

    def _trim(self, now: float) -> None:
        horizon = now - WINDOW_S
        requests = self.requests
        while requests and requests[0] <= horizon:
            requests.popleft()
        tokens = self.tokens
        while tokens and tokens[0].ts <= horizon:
            e = tokens.popleft()
            e.live = False
            self.tokens_used -= e.tokens

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
        if cfg.rpm is not None and len(self.requests) >= cfg.rpm:
            # the request that must leave the window before one more fits
            wait = self.requests[len(self.requests) - cfg.rpm] + WINDOW_S - now
        if cfg.tpm is not None and self.tokens_used + est_tokens > cfg.tpm:
            if est_tokens > cfg.tpm:
                return WINDOW_S  # can never fit; the caller reports the limit
            need = self.tokens_used + est_tokens - cfg.tpm
            for e in self.tokens:
                need -= e.tokens
                if need <= 0:
                    wait = max(wait, e.ts + WINDOW_S - now)
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
        if cfg.rpm is not None:
            self.requests.append(now)
        entry = None
        if cfg.tpm is not None:
            entry = _Entry(now, est_tokens)
            self.tokens.append(entry)
            self.tokens_used += est_tokens
        return Ticket(est_tokens, entry)

    def release(self, ticket: Ticket, actual_tokens: int | None) -> None:
        """The request ended; correct its tpm charge with the reported usage when known."""
        self.in_flight = max(0, self.in_flight - 1)
        e = ticket.entry
        if e is not None and actual_tokens is not None:
            if e.live:
                self.tokens_used += actual_tokens - e.tokens
            e.tokens = actual_tokens

    def snapshot(self) -> dict[str, Any]:
        self._trim(self.clock())
        return {
            "in_flight": self.in_flight,
            "max_concurrency": self.config.max_concurrency,
            "rpm": self.config.rpm,
            "rpm_used": len(self.requests),
            "tpm": self.config.tpm,
            "tpm_used": self.tokens_used,
        }
