"""Per-key requests-per-minute and tokens-per-minute limits (in process, 60 s windows in 1 s buckets,
reusing the gateway's limiter). Over the limit: `RateLimited` (429) with Retry-After. tpm is charged with the
estimate (prompt + max_tokens) and corrected with the reported usage when the call ends."""

from __future__ import annotations

from architect.config import LimitsConfig
from architect.errors import RateLimited
from architect.gateway.call import Call
from architect.gateway.limits import DeploymentLimiter

__all__ = ["KeyLimiter"]


class KeyLimiter:
    """`KeyLimits` hook: one limiter per key id, configured from the principal's rpm/tpm."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._limiters: dict[str, DeploymentLimiter] = {}
        self._max = max_keys

    def _limiter(self, key_id: str, rpm: int | None, tpm: int | None) -> DeploymentLimiter:
        lim = self._limiters.get(key_id)
        cfg = LimitsConfig(rpm=rpm, tpm=tpm)
        if lim is None:
            if len(self._limiters) >= self._max:
                self._limiters.pop(next(iter(self._limiters)))
            lim = self._limiters[key_id] = DeploymentLimiter(cfg)
        elif lim.config != cfg:
            lim.reconfigured(cfg)
        return lim

    async def admit(self, call: Call) -> None:
        p = call.principal
        rpm, tpm = p.extra.get("rpm"), p.extra.get("tpm")
        if p.key_id is None or (rpm is None and tpm is None):
            return
        est = (call.est_prompt_tokens or max(1, len(call.raw_body) // 4)) + (call.max_tokens or 0)
        lim = self._limiter(p.key_id, rpm, tpm)
        wait = lim.check(est)
        if wait > 0:
            what = f"{rpm} requests" if rpm is not None else ""
            if tpm is not None:
                what += (" / " if what else "") + f"{tpm} tokens"
            raise RateLimited(
                f"this key is over its limit of {what} per minute; retry in {wait:.1f}s",
                retry_after=wait,
                code="key_rate_limited",
            )
        call.key_ticket = lim.acquire(est)

    def release(self, call: Call, actual_tokens: int | None) -> None:
        ticket, call.key_ticket = call.key_ticket, None
        if ticket is None or call.principal.key_id is None:
            return
        lim = self._limiters.get(call.principal.key_id)
        if lim is not None:
            lim.release(ticket, actual_tokens)
