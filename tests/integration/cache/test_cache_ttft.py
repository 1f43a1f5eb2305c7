"""Time to first token in the ledger: only a stream from an upstream has one. A non-stream call (a
cache hit included) records None rather than a made-up figure."""

from __future__ import annotations

import httpx

from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer


def test_only_an_upstream_stream_records_a_time_to_first_token(stub: StubServer) -> None:
    cfg = make_config({**stub_config(stub.url), "cache": {}})
    with LiveServer(cfg) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        for rid, content, stream, tier in (
            ("plain-miss", "a", False, "miss"),
            ("plain-hit", "a", False, "hit-l1"),
            ("stream-miss", "b", True, "miss"),
            ("stream-hit", "b", True, "hit-l1"),
        ):
            body = {"model": "m", "messages": [{"role": "user", "content": content}], "temperature": 0}
            r = c.post("/v1/chat/completions", json={**body, "stream": stream}, headers={"x-request-id": rid})
            assert r.status_code == 200 and r.headers["x-architect-cache"] == tier
        rows = {r["request_id"]: r for r in srv.calls()}
    assert rows["plain-miss"]["ttft_ms"] is None
    assert rows["plain-hit"]["ttft_ms"] is None  # not 0 ms: nothing was streamed
    assert rows["stream-miss"]["ttft_ms"] is not None and rows["stream-miss"]["ttft_ms"] > 0
    assert rows["stream-hit"]["ttft_ms"] is None
