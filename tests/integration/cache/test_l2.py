"""L2 tiers against the real backends: SQLite and PostgreSQL (`db_url`) and the local Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from architect.cache.keys import request_keys
from architect.cache.tiers import Entry, L1Cache, L2Tier, RedisL2, StoreL2, Tiers
from architect.store import open_store
from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer

BODY = {"model": "m", "messages": [{"role": "user", "content": "Name three primes."}], "temperature": 0}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _entry(ns: str, clock: Clock, ttl: float = 60, body: dict[str, Any] | None = None) -> Entry:
    key, norm = request_keys(body or BODY, "m", ns, normalised=True, casefold=False)
    return Entry(key, norm, ns, "m", b'{"answer": "2, 3, 5"}', 5, 6, 0.002, 120.0, clock(), clock() + ttl)


async def _exercise(l2: L2Tier, clock: Clock) -> None:
    a = _entry("k:a", clock)
    await l2.put(a)
    hit = await l2.get(a.key, a.norm_key)
    assert hit is not None and hit[1] == "exact" and hit[0].body == a.body and hit[0].cost_usd == 0.002
    # normalised: a request differing only in spacing finds it through its normalised key
    spaced = {**BODY, "messages": [{"role": "user", "content": "  Name three  primes. "}]}
    k2, n2 = request_keys(spaced, "m", "k:a", normalised=True, casefold=False)
    hit = await l2.get(k2, n2)
    assert hit is not None and hit[1] == "normalised" and hit[0].key == a.key
    # tenant isolation: the same request in another namespace has other keys and finds nothing
    kb, nb = request_keys(BODY, "m", "k:b", normalised=True, casefold=False)
    assert await l2.get(kb, nb) is None
    # expiry by the injected clock
    clock.now += 61
    assert await l2.get(a.key, a.norm_key) is None
    clock.now -= 61
    # purge by namespace / model / age
    await l2.put(_entry("k:b", clock))
    other = _entry("k:a", clock, body={**BODY, "seed": 7})
    other.model = "m2"
    await l2.put(other)
    stats = await l2.stats()
    assert stats["entries"] == 3 and stats["bytes"] > 0
    assert await l2.purge(namespace="k:b") == 1
    assert await l2.purge(model="m2") == 1
    assert await l2.purge(created_before=clock() + 1) == 1
    assert (await l2.stats())["entries"] == 0


async def test_store_l2_on_sqlite_and_postgresql(db_url: str) -> None:
    store = open_store(db_url, migrate="upgrade")
    try:
        clock = Clock()
        await _exercise(StoreL2(store.cache, clock), clock)
    finally:
        store.close()


@pytest.mark.redis
async def test_redis_l2(redis_prefix: str, redis_url: str) -> None:
    clock = Clock()
    l2 = RedisL2(redis_url, redis_prefix, clock)
    try:
        await _exercise(l2, clock)
        # Redis expires the keys itself as well
        e = _entry("k:t", clock, ttl=0.05)
        await l2.put(e)
        import asyncio

        await asyncio.sleep(0.2)
        clock.now -= 1000  # even with a clock in the past the key is gone
        assert await l2.get(e.key, None) is None
    finally:
        await l2.aclose()


async def test_l2_hit_fills_l1(db_url: str) -> None:
    store = open_store(db_url, migrate="upgrade")
    try:
        clock = Clock()
        l2 = StoreL2(store.cache, clock)
        tiers = Tiers(L1Cache(1 << 20, clock), l2)
        e = _entry("k:a", clock)
        await l2.put(e)
        assert (await tiers.get(e.key, e.norm_key))[1] == "l2"  # type: ignore[index]
        store.cache.purge()
        assert (await tiers.get(e.key, e.norm_key))[1] == "l1"  # type: ignore[index]
    finally:
        store.close()


def _hit_across_restart(cfg: Any, **server: Any) -> list[str]:
    out = []
    for _ in range(2):  # two gateway processes' worth of L1: the second sees only the L2
        with LiveServer(cfg, **server) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
            out.append(c.post("/v1/chat/completions", json=BODY).headers["x-architect-cache"])
            srv.runtime.ledger.flush()
    return out


@pytest.mark.redis
def test_gateway_with_redis_l2(stub: StubServer, redis_prefix: str, redis_url: str) -> None:
    cfg = make_config(
        {
            **stub_config(stub.url),
            "cache": {"l2": "redis", "redis_url": redis_url, "redis_prefix": redis_prefix},
        }
    )
    assert _hit_across_restart(cfg) == ["miss", "hit-l2"]
    assert stub.counts["/v1/chat/completions"] == 1


def test_gateway_with_store_l2(stub: StubServer, sqlite_url: str) -> None:
    cfg = make_config(stub_config(stub.url))
    assert _hit_across_restart(cfg, database_url=sqlite_url) == ["miss", "hit-l2"]
    assert stub.counts["/v1/chat/completions"] == 1
