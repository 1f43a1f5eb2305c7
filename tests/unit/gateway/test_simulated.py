from __future__ import annotations

from typing import Any

import orjson
import pytest

from architect.config import SimulationConfig
from architect.gateway.providers.simulated import SimulatedTransport
from architect.gateway.providers.transport import ConnectError, HTTPRequest, ReadError, TransportTimeout


def _req(stream: bool = False, model: str = "m", timeout: float = 0.05) -> HTTPRequest:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 5,
        "stream": stream,
        "stream_options": {"include_usage": True},
    }
    return HTTPRequest(
        "POST", "http://simulated.invalid/v1/chat/completions", {}, orjson.dumps(body), timeout
    )


async def test_answers_are_labelled_and_usage_matches() -> None:
    t = SimulatedTransport({"m": SimulationConfig(ttft_ms=0, tokens_per_s=1e6, completion_tokens=20)})
    resp = await t.send(_req())
    body = orjson.loads(await resp.read())
    assert resp.headers["x-architect-simulated"] == "true"
    assert body["system_fingerprint"] == "architect-simulated"
    assert body["usage"]["completion_tokens"] == 5  # capped by max_tokens
    assert len(body["choices"][0]["message"]["content"].split()) == 5


async def test_stream_ends_with_usage_and_done() -> None:
    t = SimulatedTransport({"m": SimulationConfig(ttft_ms=0, tokens_per_s=1e6)})
    resp = await t.send(_req(stream=True))
    raw = b"".join([c async for c in resp.iter_chunks()])
    assert raw.endswith(b"data: [DONE]\n\n") and b'"usage"' in raw


async def test_failures_are_deterministic_for_a_seed() -> None:
    cfg = SimulationConfig(ttft_ms=0, tokens_per_s=1e6, fail_429=0.3, fail_500=0.3, seed=42)

    async def outcomes() -> list[int]:
        t = SimulatedTransport({"m": cfg})
        return [(await t.send(_req())).status for _ in range(40)]

    first, second = await outcomes(), await outcomes()
    assert first == second
    assert {429, 500, 200} <= set(first)


@pytest.mark.parametrize(("field", "exc"), [("fail_timeout", TransportTimeout), ("fail_reset", ConnectError)])
async def test_transport_failure_modes(field: str, exc: type[Exception]) -> None:
    t = SimulatedTransport({"m": SimulationConfig(ttft_ms=0, **{field: 1.0})})
    with pytest.raises(exc):
        await t.send(_req())


async def test_truncated_stream_breaks_mid_way() -> None:
    t = SimulatedTransport(
        {"m": SimulationConfig(ttft_ms=0, tokens_per_s=1e6, completion_tokens=40, fail_truncate=1.0)}
    )
    body = orjson.loads(_req(stream=True).body)
    body["max_tokens"] = 40
    resp = await t.send(HTTPRequest("POST", "x/chat/completions", {}, orjson.dumps(body), 1))
    with pytest.raises(ReadError):
        async for _ in resp.iter_chunks():
            pass


async def test_unknown_model_is_404() -> None:
    t = SimulatedTransport({})
    assert (await t.send(_req(model="nope"))).status == 404


async def test_a_call_that_would_outlast_its_timeout_times_out() -> None:
    t = SimulatedTransport({"m": SimulationConfig(ttft_ms=0, tokens_per_s=10)})  # 5 tokens: 0.5 s
    with pytest.raises(TransportTimeout):
        await t.send(_req(timeout=0.05))


async def _answer(stream: bool, **fields: Any) -> list[dict[str, Any]]:
    """The answer to a chat body with `fields`: the completion, or each event of the stream."""
    t = SimulatedTransport({"m": SimulationConfig(ttft_ms=0, tokens_per_s=1e6, completion_tokens=20)})
    body = {**orjson.loads(_req(stream=stream).body), **fields}
    resp = await t.send(HTTPRequest("POST", "x/chat/completions", {}, orjson.dumps(body), 1))
    raw = b"".join([c async for c in resp.iter_chunks()])
    if not stream:
        return [orjson.loads(raw)]
    events = [e.removeprefix(b"data: ") for e in raw.split(b"\n\n") if e]
    assert events[-1] == b"[DONE]"
    return [orjson.loads(e) for e in events[:-1]]


def _finishes(events: list[dict[str, Any]]) -> dict[int, str]:
    return {c["index"]: c["finish_reason"] for e in events for c in e["choices"] if c["finish_reason"]}


@pytest.mark.parametrize(("max_tokens", "reason"), [(5, "length"), (20, "stop"), (50, "stop")])
async def test_a_stream_ends_for_the_same_reason_as_the_completion(max_tokens: int, reason: str) -> None:
    (completion,) = await _answer(False, max_tokens=max_tokens)
    assert completion["choices"][0]["finish_reason"] == reason
    assert _finishes(await _answer(True, max_tokens=max_tokens)) == {0: reason}


async def test_n_gives_n_choices_streamed_or_not() -> None:
    (completion,) = await _answer(False, n=3)
    choices = completion["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert all(len(c["message"]["content"].split()) == 5 for c in choices)
    assert completion["usage"]["completion_tokens"] == 15
    events = await _answer(True, n=3)
    assert _finishes(events) == {0: "length", 1: "length", 2: "length"}
    text: dict[int, str] = {}
    for e in events:
        for c in e["choices"]:
            text[c["index"]] = text.get(c["index"], "") + (c["delta"].get("content") or "")
    assert [len(text[i].split()) for i in range(3)] == [5, 5, 5]
    assert events[-1]["usage"]["completion_tokens"] == 15
