"""The semantic tier in the real gateway with a real offline model (the static one: no torch) on a
small sample of ../shared/data/cache/, and the built-in verifier asking a stub model through the
gateway. Skipped with a message when the data folder or the semantic extra is absent (unless CI=true
for the extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "cache" / "paraphrase_smoke.json"

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip(
        "usearch", reason="the semantic extra is not installed (pip install 'architect-llm[semantic]')"
    )
    pytest.importorskip(
        "static_model", reason="the semantic extra (tokenlearn-static-model) is not installed"
    )


@pytest.fixture(scope="module")
def close_pairs() -> list[tuple[str, str]]:
    """Paraphrase pairs the static model puts at cosine >= 0.9 (so the test exercises the tier, not the
    model's quality, which the eval measures)."""
    if not DATA.exists():
        pytest.skip(f"evaluation data not found at {DATA}")
    from architect.cache.embedders import load_embedder

    rows = orjson.loads(DATA.read_bytes())[:200]
    emb = load_embedder("static")
    a = emb.embed([r["origin"] for r in rows])
    b = emb.embed([r["similar"] for r in rows])
    sims = (a * b).sum(axis=1)
    out = [(r["origin"], r["similar"]) for r, s in zip(rows, sims, strict=True) if 0.9 <= s < 0.999]
    assert len(out) >= 4, "expected a few close paraphrases in the sample"
    return out


def _cfg(stub: StubServer, **semantic: Any) -> Any:
    return make_config(
        {
            **stub_config(stub.url),
            "cache": {"semantic": {"enabled": True, "model": "static", "threshold": 0.9, **semantic}},
        }
    )


def _ask(c: httpx.Client, text: str, **body: Any) -> httpx.Response:
    r = c.post(
        "/v1/chat/completions",
        json={"model": "m", "temperature": 0, "messages": [{"role": "user", "content": text}], **body},
    )
    assert r.status_code == 200, r.text
    return r


def test_semantic_hits_for_paraphrases_only_where_allowed(
    stub: StubServer, close_pairs: list[tuple[str, str]]
) -> None:
    (a1, b1), (a2, b2) = close_pairs[0], close_pairs[1]
    with LiveServer(_cfg(stub)) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert _ask(c, a1).headers["x-architect-cache"] == "miss"
        hit = _ask(c, b1)
        assert hit.headers["x-architect-cache"] == "hit-semantic"
        assert (
            _ask(c, "Completely unrelated: what is the boiling point of water at sea level?").headers[
                "x-architect-cache"
            ]
            == "miss"
        )
        # tools: never a semantic hit by default
        tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        assert _ask(c, a2, tools=tools).headers["x-architect-cache"] == "miss"
        assert _ask(c, b2, tools=tools).headers["x-architect-cache"] == "miss"
        st = c.get("/api/v1/cache/stats").json()
        assert (
            st["by_tier"]["hit-semantic"] == 1 and st["semantic"]["entries"] == 2
        )  # tool calls: not indexed
        rows = srv.calls()
    sem = [r for r in rows if r["cache"] == "hit-semantic"]
    assert sem and all(r["cost_usd"] == 0 and r["saved_cost_usd"] > 0 for r in sem)


def test_semantic_hits_do_not_cross_keys_namespaces(
    stub: StubServer, close_pairs: list[tuple[str, str]]
) -> None:
    a, b = close_pairs[2]
    cfg = make_config(
        {
            **stub_config(stub.url),
            "cache": {
                "namespace": "project",
                "semantic": {"enabled": True, "model": "static", "threshold": 0.9},
            },
        }
    )
    with LiveServer(cfg) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert _ask(c, a, metadata={"project": "alpha"}).headers["x-architect-cache"] == "miss"
        assert _ask(c, b, metadata={"project": "beta"}).headers["x-architect-cache"] == "miss"
        assert _ask(c, b, metadata={"project": "alpha"}).headers["x-architect-cache"] in ("hit-semantic",)


def test_gateway_verifier_confirms_or_rejects(stub: StubServer, close_pairs: list[tuple[str, str]]) -> None:
    (a1, b1), (a2, b2) = close_pairs[2], close_pairs[3]
    with LiveServer(_cfg(stub, verifier="gateway:m")) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        stub.content = "NO"
        _ask(c, a1)
        n = stub.counts["/v1/chat/completions"]
        assert _ask(c, b1).headers["x-architect-cache"] == "miss"  # the verifier said no
        assert stub.counts["/v1/chat/completions"] == n + 2  # the verifier's call, then the real one
        stub.content = "YES"
        _ask(c, a2)
        assert _ask(c, b2).headers["x-architect-cache"] == "hit-semantic"
        rows = srv.calls()
    overhead = [r for r in rows if r["tags"] and "semantic-verifier" in r["tags"]]
    assert len(overhead) == 2 and all(r["cost_usd"] > 0 for r in overhead)
    asked = [r["body"] for r in stub.requests if r["body"]["messages"][0]["role"] == "system"]
    assert asked and asked[0]["temperature"] == 0 and a1 in asked[0]["messages"][1]["content"]
