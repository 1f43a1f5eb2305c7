"""The Anthropic adapter as pure translation, against recorded (hand-written, real-format) fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from architect.config import PriceConfig
from architect.errors import ProviderError
from architect.gateway.costs import cost_usd
from architect.gateway.providers import adapter_for
from architect.gateway.providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicAdapter, AnthropicStream
from architect.gateway.providers.base import Usage

FIX = Path(__file__).parent / "fixtures" / "anthropic"
A = AnthropicAdapter()


def _req(body: dict[str, Any], stream: bool = False) -> tuple[str, dict[str, Any], dict[str, str]]:
    path, payload, headers = A.chat_request(body, "claude-sonnet-4-20250514", stream)
    return path, orjson.loads(payload), headers


def _events(data: bytes) -> list[Any]:
    out = []
    for ev in data.split(b"\n\n"):
        if ev.startswith(b"data: "):
            payload = ev[6:]
            out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


def test_adapter_for_kind_and_auth_headers() -> None:
    assert isinstance(adapter_for("anthropic"), AnthropicAdapter)
    assert A.auth_headers("sk-ant-1") == {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-1"}
    assert "authorization" not in A.auth_headers("sk-ant-1")


def test_system_multi_turn_and_defaults() -> None:
    path, out, headers = _req(
        {
            "model": "c",
            "temperature": 1.7,
            "top_p": 0.9,
            "stop": "END",
            "user": "u-1",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": "Answer in English."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Again"},
                {"role": "user", "content": [{"type": "text", "text": "and again"}]},
            ],
        }
    )
    assert path == "/messages" and headers["content-type"] == "application/json"
    assert out["model"] == "claude-sonnet-4-20250514"
    assert out["max_tokens"] == DEFAULT_MAX_TOKENS
    assert out["system"] == "You are terse.\n\nAnswer in English."
    assert out["temperature"] == 1.0 and out["top_p"] == 0.9
    assert out["stop_sequences"] == ["END"] and out["metadata"] == {"user_id": "u-1"}
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]  # consecutive users merged
    assert out["messages"][2]["content"] == [
        {"type": "text", "text": "Again"},
        {"type": "text", "text": "and again"},
    ]
    assert "stream" not in out
    assert (
        _req({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 77}, True)[1][
            "max_tokens"
        ]
        == 77
    )
    assert _req({"messages": [{"role": "user", "content": "x"}]}, True)[1]["stream"] is True


def test_tools_tool_calls_and_results() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"loc": {}}},
            },
        }
    ]
    _, out, _ = _req(
        {
            "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"loc": "Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"loc": "Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
            ],
        }
    )
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"loc": {}}},
        }
    ]
    assert out["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assistant, results = out["messages"][1], out["messages"][2]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"loc": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"loc": "Rome"}},
        ],
    }
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "21C"},
        ],
    }
    assert _req({"tools": tools, "tool_choice": "required", "messages": [{"role": "user", "content": "x"}]})[
        1
    ]["tool_choice"] == {"type": "any"}


def test_images_and_cache_control() -> None:
    _, out, _ = _req(
        {
            "messages": [
                {
                    "role": "system",
                    "content": [{"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    ],
                },
            ]
        }
    )
    assert out["system"] == [{"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}]
    assert out["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 2, "messages": [{"role": "user", "content": "x"}]}, "n"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ],
)
def test_requests_anthropic_cannot_take_are_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ProviderError) as ei:
        _req(body)
    assert ei.value.status == 400 and not ei.value.retryable and ei.value.param == param


def test_text_response() -> None:
    r = A.chat_response((FIX / "message_text.json").read_bytes())
    body = orjson.loads(r.body)
    assert body["object"] == "chat.completion" and body["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert body["choices"][0] == {
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
    }
    assert body["usage"]["prompt_tokens"] == 12 and body["usage"]["total_tokens"] == 22
    assert r.finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (12, 10)  # type: ignore[union-attr]


def test_tool_use_response() -> None:
    r = A.chat_response((FIX / "message_tool_use.json").read_bytes())
    choice = orjson.loads(r.body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check the weather in Paris."
    tc = choice["message"]["tool_calls"][0]
    assert tc["id"] == "toolu_01A09q90qw90lq917835lq9" and tc["type"] == "function"
    assert tc["function"]["name"] == "get_weather"
    assert orjson.loads(tc["function"]["arguments"]) == {"location": "Paris, France", "unit": "celsius"}


def test_cache_usage_is_priced_once_at_each_rate() -> None:
    r = A.chat_response((FIX / "message_cache.json").read_bytes())
    u = r.usage
    assert u is not None
    assert (u.prompt_tokens, u.cached_tokens, u.cache_write_tokens, u.completion_tokens) == (
        21 + 1500 + 188086,
        1500,
        188086,
        393,
    )
    body = orjson.loads(r.body)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["prompt_tokens"] == 21 + 1500 + 188086  # the client sees every input token
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 1500
    price = PriceConfig(
        input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3, cache_write_per_mtok=3.75
    )
    expected = (21 * 3.0 + 1500 * 0.3 + 188086 * 3.75 + 393 * 15.0) / 1e6
    assert cost_usd(price, u) == pytest.approx(expected)


def _feed_all(tr: AnthropicStream, data: bytes, size: int) -> bytes:
    return b"".join(tr.feed(data[i : i + size]) for i in range(0, len(data), size))


@pytest.mark.parametrize("size", [1, 7, 100_000])  # arbitrary network chunking
def test_text_stream(size: int) -> None:
    tr = A.stream_translator(include_usage=True, model="claude")
    out = _feed_all(tr, (FIX / "stream_text.sse").read_bytes(), size)
    evs = _events(out)
    assert evs[-1] == "[DONE]" and tr.done and tr.error is None
    chunks = evs[:-1]
    assert all(
        c["object"] == "chat.completion.chunk" and c["id"] == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
        for c in chunks
    )
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello! How can I help?" == tr.completion_text()
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 15
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 2000
    u = tr.usage
    assert u is not None and (u.prompt_tokens, u.cached_tokens, u.completion_tokens) == (2025, 2000, 15)


def test_a_stream_counts_cache_writes_once_in_its_prompt_tokens() -> None:
    tr = A.stream_translator(include_usage=True, model="claude")
    evs = _events(tr.feed((FIX / "stream_cache.sse").read_bytes()))
    assert evs[-2]["usage"]["prompt_tokens"] == 21 + 1500 + 188086
    assert evs[-2]["usage"]["prompt_tokens_details"] == {"cached_tokens": 1500, "cache_write_tokens": 188086}
    assert tr.usage == Usage(21 + 1500 + 188086, 393, 1500, 188086)
    # a message_delta repeating the cumulative input counts changes nothing; one without them neither
    tr = A.stream_translator(include_usage=False, model="claude")
    start = b'data: {"type":"message_start","message":{"usage":{"input_tokens":9,"cache_read_input_tokens":4,"cache_creation_input_tokens":2,"output_tokens":1}}}\n\n'
    delta = b'data: {"type":"message_delta","delta":{},"usage":{"input_tokens":9,"cache_read_input_tokens":4,"cache_creation_input_tokens":2,"output_tokens":3}}\n\n'
    tr.feed(start + delta + b'data: {"type":"message_delta","delta":{},"usage":{"output_tokens":5}}\n\n')
    assert tr.usage == Usage(prompt_tokens=15, completion_tokens=5, cached_tokens=4, cache_write_tokens=2)


def test_stream_without_usage_requested_has_no_usage_chunk() -> None:
    tr = A.stream_translator(include_usage=False, model="claude")
    evs = _events(tr.feed((FIX / "stream_text.sse").read_bytes()))
    assert all("usage" not in e for e in evs if e != "[DONE]")
    assert tr.usage is not None and tr.usage.completion_tokens == 15  # still tracked for the ledger


def test_tool_use_stream() -> None:
    tr = A.stream_translator(include_usage=False, model="claude")
    evs = _events(tr.feed((FIX / "stream_tool_use.sse").read_bytes()))
    deltas = [e["choices"][0]["delta"] for e in evs[:-1] if e["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    args = "".join(c["function"]["arguments"] for c in calls)
    assert orjson.loads(args) == {"location": "San Francisco, CA"}
    assert evs[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_error_event_in_a_stream() -> None:
    tr = A.stream_translator(include_usage=False, model="claude")
    evs = _events(tr.feed((FIX / "stream_error.sse").read_bytes()))
    assert "[DONE]" not in evs and not tr.done
    assert evs[-1]["error"]["message"] == "Overloaded" and evs[-1]["error"]["code"] == "overloaded_error"
    assert tr.error is not None and tr.error.retryable
    assert tr.completion_text() == "Partial"


@pytest.mark.parametrize(
    ("status", "fixture", "headers", "kind", "retryable", "client_status"),
    [
        (529, "error_overloaded.json", {}, "overloaded", True, 502),
        (429, "error_rate_limit.json", {"retry-after": "7"}, "rate_limited", True, 429),
        (400, "error_prompt_too_long.json", {}, "context_window", False, 400),
        (401, "error_auth.json", {}, "upstream_auth", False, 502),
        (400, "error_invalid.json", {}, "bad_request", False, 400),
    ],
)
def test_error_mapping(
    status: int, fixture: str, headers: dict[str, str], kind: str, retryable: bool, client_status: int
) -> None:
    err = A.error(status, headers, (FIX / fixture).read_bytes())
    assert (err.kind, err.retryable, err.status, err.upstream_status) == (
        kind,
        retryable,
        client_status,
        status,
    )
    if headers:
        assert err.retry_after == 7.0
    if kind == "context_window":
        assert err.code == "context_length_exceeded" and "prompt is too long" in err.message


def test_embeddings_are_refused_clearly() -> None:
    with pytest.raises(ProviderError) as ei:
        A.embeddings_request({"input": "x"}, "claude")
    assert ei.value.status == 400 and "embeddings" in ei.value.message


@pytest.mark.parametrize("bad", [b'{"type": oops}', b"not json at all", b"[1, 2]"])
def test_an_event_that_is_not_a_json_object_breaks_the_stream(bad: bytes) -> None:
    tr = A.stream_translator(include_usage=False, model="claude")
    whole = (FIX / "stream_text.sse").read_bytes()
    cut = whole.index(b"event: content_block_delta")  # after message_start and the first block
    out = tr.feed(whole[:cut] + b"event: content_block_delta\ndata: " + bad + b"\n\n" + whole[cut:])
    evs = _events(out)
    assert evs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert evs[-1]["error"]["code"] == "invalid_stream_event" and "[DONE]" not in evs
    assert tr.broken and not tr.done and tr.error is not None and tr.error.retryable
    assert tr.feed(whole[cut:]) == b""  # nothing after the broken event reaches the client
