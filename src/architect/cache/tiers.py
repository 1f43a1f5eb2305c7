"""Cache tiers: L1 in process (bounded by bytes, LRU + TTL) and L2 in the store or in Redis.

`Tiers.get` looks in L1, then L2; a hit at L2 fills L1. Expiry is decided by an injected clock
(`clock()` → UNIX seconds) at every tier, so tests can move time; Redis also expires keys itself.
L2 failures are converted to `StoreError` here; the cache service treats them as misses.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from architect.errors import StoreError
from architect.store.cache import CacheRepo

__all__ = ["Clock", "Entry", "L1Cache", "L2Tier", "RedisL2", "StoreL2", "Tiers"]

log = logging.getLogger("architect.cache")

Clock = Callable[[], float]
_L1_OVERHEAD = 256  # bytes accounted per L1 slot on top of the body (object headers, key)


@dataclass(slots=True)
class Entry:
    """One cached answer and what it cost to produce."""

    key: str
    norm_key: str | None
    namespace: str
    model: str
    body: bytes
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    created_at: float
    expires_at: float

    @property
    def size(self) -> int:
        return len(self.body)

    def row(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "norm_key": self.norm_key,
            "namespace": self.namespace,
            "model": self.model,
            "body": self.body,
            "size": self.size,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Entry:
        return cls(
            key=r["key"],
            norm_key=r.get("norm_key"),
            namespace=r["namespace"],
            model=r["model"],
            body=bytes(r["body"]),
            prompt_tokens=int(r.get("prompt_tokens") or 0),
            completion_tokens=int(r.get("completion_tokens") or 0),
            cost_usd=float(r.get("cost_usd") or 0.0),
            latency_ms=float(r.get("latency_ms") or 0.0),
            created_at=float(r["created_at"]),
            expires_at=float(r["expires_at"]),
        )


class L1Cache:
    """In-process LRU bounded by bytes, with per-entry expiry. An entry is reachable by its exact key
    and by its normalised key (both slots are accounted)."""

    def __init__(self, max_bytes: int, clock: Clock) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[str, Entry] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    def _get(self, slot: str, now: float) -> Entry | None:
        e = self._items.get(slot)
        if e is None:
            return None
        if e.expires_at <= now:
            self._drop(slot)
            return None
        self._items.move_to_end(slot)
        return e

    def get(self, key: str, norm_key: str | None) -> tuple[Entry, str] | None:
        now = self._clock()
        e = self._get(key, now)
        if e is not None:
            return e, "exact"
        if norm_key is not None:
            e = self._get("n:" + norm_key, now)
            if e is not None:
                return e, "normalised"
        return None

    def put(self, entry: Entry) -> None:
        cost = entry.size + _L1_OVERHEAD
        if cost > self.max_bytes:
            return
        slots = [entry.key] + (["n:" + entry.norm_key] if entry.norm_key else [])
        for slot in slots:
            self._drop(slot)
            self._items[slot] = entry
            self.bytes += cost
        while self.bytes > self.max_bytes and self._items:
            old, _ = next(iter(self._items.items()))
            self._drop(old)
            self.evictions += 1

    def _drop(self, slot: str) -> None:
        e = self._items.pop(slot, None)
        if e is not None:
            self.bytes -= e.size + _L1_OVERHEAD

    def purge(
        self,
        namespace: str | None = None,
        model: str | None = None,
        created_before: float | None = None,
    ) -> int:
        doomed = [
            (k, e)
            for k, e in self._items.items()
            if (namespace is None or e.namespace == namespace)
            and (model is None or e.model == model)
            and (created_before is None or e.created_at < created_before)
        ]
        for k, _ in doomed:
            self._drop(k)
        return len({e.key for _, e in doomed})

    def stats(self) -> dict[str, Any]:
        return {
            "entries": len({e.key for e in self._items.values()}),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "evictions": self.evictions,
        }


class L2Tier(Protocol):
    name: str

    async def get(self, key: str, norm_key: str | None) -> tuple[Entry, str] | None: ...

    async def put(self, entry: Entry) -> None: ...

    async def purge(
        self, namespace: str | None = None, model: str | None = None, created_before: float | None = None
    ) -> int: ...

    async def stats(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class StoreL2:
    """L2 in the store (SQLite/PostgreSQL, or the memory double); blocking calls run in a thread."""

    name = "store"

    def __init__(self, repo: CacheRepo, clock: Clock) -> None:
        self.repo = repo
        self._clock = clock
        self._inline = bool(getattr(repo, "in_memory", False))

    async def _run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        if self._inline:
            return fn(*args, **kw)
        return await asyncio.to_thread(fn, *args, **kw)

    async def get(self, key: str, norm_key: str | None) -> tuple[Entry, str] | None:
        row = await self._run(self.repo.get, key, norm_key, self._clock())
        if row is None:
            return None
        return Entry.from_row(row), row["match"]

    async def put(self, entry: Entry) -> None:
        await self._run(self.repo.put, entry.row())

    async def purge(
        self, namespace: str | None = None, model: str | None = None, created_before: float | None = None
    ) -> int:
        n: int = await self._run(
            self.repo.purge, namespace=namespace, model=model, created_before=created_before
        )
        await self._run(self.repo.purge, expired_before=self._clock())
        return n

    async def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._run(self.repo.stats, self._clock())
        return {"backend": "store", **out}

    async def aclose(self) -> None:
        return None


class RedisL2:
    """L2 in Redis: `{prefix}cache:e:{key}` holds a JSON header line and the body,
    `{prefix}cache:n:{norm_key}` points at the exact key; both expire with the entry."""

    name = "redis"

    def __init__(self, url: str, prefix: str, clock: Clock) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url)
        self._p = prefix + "cache:"
        self._clock = clock

    def _decode(self, raw: Any) -> Entry | None:
        if not isinstance(raw, bytes):
            return None
        head, _, body = raw.partition(b"\n")
        h = orjson.loads(head)
        h["body"] = body
        e = Entry.from_row(h)
        return e if e.expires_at > self._clock() else None

    async def get(self, key: str, norm_key: str | None) -> tuple[Entry, str] | None:
        from redis.exceptions import RedisError

        try:
            if norm_key is None:
                e = self._decode(await self._redis.get(self._p + "e:" + key))
                return (e, "exact") if e else None
            raw, ptr = await self._redis.mget(self._p + "e:" + key, self._p + "n:" + norm_key)
            e = self._decode(raw)
            if e is not None:
                return e, "exact"
            if ptr is None:
                return None
            ptr_s = ptr.decode() if isinstance(ptr, bytes) else str(ptr)
            e = self._decode(await self._redis.get(self._p + "e:" + ptr_s))
            return (e, "normalised") if e else None
        except (RedisError, OSError, ValueError) as exc:
            raise StoreError(f"redis cache read failed: {exc.__class__.__name__}: {exc}") from exc

    async def put(self, entry: Entry) -> None:
        from redis.exceptions import RedisError

        ttl_ms = max(1, int((entry.expires_at - self._clock()) * 1000))
        row = entry.row()
        del row["body"]
        blob = orjson.dumps(row) + b"\n" + entry.body
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._p + "e:" + entry.key, blob, px=ttl_ms)
                if entry.norm_key:
                    pipe.set(self._p + "n:" + entry.norm_key, entry.key, px=ttl_ms)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis cache write failed: {exc.__class__.__name__}: {exc}") from exc

    async def _scan_entries(self) -> list[bytes]:
        return [k async for k in self._redis.scan_iter(match=self._p + "e:*", count=1000)]

    async def purge(
        self, namespace: str | None = None, model: str | None = None, created_before: float | None = None
    ) -> int:
        from redis.exceptions import RedisError

        try:
            n = 0
            for k in await self._scan_entries():
                raw = await self._redis.get(k)
                if not isinstance(raw, bytes):
                    continue
                h = orjson.loads(raw.partition(b"\n")[0])
                if (
                    (namespace is None or h["namespace"] == namespace)
                    and (model is None or h["model"] == model)
                    and (created_before is None or h["created_at"] < created_before)
                ):
                    doomed = [k] + ([self._p + "n:" + h["norm_key"]] if h.get("norm_key") else [])
                    await self._redis.delete(*doomed)
                    n += 1
            return n
        except (RedisError, OSError, ValueError) as exc:
            raise StoreError(f"redis cache purge failed: {exc.__class__.__name__}: {exc}") from exc

    async def stats(self) -> dict[str, Any]:
        from redis.exceptions import RedisError

        try:
            keys = await self._scan_entries()
            size = 0
            if keys:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for k in keys:
                        pipe.strlen(k)
                    size = sum(int(x) for x in await pipe.execute())
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis cache stats failed: {exc.__class__.__name__}: {exc}") from exc
        return {"backend": "redis", "entries": len(keys), "bytes": size, "expired": 0}

    async def aclose(self) -> None:
        await self._redis.aclose()


class Tiers:
    """L1 then L2; an L2 hit fills L1. Returns (entry, tier) with tier "l1" | "l2" and the match."""

    def __init__(self, l1: L1Cache, l2: L2Tier | None) -> None:
        self.l1 = l1
        self.l2 = l2
        self.l2_errors = 0

    async def get(self, key: str, norm_key: str | None) -> tuple[Entry, str, str] | None:
        hit = self.l1.get(key, norm_key)
        if hit is not None:
            return hit[0], "l1", hit[1]
        if self.l2 is None:
            return None
        try:
            hit2 = await self.l2.get(key, norm_key)
        except StoreError:
            self.l2_errors += 1
            log.warning("cache L2 (%s) read failed; treating as a miss", self.l2.name, exc_info=True)
            return None
        if hit2 is None:
            return None
        self.l1.put(hit2[0])
        return hit2[0], "l2", hit2[1]

    async def put(self, entry: Entry) -> None:
        self.l1.put(entry)
        if self.l2 is not None:
            try:
                await self.l2.put(entry)
            except StoreError:
                self.l2_errors += 1
                log.warning("cache L2 (%s) write failed", self.l2.name, exc_info=True)
