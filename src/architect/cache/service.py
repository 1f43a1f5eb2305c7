"""The response cache behind the pipeline's `ResponseCache` hook: policy (what may be cached, per
request control), keys and namespaces, tiers, coalescing, the semantic tier, and statistics.

Per request control (headers win over `metadata` fields, which the call keeps apart from its tags):

    Cache-Control: no-cache            skip the lookup, still store the fresh answer
    Cache-Control: no-store            neither look up nor store
    x-architect-cache: force           cache even a non-deterministic request (also `metadata.cache`)
    x-architect-cache-ttl: SECONDS     lifetime of the stored answer (also `metadata.cache_ttl`)

`metadata.cache` also accepts "no-cache" and "no-store".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from architect.cache.coalesce import Coalescer, Flight
from architect.cache.keys import is_deterministic, namespace_of, request_keys
from architect.cache.tiers import Clock, Entry, Tiers
from architect.config import CacheConfig
from architect.errors import InvalidRequest, StoreError
from architect.gateway.call import Call
from architect.gateway.costs import cost_usd
from architect.gateway.hooks import CachedAnswer
from architect.gateway.providers.base import Usage

if TYPE_CHECKING:
    from architect.cache.semantic import SemanticCache

__all__ = ["CacheService", "Controls", "request_controls"]

log = logging.getLogger("architect.cache")

_MAX_TTL_S = 365 * 86400.0
_MODES = {"force", "on", "no-cache", "no-store", "off", "bypass"}
TIERS = ("hit-l1", "hit-l2", "hit-normalised", "hit-semantic")


@dataclass(slots=True)
class Controls:
    mode: str = "default"  # default | force | no-cache | no-store
    ttl_s: float | None = None


def _ttl(value: str, param: str) -> float:
    try:
        ttl = float(value)
    except ValueError:
        ttl = -1.0
    if not 0 < ttl <= _MAX_TTL_S:
        raise InvalidRequest(
            f"'{param}' must be a number of seconds between 1 and {_MAX_TTL_S:.0f}", param=param
        )
    return ttl


_CONTROL_HEADERS = ("cache-control", "x-architect-cache", "x-architect-cache-ttl")


def request_controls(headers: dict[str, str], controls: dict[str, str]) -> Controls:
    """The cache controls of a request's headers and its `metadata` fields (`Call.controls`)."""
    c = Controls()
    if not controls and not any(h in headers for h in _CONTROL_HEADERS):
        return c  # the common case: the client says nothing about caching
    tag_mode = (controls.get("cache") or "").strip().lower()
    if tag_mode:
        if tag_mode not in _MODES:
            raise InvalidRequest(
                "'metadata.cache' must be one of: force, no-cache, no-store", param="metadata.cache"
            )
        c.mode = tag_mode
    hdr = (headers.get("x-architect-cache") or "").strip().lower()
    if hdr:
        if hdr not in _MODES:
            raise InvalidRequest(
                "'x-architect-cache' must be one of: force, no-cache, no-store", param="x-architect-cache"
            )
        c.mode = hdr
    directives = {d.strip().split("=", 1)[0] for d in (headers.get("cache-control") or "").lower().split(",")}
    if "no-store" in directives:
        c.mode = "no-store"
    elif "no-cache" in directives and c.mode != "no-store":
        c.mode = "no-cache"
    c.mode = {"on": "force", "off": "no-store", "bypass": "no-store"}.get(c.mode, c.mode)
    if controls.get("cache_ttl"):
        c.ttl_s = _ttl(controls["cache_ttl"], "metadata.cache_ttl")
    if headers.get("x-architect-cache-ttl"):
        c.ttl_s = _ttl(headers["x-architect-cache-ttl"], "x-architect-cache-ttl")
    return c


@dataclass(slots=True)
class _Plan:
    key: str
    norm_key: str | None
    namespace: str
    model: str
    ttl_s: float
    flight: Flight[Entry] | None = None


