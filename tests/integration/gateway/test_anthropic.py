"""An Anthropic-kind provider through the real gateway: a small Anthropic-shaped aiohttp server on
127.0.0.1 (Messages API: x-api-key + anthropic-version, SSE events, cache usage, errors) and the
official `openai` SDK as the client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import orjson
import pytest

from tests.helpers import LiveServer, make_config
from tests.stubs.anthropic_stub import AnthropicStub


@pytest.fixture
def anthropic_stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as s:
        yield s


def _config(stub: AnthropicStub, key: str = "sk-ant-test") -> Any:
    return make_config(
        {
            "providers": [
                {
                    "name": "anthropic",
                    "kind": "anthropic",
                    "base_url": f"http://127.0.0.1:{stub.port}/v1",
                    "api_key": key,
                }
            ],
            "models": [
                {
                    "name": "claude",
                    "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.02},
                    "deployments": [
                        {
                            "provider": "anthropic",
                            "model": "claude-sonnet-4-20250514",
                            "price": {
                                "input_per_mtok": 3.0,
                                "output_per_mtok": 15.0,
                                "cached_input_per_mtok": 0.3,
                                "cache_write_per_mtok": 3.75,
                            },
                        }
                    ],
                }
            ],
        }
    )


def test_anthropic_provider_through_the_gateway(
    client_for: Callable[[LiveServer], openai.OpenAI], anthropic_stub: AnthropicStub
) -> None:
    anthropic_stub.script.append("overloaded")  # the first call is retried
    with LiveServer(_config(anthropic_stub)) as srv:
        c = client_for(srv)
        r = c.chat.completions.with_raw_response.create(
            model="claude",
            max_tokens=300,
            messages=[
                {"role": "system", "content": "You review contracts."},
                {"role": "user", "content": "Notice?"},
            ],
        )
        plain = r.parse()
        stream = list(
            c.chat.completions.create(
                model="claude",
                messages=[{"role": "user", "content": "Hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
        tool_chunks = list(
            c.chat.completions.create(
                model="claude",
                messages=[{"role": "user", "content": "Weather in SF?"}],
                tools=tools,
                stream=True,
            )
        )
        deadline = time.monotonic() + 5
        while len(srv.calls()) < 3 and time.monotonic() < deadline:  # streams are recorded just after
            time.sleep(0.01)
        rows = {row["request_id"]: row for row in srv.calls()}
    sent = anthropic_stub.requests
    assert all(q["path"] == "/v1/messages" for q in sent)
    assert (
        sent[0]["headers"]["anthropic-version"] == "2023-06-01" and "authorization" not in sent[0]["headers"]
    )
    assert sent[1]["body"]["system"] == "You review contracts." and sent[1]["body"]["max_tokens"] == 300
    assert sent[2]["body"]["stream"] is True

    assert r.headers["x-architect-attempts"] == "2"
    assert plain.choices[0].message.content == "The contract's termination clause requires 30 days notice."
    assert plain.choices[0].finish_reason == "length"
    assert plain.usage is not None and plain.usage.prompt_tokens == 21 + 1500 + 188086
    row = rows[r.headers["x-request-id"]]
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (189607, 1500, 393)
    assert row["cost_usd"] == pytest.approx(CACHE_COST)

    text = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    assert text == "Hello! How can I help?"
    assert stream[-1].usage is not None and stream[-1].usage.completion_tokens == 15
    args = "".join(
        tc.function.arguments or ""
        for ch in tool_chunks
        if ch.choices
        for tc in ch.choices[0].delta.tool_calls or ()
        if tc.function
    )
    assert orjson.loads(args) == {"location": "San Francisco, CA"}
    assert [ch.choices[0].finish_reason for ch in tool_chunks if ch.choices][-1] == "tool_calls"
    streamed = [x for x in rows.values() if x["stream"]]
    assert len(streamed) == 2 and all(x["status"] == "ok" and not x["truncated"] for x in streamed)


ALL_INPUT = 21 + 1500 + 188086  # the cache fixture's uncached input, cache reads and cache writes
CACHE_COST = (21 * 3.0 + 1500 * 0.3 + 188086 * 3.75 + 393 * 15.0) / 1e6


def test_every_api_and_the_ledger_count_the_same_input_tokens(
    client_for: Callable[[LiveServer], openai.OpenAI], anthropic_stub: AnthropicStub
) -> None:
    system = {"role": "system", "content": "You review contracts."}
    ask = [system, {"role": "user", "content": "Notice?"}]
    with LiveServer(_config(anthropic_stub)) as srv:
        c = client_for(srv)
        chunks = list(
            c.chat.completions.create(
                model="claude", messages=ask, stream=True, stream_options={"include_usage": True}
            )
        )
        plain = c.responses.create(model="claude", instructions="You review contracts.", input="Notice?")
        events = list(
            c.responses.create(
                model="claude", instructions="You review contracts.", input="Notice?", stream=True
            )
        )
        streamed = events[-1].response  # type: ignore[union-attr]
        deadline = time.monotonic() + 5
        while len(srv.calls()) < 3 and time.monotonic() < deadline:  # streams are recorded just after
            time.sleep(0.01)
        rows = srv.calls()
    assert all(q["body"]["system"] == "You review contracts." for q in anthropic_stub.requests)
    assert events[-1].type == "response.incomplete"  # the fixture stops at max_tokens
    chat_usage = chunks[-1].usage
    assert chat_usage is not None and chat_usage.prompt_tokens == ALL_INPUT
    for resp in (plain, streamed):
        assert resp.usage is not None and resp.usage.input_tokens == ALL_INPUT
        assert resp.usage.input_tokens_details.cached_tokens == 1500
        assert resp.usage.total_tokens == ALL_INPUT + 393
    assert len(rows) == 3
    for row in rows:
        assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (
            ALL_INPUT,
            1500,
            393,
        )
        assert row["cost_usd"] == pytest.approx(CACHE_COST)  # writes priced as writes, reads as reads


def test_rejected_credentials_are_not_retried(
    client_for: Callable[[LiveServer], openai.OpenAI], anthropic_stub: AnthropicStub
) -> None:
    with LiveServer(_config(anthropic_stub, key="sk-ant-wrong")) as srv:
        c = client_for(srv)
        with pytest.raises(openai.APIStatusError) as ei:
            c.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}])
    assert ei.value.status_code == 502 and "credentials" in ei.value.message
    assert len(anthropic_stub.requests) == 1


def test_invalid_json_mid_stream_is_a_broken_stream(
    client_for: Callable[[LiveServer], openai.OpenAI], anthropic_stub: AnthropicStub
) -> None:
    anthropic_stub.script.append("bad-json")
    with LiveServer(_config(anthropic_stub)) as srv:
        seen: list[str] = []
        with pytest.raises(openai.APIError) as ei:  # an error, not a clean end of the stream
            for chunk in client_for(srv).chat.completions.create(
                model="claude", messages=[{"role": "user", "content": "Hi"}], stream=True
            ):
                seen.extend(ch.delta.content or "" for ch in chunk.choices)
        deadline = time.monotonic() + 5
        while not srv.calls() and time.monotonic() < deadline:  # a stream is recorded just after
            time.sleep(0.01)
        (row,) = srv.calls()
    assert "not valid JSON" in ei.value.message and "".join(seen) == "Hello"
    assert (row["status"], row["truncated"], row["error_kind"]) == ("error", True, "invalid_stream_event")
