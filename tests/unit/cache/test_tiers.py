"""L1 (bytes-bounded LRU + TTL), L2 in the memory store double, and L2 → L1 fill."""

from __future__ import annotations

from architect.cache.tiers import Entry, L1Cache, StoreL2, Tiers
from architect.store.cache import MemoryCacheRepo


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entry(
    key: str,
    *,
    ns: str = "k:a",
    body: bytes = b"x" * 100,
    ttl: float = 60.0,
    now: float = 1000.0,
    norm: str | None = None,
    model: str = "m",
) -> Entry:
    return Entry(key, norm, ns, model, body, 3, 4, 0.01, 50.0, now, now + ttl)


def test_l1_ttl_expiry_with_injected_clock() -> None:
    clock = Clock()
    l1 = L1Cache(10_000, clock)
    l1.put(entry("a", ttl=10))
    assert l1.get("a", None) is not None
    clock.now += 9.9
    assert l1.get("a", None) is not None
    clock.now += 0.2
    assert l1.get("a", None) is None
    assert len(l1) == 0 and l1.bytes == 0


def test_l1_is_bounded_by_bytes_and_evicts_lru() -> None:
    clock = Clock()
    l1 = L1Cache(3 * (1000 + 256), clock)
    for k in "abc":
        l1.put(entry(k, body=b"y" * 1000))
    assert l1.get("a", None) is not None  # a is now most recently used
    l1.put(entry("d", body=b"y" * 1000))
    assert l1.get("b", None) is None
    assert all(l1.get(k, None) is not None for k in "acd")
    assert l1.bytes <= l1.max_bytes
    l1.put(entry("huge", body=b"z" * 10_000))  # larger than the whole cache: not stored
    assert l1.get("huge", None) is None and l1.get("d", None) is not None


def test_l1_normalised_slot() -> None:
    l1 = L1Cache(100_000, Clock())
    l1.put(entry("exact", norm="norm"))
    assert l1.get("other", "norm") is not None
    assert l1.get("other", "norm")[1] == "normalised"  # type: ignore[index]
    assert l1.get("exact", "norm")[1] == "exact"  # type: ignore[index]
    assert l1.purge(namespace="k:a") == 1 and len(l1) == 0 and l1.bytes == 0


async def test_l2_hit_fills_l1_and_expires() -> None:
    clock = Clock()
    repo = MemoryCacheRepo()
    tiers = Tiers(L1Cache(100_000, clock), StoreL2(repo, clock))
    e = entry("k", norm="n", ttl=30)
    assert tiers.l2 is not None
    await tiers.l2.put(e)
    hit = await tiers.get("k", "n")
    assert hit is not None and hit[1] == "l2" and hit[2] == "exact"
    hit = await tiers.get("k", "n")
    assert hit is not None and hit[1] == "l1"
    tiers.l1.purge()
    hit = await tiers.get("zz", "n")
    assert hit is not None and hit[1] == "l2" and hit[2] == "normalised" and hit[0].body == e.body
    clock.now += 31
    tiers.l1.purge()
    assert await tiers.get("k", "n") is None


async def test_memory_repo_purge_filters() -> None:
    repo = MemoryCacheRepo()
    repo.put(entry("a", ns="k:1", model="m1").row())
    repo.put(entry("b", ns="k:2", model="m1", now=2000).row())
    repo.put(entry("c", ns="k:2", model="m2").row())
    assert repo.stats(1000)["entries"] == 3
    assert repo.purge(namespace="k:2", model="m1") == 1
    assert repo.purge(created_before=1500) == 2
    assert repo.stats(1000)["entries"] == 0