class CacheService:
    """Implements `architect.gateway.hooks.ResponseCache`."""

    def __init__(
        self,
        config: Callable[[], CacheConfig],
        tiers: Tiers,
        *,
        clock: Clock = time.time,
        semantic: SemanticCache | None = None,
    ) -> None:
        self._config = config
        self.tiers = tiers
        self.clock = clock
        self.semantic: SemanticCache | None = None
        if semantic is not None:
            self.attach_semantic(semantic)
        self.coalescer: Coalescer[Entry] = Coalescer()
        self.counts: dict[str, int] = {t: 0 for t in (*TIERS, "miss", "bypass", "stores", "coalesced")}
        self.saved_cost_usd = 0.0
        self.saved_ms = 0.0
        self._writes: set[asyncio.Task[None]] = set()

    def attach_semantic(self, semantic: SemanticCache) -> None:
        """Serve misses of the exact and normalised tiers from `semantic` too."""
        semantic.tiers = self.tiers  # candidates are fetched from the tiers by their exact key
        self.semantic = semantic

    # -- the hook ----------------------------------------------------------------------------------
    async def lookup(self, call: Call) -> CachedAnswer | None:
        cfg = self._config()
        if not cfg.enabled or not call.api.streams or call.group is None:  # embeddings are not cached
            return self._bypass(call)
        ctl = request_controls(call.headers, call.controls)
        if ctl.mode == "no-store":
            return self._bypass(call)
        if cfg.only_deterministic and ctl.mode != "force" and not is_deterministic(call.body):
            return self._bypass(call)
        ns = namespace_of(call.principal, call.tags, cfg.namespace)
        group = call.group.name
        key, norm = request_keys(
            call.body, group, ns, normalised=cfg.normalised, casefold=cfg.casefold, api=call.endpoint
        )
        plan = _Plan(key, norm, ns, group, ctl.ttl_s or cfg.ttl_s)
        call.cache_plan = plan
        call.cache_tier = "miss"
        if ctl.mode == "no-cache":
            self.counts["miss"] += 1
            return None
        found = await self.tiers.get(key, norm)
        if found is not None:
            entry, tier, match = found
            return self._hit("hit-normalised" if match == "normalised" else f"hit-{tier}", entry)
        if self.semantic is not None and call.endpoint == "chat":  # it embeds chat messages
            sem = await self.semantic.lookup(call, ns)
            if sem is not None:
                return self._hit("hit-semantic", sem)
        if cfg.coalesce:
            flight, entry2 = await self.coalescer.join(key, cfg.coalesce_wait_s)
            if entry2 is not None:
                self.counts["coalesced"] += 1
                return self._hit("hit-l1", entry2)
            if flight is not None:
                again = self.tiers.l1.get(key, None)  # stored while we were deciding?
                if again is not None:
                    self.coalescer.publish(flight, again[0])
                    return self._hit("hit-l1", again[0])
                plan.flight = flight
        self.counts["miss"] += 1
        return None

    async def store(self, call: Call, body: bytes) -> None:
        plan = call.cache_plan
        if not isinstance(plan, _Plan):
            return
        cfg = self._config()
        if len(body) > cfg.max_entry_bytes:
            self._end_flight(plan, None)
            return
        usage = call.usage or Usage()
        d = call.deployment
        price = d.price if d is not None else None  # an unknown price saves an unknown amount: 0
        now = self.clock()
        entry = Entry(
            key=plan.key,
            norm_key=plan.norm_key,
            namespace=plan.namespace,
            model=plan.model,
            body=body,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=cost_usd(price, usage) if price is not None and call.usage is not None else 0.0,
            latency_ms=call.elapsed_ms(),
            created_at=now,
            expires_at=now + plan.ttl_s,
        )
        self.tiers.l1.put(entry)
        if plan.flight is not None:
            self.coalescer.publish(plan.flight, entry)
            plan.flight = None
        self.counts["stores"] += 1
        if self.semantic is not None and call.endpoint == "chat":
            self.semantic.add(call, plan.namespace, entry)
        if self.tiers.l2 is not None:
            task = asyncio.get_running_loop().create_task(self._write_l2(entry))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    def abandon(self, call: Call, error: BaseException | None) -> None:
        plan = call.cache_plan
        if isinstance(plan, _Plan):
            self._end_flight(plan, error)

    # -- helpers -----------------------------------------------------------------------------------
    def _end_flight(self, plan: _Plan, error: BaseException | None) -> None:
        if plan.flight is not None:
            self.coalescer.fail(plan.flight, error)
            plan.flight = None

    def _bypass(self, call: Call) -> CachedAnswer | None:
        call.cache_tier = "bypass"
        self.counts["bypass"] += 1
        return None

    def _hit(self, tier: str, entry: Entry) -> CachedAnswer:
        self.counts[tier] += 1
        self.saved_cost_usd += entry.cost_usd
        self.saved_ms += entry.latency_ms
        return CachedAnswer(
            body=entry.body,
            tier=tier,
            cost_usd=entry.cost_usd,
            latency_ms=entry.latency_ms,
            usage=Usage(prompt_tokens=entry.prompt_tokens, completion_tokens=entry.completion_tokens),
        )

    async def _write_l2(self, entry: Entry) -> None:
        assert self.tiers.l2 is not None
        try:
            await self.tiers.l2.put(entry)
        except StoreError:
            self.tiers.l2_errors += 1
            log.warning("cache L2 (%s) write failed", self.tiers.l2.name, exc_info=True)

    async def drain(self) -> None:
        """Wait for pending L2 writes."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def purge(
        self, *, namespace: str | None = None, model: str | None = None, created_before: float | None = None
    ) -> dict[str, int]:
        await self.drain()
        out = {"l1": self.tiers.l1.purge(namespace, model, created_before)}
        if self.tiers.l2 is not None:
            out["l2"] = await self.tiers.l2.purge(namespace, model, created_before)
        if self.semantic is not None:
            out["semantic"] = self.semantic.purge(namespace, model)
        return out

    async def stats(self) -> dict[str, Any]:
        lookups = sum(self.counts[k] for k in (*TIERS, "miss"))
        hits = sum(self.counts[k] for k in TIERS)
        out: dict[str, Any] = {
            "lookups": lookups,
            "hits": hits,
            "hit_rate": hits / lookups if lookups else 0.0,
            "by_tier": {k: self.counts[k] for k in (*TIERS, "miss", "bypass")},
            "hit_rate_by_tier": {k: (self.counts[k] / lookups if lookups else 0.0) for k in TIERS},
            "coalesced": self.counts["coalesced"],
            "stores": self.counts["stores"],
            "in_flight": len(self.coalescer),
            "saved_cost_usd": self.saved_cost_usd,
            "saved_ms": self.saved_ms,
            "l1": self.tiers.l1.stats(),
            "l2_errors": self.tiers.l2_errors,
        }
        if self.tiers.l2 is not None:
            try:
                out["l2"] = await self.tiers.l2.stats()
            except StoreError as exc:
                out["l2"] = {"backend": self.tiers.l2.name, "error": str(exc)}
        if self.semantic is not None:
            out["semantic"] = self.semantic.stats()
        return out

    async def aclose(self) -> None:
        await self.drain()
        if self.tiers.l2 is not None:
            await self.tiers.l2.aclose()
