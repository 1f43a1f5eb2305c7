"""Coalescing through the real gateway: N identical concurrent requests → one upstream call (counted
at the stub); an upstream error reaches every waiter; a leader whose client disconnects hands over."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.helpers import LiveServer, make_config, stub_config, wait_until_async
from tests.stubs.openai_stub import StubServer

BODY = {"model": "m", "messages": [{"role": "user", "content": "Plan the release."}], "temperature": 0}


def _config(stub: StubServer, **cache: Any) -> Any:
    return make_config({**stub_config(stub.url, retry={"max_attempts": 1}), "cache": cache})


async def _burst(url: str, n: int, body: dict[str, Any] | None = None) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as c:
        return await asyncio.gather(*[c.post("/v1/chat/completions", json=body or BODY) for _ in range(n)])


async def test_100_identical_concurrent_requests_make_one_upstream_call(stub: StubServer) -> None:
    stub.delay_s = 0.5
    with LiveServer(_config(stub)) as srv:
        rs = await _burst(srv.url, 100)
    assert all(r.status_code == 200 for r in rs)
    assert stub.counts["/v1/chat/completions"] == 1
    tiers = sorted(r.headers["x-architect-cache"] for r in rs)
    assert tiers.count("miss") == 1 and tiers.count("hit-l1") == 99
    assert len({r.json()["choices"][0]["message"]["content"] for r in rs}) == 1


async def test_without_coalescing_every_request_goes_upstream(stub: StubServer) -> None:
    stub.delay_s = 0.3
    with LiveServer(_config(stub, coalesce=False)) as srv:
        rs = await _burst(srv.url, 10)
    assert all(r.status_code == 200 for r in rs)
    assert stub.counts["/v1/chat/completions"] == 10  # the control: the test above can fail


async def test_an_upstream_error_reaches_every_waiter(stub: StubServer) -> None:
    stub.script.append("after:0.5:500")  # the leader's error arrives after every follower is waiting
    with LiveServer(_config(stub)) as srv:
        rs = await _burst(srv.url, 20)
        assert stub.counts["/v1/chat/completions"] == 1
        assert all(r.status_code == 502 for r in rs), [r.status_code for r in rs]
        assert all(r.json()["error"]["type"] == "upstream_error" for r in rs)
        # nothing was cached: the next request goes upstream and succeeds
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            ok = await c.post("/v1/chat/completions", json=BODY)
        assert ok.status_code == 200 and ok.headers["x-architect-cache"] == "miss"


async def test_leader_disconnect_hands_over_and_followers_get_answers(stub: StubServer) -> None:
    stub.delay_s = 1.0  # the leader gives up half-way through (0.5 s: room for a busy machine)
    with LiveServer(_config(stub)) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=0.5) as impatient:
            leader = asyncio.create_task(impatient.post("/v1/chat/completions", json=BODY))
            await wait_until_async(lambda: stub.in_flight)  # the leader's call reached the upstream
            followers = asyncio.create_task(_burst(srv.url, 5))
            try:
                await leader
            except httpx.TimeoutException:
                pass
            rs = await followers
        assert all(r.status_code == 200 for r in rs)
        # the leader's upstream call was cancelled with it; one follower took over: two upstream calls
        assert stub.counts["/v1/chat/completions"] == 2
        assert sorted(r.headers["x-architect-cache"] for r in rs).count("miss") == 1
        calls = srv.calls()
    assert sorted(c["status"] for c in calls).count("cancelled") == 1


async def test_followers_stop_waiting_after_the_bound(stub: StubServer) -> None:
    stub.delay_s = 1.0
    with LiveServer(_config(stub, coalesce_wait_s=0.2)) as srv:
        rs = await _burst(srv.url, 3)
    assert all(r.status_code == 200 for r in rs)
    assert stub.counts["/v1/chat/completions"] == 3  # the followers gave up waiting and went upstream
