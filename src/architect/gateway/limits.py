"""Per-deployment limits: concurrency, requests per minute and tokens per minute.

rpm and tpm use a sliding log over the last 60 s, so no 60-second window ever holds more than the
limit (no burst at a window boundary). tpm is charged with the estimate (prompt + max_tokens) when a
request starts and corrected with the reported usage when it ends."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from architect.config import LimitsConfig

__all__ = ["DeploymentLimiter", "Ticket"]

WINDOW_S = 60.0


@dataclass(slots=True)
class Ticket:
    tokens: int
    entry: list[float] | None  # [ts, tokens] in the tpm log, mutable for correction


@dataclass(eq=False)
class DeploymentLimiter:
    config: LimitsConfig
    in_flight: int = 0
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[list[float]] = field(default_factory=deque)
    clock: Callable[[], float] = time.monotonic

    def reconfigured(self, config: LimitsConfig) -> DeploymentLimiter:
        self.config = config
        return self

    def _trim(self, now: float) -> None:
        horizon = now - WINDOW_S
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= horizon:
            self.tokens.popleft()

    def check(self, est_tokens: int) -> float:
        """0 if a request of `est_tokens` may start now, else seconds until it might."""
        cfg = self.config
        if cfg.max_concurrency is not None and self.in_flight >= cfg.max_concurrency:
            return 0.05
        if cfg.rpm is None and cfg.tpm is None:
            return 0.0
        now = self.clock()
        self._trim(now)
        wait = 0.0
        if cfg.rpm is not None and len(self.requests) >= cfg.rpm:
            wait = max(wait, self.requests[len(self.requests) - cfg.rpm] + WINDOW_S - now)
        if cfg.tpm is not None:
            used = sum(e[1] for e in self.tokens)
            if used + est_tokens > cfg.tpm:
                if est_tokens > cfg.tpm:
                    return WINDOW_S
                need = used + est_tokens - cfg.tpm
                for ts, n in self.tokens:
                    need -= n
                    if need <= 0:
                        wait = max(wait, ts + WINDOW_S - now)
                        break
        return max(wait, 0.0)

    def acquire(self, est_tokens: int) -> Ticket:
        """Take the slot (call after `check` returned 0)."""
        self.in_flight += 1
        now = self.clock()
        if self.config.rpm is not None:
            self.requests.append(now)
        entry = None
        if self.config.tpm is not None:
            entry = [now, float(est_tokens)]
            self.tokens.append(entry)
        return Ticket(est_tokens, entry)

    def release(self, ticket: Ticket, actual_tokens: int | None) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if ticket.entry is not None and actual_tokens is not None:
            ticket.entry[1] = float(actual_tokens)

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        self._trim(now)
        return {
            "in_flight": self.in_flight,
            "max_concurrency": self.config.max_concurrency,
            "rpm": self.config.rpm,
            "rpm_used": len(self.requests),
            "tpm": self.config.tpm,
            "tpm_used": int(sum(e[1] for e in self.tokens)),
        }
