"""The semantic tier's rules and lookup logic with a deterministic fake embedder (the vector index is
the real usearch; skipped when the semantic extra is not installed, unless CI=true)."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest

from architect.cache.semantic import SemanticCache, SemanticConfig, last_user_text, semantic_allowed
from architect.cache.tiers import Entry, L1Cache, Tiers
from architect.gateway.call import Call
from architect.principal import Principal

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("usearch", reason="the semantic extra (usearch) is not installed")
np = pytest.importorskip("numpy")


class FakeEmbedder:
    """Maps known texts to fixed unit vectors: similarity is whatever the test says it is."""

    name = "fake"
    dim = 4

    def __init__(self) -> None:
        self.vectors: dict[str, list[float]] = {}
        self.calls = 0

    def embed(self, texts: list[str]) -> Any:
        self.calls += 1
        out = np.array([self.vectors.get(t, [0, 0, 0, 1]) for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _call(text: str, key: str = "k1", **body: Any) -> Call:
    b = {"model": "m", "messages": [{"role": "user", "content": text}], "temperature": 0, **body}
    c = Call("chat", b, b"{}", Principal(kind="key", key_id=key), {})
    c.group = SimpleNamespace(name="m")
    return c


def _entry(key: str, now: float = 1000.0, ttl: float = 60) -> Entry:
    return Entry(key, None, "k:k1", "m", b'{"a": 1}', 1, 1, 0.5, 10.0, now, now + ttl)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _cache(verifier: Any = None, **cfg: Any) -> tuple[SemanticCache, FakeEmbedder, Tiers, Clock]:
    emb = FakeEmbedder()
    emb.vectors = {
        "How do I learn Python?": [1, 0, 0, 0],
        "What's the best way to learn Python?": [0.98, 0.2, 0, 0],
        "How do I learn Rust?": [0.6, 0.8, 0, 0],
    }
    clock = Clock()
    sem = SemanticCache(SemanticConfig(enabled=True, threshold=0.95, **cfg), emb, verifier, clock)
    await sem.start()
    tiers = Tiers(L1Cache(1 << 20, clock), None)
    sem.tiers = tiers
    return sem, emb, tiers, clock


async def _store(sem: SemanticCache, tiers: Tiers, text: str, key: str, ns: str = "k:k1") -> None:
    c = _call(text)
    assert await sem.lookup(c, ns) is None
    e = _entry(key)
    e.namespace = ns
    tiers.l1.put(e)
    sem.add(c, ns, e)


async def test_neighbour_above_threshold_is_served_below_is_not() -> None:
    sem, _emb, tiers, _ = await _cache()
    await _store(sem, tiers, "How do I learn Python?", "py")
    hit = await sem.lookup(_call("What's the best way to learn Python?"), "k:k1")
    assert hit is not None and hit.key == "py"
    assert await sem.lookup(_call("How do I learn Rust?"), "k:k1") is None  # cosine 0.6
    assert sem.stats()["hits"] == 1 and sem.stats()["entries"] == 1
    await sem.aclose()


async def test_partitions_never_cross_namespaces_or_settings() -> None:
    sem, _, tiers, _ = await _cache()
    await _store(sem, tiers, "How do I learn Python?", "py")
    assert await sem.lookup(_call("What's the best way to learn Python?"), "k:other") is None
    assert await sem.lookup(_call("What's the best way to learn Python?", max_tokens=9), "k:k1") is None
    sys_call = _call("x")
    sys_call.body["messages"] = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "What's the best way to learn Python?"},
    ]
    assert await sem.lookup(sys_call, "k:k1") is None
    await sem.aclose()


async def test_expired_or_evicted_entries_are_not_served() -> None:
    sem, _, tiers, clock = await _cache()
    await _store(sem, tiers, "How do I learn Python?", "py")
    clock.now += 61
    assert await sem.lookup(_call("What's the best way to learn Python?"), "k:k1") is None
    assert sem.stats()["entries"] == 0
    await sem.aclose()


async def test_verifier_decides() -> None:
    answers: list[bool] = [False, True]
    seen: list[tuple[str, str]] = []

    class V:
        async def verify(self, query: str, cached: str, call: Call) -> bool:
            seen.append((query, cached))
            return answers.pop(0)

    sem, _, tiers, _ = await _cache(verifier=V())
    await _store(sem, tiers, "How do I learn Python?", "py")
    q = "What's the best way to learn Python?"
    assert await sem.lookup(_call(q), "k:k1") is None
    assert (await sem.lookup(_call(q), "k:k1")) is not None
    assert seen == [(q, "How do I learn Python?")] * 2
    assert sem.stats()["rejected"] == 1 and sem.stats()["verified"] == 1
    await sem.aclose()


def test_rules_for_tools_schemas_multi_turn_and_images() -> None:
    cfg = SemanticConfig(enabled=True)
    base = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}
    assert semantic_allowed(base, cfg)
    assert not semantic_allowed({**base, "tools": [{"type": "function"}]}, cfg)
    assert semantic_allowed({**base, "tools": [{"type": "function"}]}, SemanticConfig(allow_tools=True))
    schema = {"type": "json_schema", "json_schema": {"name": "x"}}
    assert not semantic_allowed({**base, "response_format": schema}, cfg)
    assert semantic_allowed({**base, "response_format": schema}, SemanticConfig(allow_json_schema=True))
    multi = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ]
    }
    assert not semantic_allowed(multi, cfg)
    assert semantic_allowed(multi, SemanticConfig(allow_multi_turn=True))
    assert last_user_text(multi) == "c"
    img = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is it"},
                    {"type": "image_url", "image_url": {"url": "u"}},
                ],
            }
        ]
    }
    assert last_user_text(img) is None
