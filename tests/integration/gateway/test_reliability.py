"""Reliability through the real app, real stub upstreams on 127.0.0.1 and the official `openai` SDK:
retries, fallbacks, circuit breakers, stream failover and truncation, Retry-After, non-retryable
errors and context-window fallbacks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer

MSG = [{"role": "user", "content": "Say hello."}]
FAST_RETRY = {"max_attempts": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.05}


@pytest.fixture
def stub2() -> Iterator[StubServer]:
    with StubServer(seed=1, content="Hello from the backup.") as s:
        yield s


def _calls(srv: LiveServer, n: int) -> list[dict[str, Any]]:
    """The ledger rows once `n` are there (a stream is recorded just after its last byte is sent)."""
    deadline = time.monotonic() + 5
    while True:
        rows = srv.calls()
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.01)


def _providers(*stubs: StubServer) -> list[dict[str, Any]]:
    return [{"name": f"p{i}", "kind": "openai", "base_url": s.url} for i, s in enumerate(stubs)]


def _dep(provider: str, **kw: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": kw.pop("model", "stub-model"),
        "name": kw.pop("name", provider),
        **kw,
    }


def test_30_percent_failing_primary_1000_calls_all_succeed(stub: StubServer, stub2: StubServer) -> None:
    stub.fail_rate, stub.fail_modes, stub.timeout_s = 0.3, ["500", "timeout", "reset"], 1.0
    cfg = make_config(
        {
            "providers": _providers(stub, stub2),
            "models": [
                {
                    "name": "m",
                    "retry": FAST_RETRY,
                    "fallbacks": ["backup"],
                    "deployments": [
                        # 8 consecutive failures happen by chance at a 30% rate over ~1,300 attempts
                        # (~0.3^8 each); 20 do not, so the breaker stays closed and the primary carries the load
                        _dep("p0", timeout_s=0.3, breaker={"consecutive_failures": 20, "cooldown_s": 0.5})
                    ],
                },
                {"name": "backup", "deployments": [_dep("p1")]},
            ],
        }
    )
    n, streamed_every = 1000, 5

    async def drive(url: str) -> list[str]:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=20)
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> str:
            async with sem:
                if i % streamed_every == 0:
                    stream = await client.chat.completions.create(model="m", messages=MSG, stream=True)
                    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
                r = await client.chat.completions.create(model="m", messages=MSG)
                return r.choices[0].message.content or ""

        try:
            return await asyncio.gather(*(one(i) for i in range(n)))
        finally:
            await client.close()

    with LiveServer(cfg) as srv:
        texts = asyncio.run(drive(srv.url))
        rows = _calls(srv, n)
    assert all(t in ("Hello from the stub.", "Hello from the backup.") for t in texts)
    assert len(rows) == n and all(r["status"] == "ok" for r in rows)
    assert sum(r["stream"] for r in rows) == n // streamed_every
    assert any(r["attempts"] > 1 for r in rows)  # failures were really injected and retried
    assert stub.counts["/v1/chat/completions"] > 0.9 * n  # the primary did carry the load


def test_dead_single_deployment_group_opens_its_breaker_then_recovers(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer
) -> None:
    stub.fail_rate, stub.fail_modes = 1.0, ["500"]
    cfg = make_config(
        {
            "providers": _providers(stub),
            "models": [
                {
                    "name": "solo",
                    "retry": {**FAST_RETRY, "max_attempts": 2},
                    "deployments": [_dep("p0", breaker={"consecutive_failures": 4, "cooldown_s": 30.0})],
                }
            ],
        }
    )
    with LiveServer(cfg) as srv:
        # the breaker's clock, moved past the cooldown below instead of sleeping through it; the
        # cooldown is long enough that a busy machine never reaches it while the breaker is checked
        skew = [0.0]
        (p0,) = srv.runtime.router.groups["solo"].deployments
        p0.breaker.clock = lambda: time.monotonic() + skew[0]
        c = client_for(srv)
        for _ in range(2):  # 2 calls x 2 attempts = 4 consecutive failures: open
            with pytest.raises(openai.APIStatusError) as ei:
                c.chat.completions.create(model="solo", messages=MSG)
            assert ei.value.status_code == 502
        sent = stub.counts["/v1/chat/completions"]
        assert sent == 4
        for _ in range(5):
            with pytest.raises(openai.APIStatusError) as ei:
                c.chat.completions.create(model="solo", messages=MSG)
            assert stub.counts["/v1/chat/completions"] == sent  # answered by the breaker, not upstream
            err = ei.value
            assert err.status_code == 503 and "p0" in err.message and "solo" in err.message
            assert 29 <= int(err.response.headers["retry-after"]) <= 30
            assert (err.body or {}).get("code") == "circuit_open"  # type: ignore[union-attr]
        assert stub.counts["/v1/chat/completions"] == sent  # no upstream call while open
        ready = httpx.get(srv.url + "/readyz").json()
        assert ready["checks"]["models"]["solo"] == {"available": False, "deployments": {"p0": "open"}}
        br = httpx.get(srv.url + "/api/v1/breakers").json()["breakers"]
        assert br[0]["deployment"] == "p0" and br[0]["state"] == "open"
        assert br[0]["history"][-1]["to"] == "open" and "consecutive" in br[0]["history"][-1]["reason"]

        stub.fail_rate = 0.0
        skew[0] = 30.0
        r = c.chat.completions.create(model="solo", messages=MSG)  # the half-open probe succeeds
        assert r.choices[0].message.content == stub.content
        br = httpx.get(srv.url + "/api/v1/breakers").json()["breakers"]
        assert br[0]["state"] == "closed"
        assert [h["to"] for h in br[0]["history"]] == ["open", "half_open", "closed"]
        rows = _calls(srv, 8)
    fast = [r for r in rows if r["error_kind"] == "circuit_open"]
    assert len(fast) == 5 and all(r["http_status"] == 503 and r["attempts"] == 0 for r in fast)
    probe = max(rows, key=lambda r: r["ts"])
    assert probe["status"] == "ok" and "half-open probe" in probe["route_reason"]


def test_stream_broken_midway_ends_with_an_error_event_and_is_recorded_truncated(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer
) -> None:
    stub.script.extend(["truncate", "truncate"])
    cfg = make_config({"providers": _providers(stub), "models": [{"name": "m", "deployments": [_dep("p0")]}]})
    with LiveServer(cfg) as srv:
        with pytest.raises(openai.APIError):
            for _ in client_for(srv).chat.completions.create(model="m", messages=MSG, stream=True):
                pass
        raw = httpx.post(
            srv.url + "/v1/chat/completions", timeout=10, json={"model": "m", "messages": MSG, "stream": True}
        )
        rows = _calls(srv, 2)
    assert raw.status_code == 200
    events = [e for e in raw.content.split(b"\n\n") if e]
    assert b"[DONE]" not in raw.content
    last = orjson.loads(events[-1].removeprefix(b"data: "))
    assert "error" in last and "incomplete" in last["error"]["message"]
    assert len(rows) == 2
    assert all(r["truncated"] and r["status"] == "error" and r["stream"] for r in rows)


def test_invalid_json_mid_stream_is_a_broken_stream_for_the_sdk_and_the_ledger(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer
) -> None:
    # The upstream sends one event that is not JSON between good ones, then the rest and [DONE]; the
    # pause between chunks puts the bad event in a later read than the first (which went out already).
    stub.script.extend(["bad-json", "bad-json"])
    stub.chunk_delay_s = 0.05
    cfg = make_config({"providers": _providers(stub), "models": [{"name": "m", "deployments": [_dep("p0")]}]})
    with LiveServer(cfg) as srv:
        seen: list[str] = []
        with pytest.raises(openai.APIError) as ei:  # an error, not a JSONDecodeError or a clean end
            for chunk in client_for(srv).chat.completions.create(model="m", messages=MSG, stream=True):
                seen.extend(ch.delta.content or "" for ch in chunk.choices)
        raw = httpx.post(
            srv.url + "/v1/chat/completions", timeout=10, json={"model": "m", "messages": MSG, "stream": True}
        )
        rows = _calls(srv, 2)
    assert "not valid JSON" in ei.value.message
    assert "".join(seen) == "Hello "  # the chunk before the bad one reached the client
    assert raw.status_code == 200 and b"[DONE]" not in raw.content and b"oops" not in raw.content
    events = [orjson.loads(e.removeprefix(b"data: ")) for e in raw.content.split(b"\n\n") if e]
    assert events[-1]["error"]["code"] == "invalid_stream_event"
    assert all("error" not in e for e in events[:-1])
    assert len(rows) == 2
    for row in rows:
        assert (row["status"], row["truncated"], row["error_kind"]) == ("error", True, "invalid_stream_event")
        (attempt,) = srv.store.ledger.attempts_for(row["request_id"])
        assert (attempt["status"], attempt["error_kind"]) == ("error", "truncated")  # a deployment failure
    assert stub.counts["/v1/chat/completions"] == 2


def test_invalid_json_before_the_first_byte_fails_over(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer, stub2: StubServer
) -> None:
    stub.script.append("bad-json-first")
    cfg = make_config(
        {
            "providers": _providers(stub, stub2),
            "models": [
                {
                    "name": "m",
                    "strategy": "lowest-cost",
                    "retry": FAST_RETRY,
                    "deployments": [
                        _dep("p0", price={"input_per_mtok": 0.1}),
                        _dep("p1", price={"input_per_mtok": 5.0}),
                    ],
                }
            ],
        }
    )
    with LiveServer(cfg) as srv:
        chunks = list(client_for(srv).chat.completions.create(model="m", messages=MSG, stream=True))
        rows = _calls(srv, 1)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the backup."
    assert len(rows) == 1 and rows[0]["status"] == "ok" and not rows[0]["truncated"]
    assert rows[0]["attempts"] == 2 and rows[0]["deployment"] == "p1"


def test_stream_fails_over_before_the_first_byte(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer, stub2: StubServer
) -> None:
    stub.script.append("500")
    cfg = make_config(
        {
            "providers": _providers(stub, stub2),
            "models": [
                {
                    "name": "m",
                    "strategy": "lowest-cost",
                    "retry": FAST_RETRY,
                    "deployments": [
                        _dep("p0", price={"input_per_mtok": 0.1}),
                        _dep("p1", price={"input_per_mtok": 5.0}),
                    ],
                }
            ],
        }
    )
    with LiveServer(cfg) as srv:
        chunks = list(client_for(srv).chat.completions.create(model="m", messages=MSG, stream=True))
        rows = _calls(srv, 1)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the backup."
    assert len(rows) == 1 and rows[0]["status"] == "ok" and not rows[0]["truncated"]
    assert rows[0]["attempts"] == 2 and rows[0]["deployment"] == "p1"
    assert stub.counts["/v1/chat/completions"] == 1


def test_retry_after_is_honoured(client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer) -> None:
    stub.script.extend(["429:1", "ok"])
    cfg = make_config(
        {
            "providers": _providers(stub),
            "models": [{"name": "m", "retry": FAST_RETRY, "deployments": [_dep("p0")]}],
        }
    )
    with LiveServer(cfg) as srv:
        t0 = time.perf_counter()
        r = client_for(srv).chat.completions.with_raw_response.create(model="m", messages=MSG)
        took = time.perf_counter() - t0
    assert r.parse().choices[0].message.content == stub.content
    assert r.headers["x-architect-attempts"] == "2"
    assert took >= 1.0, took


def test_retry_after_beyond_the_bound_returns_429_with_retry_after(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer
) -> None:
    stub.script.append("429:30")
    cfg = make_config(
        {
            "providers": _providers(stub),
            "models": [{"name": "m", "retry": FAST_RETRY, "deployments": [_dep("p0")]}],
        }
    )
    with LiveServer(cfg) as srv:
        t0 = time.perf_counter()
        with pytest.raises(openai.RateLimitError) as ei:
            client_for(srv).chat.completions.create(model="m", messages=MSG)
        assert time.perf_counter() - t0 < 10.0  # did not wait the 30 s (generous: a busy machine is slow)
    assert ei.value.response.headers["retry-after"] == "30"
    assert stub.counts["/v1/chat/completions"] == 1


@pytest.mark.parametrize(
    ("mode", "param", "code"), [("400-param", "messages", None), ("400", None, "invalid_value")]
)
def test_an_upstream_refusal_reaches_the_client_with_its_param_and_code(
    client_for: Callable[[LiveServer], openai.OpenAI],
    stub: StubServer,
    mode: str,
    param: str | None,
    code: str | None,
) -> None:
    stub.script.append(mode)
    with LiveServer(make_config(stub_config(stub.url))) as srv, pytest.raises(openai.BadRequestError) as ei:
        client_for(srv).chat.completions.create(model="m", messages=MSG)
    err = ei.value.response.json()["error"]
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error")
    assert "stub" in err["message"]


@pytest.mark.parametrize(("mode", "status"), [("400", 400), ("401", 502)])
def test_non_retryable_errors_are_returned_at_once(
    client_for: Callable[[LiveServer], openai.OpenAI],
    stub: StubServer,
    stub2: StubServer,
    mode: str,
    status: int,
) -> None:
    stub.script.append(mode)
    cfg = make_config(
        {
            "providers": _providers(stub, stub2),
            "models": [
                {"name": "m", "retry": FAST_RETRY, "fallbacks": ["other"], "deployments": [_dep("p0")]},
                {"name": "other", "deployments": [_dep("p1")]},
            ],
        }
    )
    with LiveServer(cfg) as srv:
        with pytest.raises(openai.APIStatusError) as ei:
            client_for(srv).chat.completions.create(model="m", messages=MSG)
        rows = srv.calls()
    assert ei.value.status_code == status
    assert stub.counts["/v1/chat/completions"] == 1 and not stub2.counts
    assert rows[0]["attempts"] == 1 and rows[0]["fallbacks"] == 0


def test_context_window_errors_fall_back_to_the_larger_group(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer, stub2: StubServer
) -> None:
    cfg = make_config(
        {
            "providers": _providers(stub, stub2),
            "models": [
                {
                    "name": "small",
                    "context_window_fallbacks": ["large"],
                    "retry": FAST_RETRY,
                    "deployments": [_dep("p0", context_window=200)],
                },
                {"name": "large", "deployments": [_dep("p1", context_window=100_000)]},
                {"name": "nowhere", "deployments": [_dep("p0", name="tiny", context_window=20)]},
            ],
        }
    )
    long_msg = [{"role": "user", "content": "word " * 400}]
    with LiveServer(cfg) as srv:
        c = client_for(srv)
        stub.script.append("context")  # the provider says the (short) prompt is too long
        r1 = c.chat.completions.with_raw_response.create(model="small", messages=MSG)
        # the estimate already exceeds the small window: the small deployment is not even called
        r2 = c.chat.completions.with_raw_response.create(model="small", messages=long_msg)
        with pytest.raises(openai.BadRequestError) as ei:
            c.chat.completions.create(model="nowhere", messages=long_msg)
        rows = {r["request_id"]: r for r in srv.calls()}
    assert r1.parse().choices[0].message.content == "Hello from the backup."
    assert r2.parse().choices[0].message.content == "Hello from the backup."
    assert stub.counts["/v1/chat/completions"] == 1
    row1, row2 = rows[r1.headers["x-request-id"]], rows[r2.headers["x-request-id"]]
    assert (row1["attempts"], row1["fallbacks"], row1["deployment"]) == (2, 1, "p1")
    assert (row2["attempts"], row2["fallbacks"], row2["deployment"]) == (1, 1, "p1")
    assert (ei.value.body or {}).get("code") == "context_length_exceeded"  # type: ignore[union-attr]
