"""The response cache through the real gateway (uvicorn) against the real stub upstream: hit/miss/
bypass rules, per-request control, normalised hits, stream <-> non-stream replay, tenant isolation,
ledger records."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from architect.store import Store
from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer


def _config(stub: StubServer, **cache: Any) -> Any:
    return make_config({**stub_config(stub.url), "cache": cache})


def _chat(
    c: httpx.Client, content: str = "What is 2+2?", headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    payload = {"model": "m", "messages": [{"role": "user", "content": content}], "temperature": 0, **body}
    return c.post("/v1/chat/completions", json=payload, headers=headers or {})


def _upstream(stub: StubServer) -> int:
    return stub.counts.get("/v1/chat/completions", 0)


def test_exact_hit_miss_and_bypass_rules(stub: StubServer) -> None:
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        first = _chat(c)
        assert first.status_code == 200 and first.headers["x-architect-cache"] == "miss"
        again = _chat(c)
        assert again.headers["x-architect-cache"] == "hit-l1"
        assert _upstream(stub) == 1
        hit, miss = again.json(), first.json()
        # the answer as it was given, under an id of its own (every completion's id is unique)
        assert {k: v for k, v in hit.items() if k not in ("id", "created")} == {
            k: v for k, v in miss.items() if k not in ("id", "created")
        }
        assert hit["id"].startswith("chatcmpl-") and hit["id"] != miss["id"]
        assert hit["created"] >= miss["created"]
        assert _chat(c).json()["id"] not in (hit["id"], miss["id"])
        # non-deterministic: not cached by default
        assert _chat(c, temperature=0.7).headers["x-architect-cache"] == "bypass"
        assert _chat(c, temperature=0.7).headers["x-architect-cache"] == "bypass"
        assert _upstream(stub) == 3
        # a seed makes it deterministic
        assert _chat(c, temperature=0.7, seed=1).headers["x-architect-cache"] == "miss"
        assert _chat(c, temperature=0.7, seed=1).headers["x-architect-cache"] == "hit-l1"
        # forced per request (header or metadata)
        assert (
            _chat(c, "f", temperature=1, headers={"x-architect-cache": "force"}).headers["x-architect-cache"]
            == "miss"
        )
        assert (
            _chat(c, "f", temperature=1, metadata={"cache": "force"}).headers["x-architect-cache"] == "hit-l1"
        )
        # no-store: neither lookup nor store
        assert _chat(c, headers={"cache-control": "no-store"}).headers["x-architect-cache"] == "bypass"
        assert (
            _chat(c, "fresh", headers={"cache-control": "no-store"}).headers["x-architect-cache"] == "bypass"
        )
        assert _chat(c, "fresh").headers["x-architect-cache"] == "miss"
        assert _chat(c, "x", metadata={"cache": "no-store"}).headers["x-architect-cache"] == "bypass"
        # no-cache: skip the lookup (goes upstream) but store the fresh answer
        n = _upstream(stub)
        assert _chat(c, headers={"cache-control": "no-cache"}).headers["x-architect-cache"] == "miss"
        assert _upstream(stub) == n + 1
        assert _chat(c, "nc", headers={"cache-control": "no-cache"}).headers["x-architect-cache"] == "miss"
        assert _chat(c, "nc").headers["x-architect-cache"] == "hit-l1"
        # a different parameter is a different answer
        assert _chat(c, max_tokens=5).headers["x-architect-cache"] == "miss"


def test_bad_cache_controls_are_400_naming_the_field(stub: StubServer) -> None:
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        r = _chat(c, headers={"x-architect-cache-ttl": "soon"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "x-architect-cache-ttl"
        r = _chat(c, metadata={"cache_ttl": "-3"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "metadata.cache_ttl"
        r = _chat(c, headers={"x-architect-cache": "maybe"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "x-architect-cache"
        assert _upstream(stub) == 0


def test_cache_controls_in_metadata_are_not_tags(stub: StubServer) -> None:
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        meta = {"cache": "force", "cache_ttl": "600", "project": "shop"}
        assert _chat(c, "t", temperature=1, metadata=meta).headers["x-architect-cache"] == "miss"
        assert _chat(c, "t", temperature=1, metadata=meta).headers["x-architect-cache"] == "hit-l1"
        assert _chat(c, "n", metadata={"cache": "no-store"}).headers["x-architect-cache"] == "bypass"
        tags = [orjson.loads(row["tags"]) if row["tags"] else {} for row in srv.calls()]
        assert tags == [{"project": "shop"}, {"project": "shop"}, {}]


def test_normalised_hit_and_disabled_cache(stub: StubServer) -> None:
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        assert _chat(c, "What  is the  capital of France?\n").headers["x-architect-cache"] == "miss"
        assert _chat(c, " What is the capital of France? ").headers["x-architect-cache"] == "hit-normalised"
        assert _chat(c, "what is the capital of france?").headers["x-architect-cache"] == "miss"  # case kept
    with LiveServer(_config(stub, enabled=False)) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        assert _chat(c).headers["x-architect-cache"] == "bypass"
        assert _chat(c).headers["x-architect-cache"] == "bypass"


def _sse_text(r: httpx.Response) -> tuple[str, list[dict[str, Any]]]:
    events = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    objs = [orjson.loads(e) for e in events[:-1]]
    return "".join((ch.get("delta") or {}).get("content") or "" for o in objs for ch in o["choices"]), objs


def test_stream_and_non_stream_serve_each_other(stub: StubServer) -> None:
    stub.content = "One two three four five six."
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        plain = _chat(c, "a")
        assert plain.headers["x-architect-cache"] == "miss"
        s = _chat(c, "a", stream=True, stream_options={"include_usage": True})
        assert s.headers["x-architect-cache"] == "hit-l1"
        assert s.headers["content-type"].startswith("text/event-stream")
        text, objs = _sse_text(s)
        assert text == stub.content and objs[-1]["usage"]["completion_tokens"] == 7
        ids = {o["id"] for o in objs}  # the replay's events carry the hit's own id
        assert len(ids) == 1 and ids != {plain.json()["id"]} and next(iter(ids)).startswith("chatcmpl-")
        # streamed first, then served to a non-stream request
        s2 = _chat(c, "b", stream=True)
        assert s2.headers["x-architect-cache"] == "miss" and _sse_text(s2)[0] == stub.content
        p2 = _chat(c, "b")
        assert p2.headers["x-architect-cache"] == "hit-l1"
        assert p2.json()["choices"][0]["message"]["content"] == stub.content
        assert p2.json()["object"] == "chat.completion"
        s3 = _chat(c, "b", stream=True)
        assert s3.headers["x-architect-cache"] == "hit-l1" and _sse_text(s3)[0] == stub.content
        assert _upstream(stub) == 2


def test_ledger_records_tier_and_savings(stub: StubServer) -> None:
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        _chat(c, headers={"x-request-id": "r-miss"})
        _chat(c, headers={"x-request-id": "r-hit"})
        rows = {r["request_id"]: r for r in srv.calls()}
    miss, hit = rows["r-miss"], rows["r-hit"]
    assert miss["cache"] == "miss" and miss["cost_usd"] > 0
    assert hit["cache"] == "hit-l1" and hit["cost_usd"] == 0
    assert hit["saved_cost_usd"] == pytest.approx(miss["cost_usd"])
    assert hit["saved_ms"] > 0 and hit["status"] == "ok"


def test_two_virtual_keys_never_share_entries(stub: StubServer) -> None:
    from architect.access.keys import KeyService

    store = Store.memory()
    keys = KeyService(store.keys, store.budgets, store.audit)
    s1, _ = keys.create(name="one", actor="test")
    s2, _ = keys.create(name="two", actor="test", projects=["x"])
    cfg = make_config({**stub_config(stub.url), "auth": {"admin_key": "admin-secret"}})
    with LiveServer(cfg, store=store) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        h1, h2 = {"authorization": f"Bearer {s1}"}, {"authorization": f"Bearer {s2}"}
        assert _chat(c, headers=h1).headers["x-architect-cache"] == "miss"
        assert _chat(c, headers=h1).headers["x-architect-cache"] == "hit-l1"
        r = _chat(c, headers=h2)
        assert r.status_code == 200 and r.headers["x-architect-cache"] == "miss"
        # not even through the normalised tier, nor by claiming the other's project tag
        assert _chat(c, " What is 2+2? ", headers={**h2, "x-architect-tags": "project=x"}).headers[
            "x-architect-cache"
        ] in ("hit-normalised", "hit-l1")  # its own entry
        assert _upstream(stub) == 2


def test_project_namespaces_end_to_end(stub: StubServer) -> None:
    with (
        LiveServer(_config(stub, namespace="project")) as srv,
        httpx.Client(base_url=srv.url, timeout=20) as c,
    ):
        alpha, beta = {"x-architect-tags": "project=alpha"}, {"x-architect-tags": "project=beta"}
        assert _chat(c, headers=alpha).headers["x-architect-cache"] == "miss"
        assert _chat(c, headers=beta).headers["x-architect-cache"] == "miss"
        assert _chat(c, headers=alpha).headers["x-architect-cache"] == "hit-l1"
        assert _chat(c, metadata={"project": "beta"}).headers["x-architect-cache"] == "hit-l1"
        assert _chat(c).headers["x-architect-cache"] == "miss"  # no project: its own namespace
