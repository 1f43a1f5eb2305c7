from __future__ import annotations

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
