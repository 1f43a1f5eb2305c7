"""The Messages ⇄ chat completions translation and the Messages stream converters, without servers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from architect.errors import UpstreamRefused
from architect.gateway.apis.messages_stream import (
    FromChatStream,
    NativeStream,
    message_to_sse,
    sse_to_message,
)
from architect.gateway.apis.messages_translate import (
    anthropic_usage,
    message_from_chat,
    message_id,
    reissue,
    to_chat,
)
from architect.gateway.providers.anthropic import usage_of
from architect.gateway.providers.base import Usage
from architect.gateway.providers.openai import OpenAIStream


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_fields_without_an_equivalent_are_dropped_and_named() -> None:
    chat, dropped = to_chat(
        _body(
            top_k=3,
            thinking={"type": "enabled", "budget_tokens": 100},
            context_management={"edits": []},
            metadata={"user_id": "u"},
            system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        ),
        {"anthropic-beta": "x"},
    )
    assert dropped == [
        "anthropic-beta",
        "cache_control",
        "context_management",
        "metadata.user_id",
        "thinking",
        "top_k",
    ]
    assert chat["messages"][0] == {"role": "system", "content": "s"}
    assert "top_k" not in chat and "metadata" not in chat and "thinking" not in chat


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"container": "c1"}, "container"),
        ({"mcp_servers": [{"url": "https://x"}]}, "mcp_servers"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0].type"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "base64", "media_type": "application/pdf", "data": "x"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences"),  # chat takes at most 4
        ({"tools": [{"name": "t" * 65, "input_schema": {"type": "object"}}]}, "tools[0].name"),
        ({"tools": [{"name": "a.b", "input_schema": {"type": "object"}}]}, "tools[0].name"),
    ],
)
def test_fields_the_deployment_cannot_take_are_refused_by_name(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(UpstreamRefused) as e:
        to_chat(_body(**extra), {})
    assert e.value.status == 400 and e.value.param == param


def test_up_to_four_stop_sequences_are_carried_as_stop() -> None:
    chat, _ = to_chat(_body(stop_sequences=["a", "b", "c", "d"]), {})
    assert chat["stop"] == ["a", "b", "c", "d"]


def test_tool_use_and_results_map_to_tool_calls_and_tool_messages() -> None:
    chat, dropped = to_chat(
        _body(
            tools=[{"name": "f", "input_schema": {"type": "object"}, "defer_loading": True}],
            tool_choice={"type": "tool", "name": "f", "disable_parallel_tool_use": True},
            stop_sequences=["END"],
            messages=[
                {"role": "user", "content": "go"},
                {
                    "role": "system",
                    "content": [{"type": "text", "text": "env", "cache_control": {"type": "ephemeral"}}],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "s"},
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": "boom",
                            "is_error": True,
                        },
                        {"type": "text", "text": "and?"},
                    ],
                },
            ],
        ),
        {},
    )
    assert dropped == ["cache_control", "thinking", "tools.defer_loading"]
    assert (
        chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
        and chat["parallel_tool_calls"] is False
    )
    assert chat["stop"] == ["END"]
    system, assistant, tool, user = chat["messages"][1:]
    assert system == {"role": "system", "content": "env"}
    assert assistant == {
        "role": "assistant",
        "content": "calling",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
        ],
    }
    assert tool == {"role": "tool", "tool_call_id": "toolu_1", "content": "[tool error] boom"}
    assert user == {"role": "user", "content": "and?"}


def test_a_chat_completion_becomes_a_message() -> None:
    completion = {
        "choices": [
            {
                "message": {
                    "content": "ok",
                    "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": '{"x": 2}'}}],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    msg = message_from_chat(
        completion, "msg_1", "claude-x", Usage(prompt_tokens=10, completion_tokens=3, cached_tokens=4)
    )
    assert msg["content"] == [
        {"type": "text", "text": "ok"},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"x": 2}},
    ]
    assert msg["stop_reason"] == "tool_use" and msg["model"] == "claude-x"
    assert msg["usage"] == {
        "input_tokens": 6,
        "output_tokens": 3,
        "cache_read_input_tokens": 4,
        "cache_creation_input_tokens": 0,
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return (
        b"data: "
        + orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        + b"\n\n"
    )


def test_a_chat_stream_becomes_the_messages_event_sequence() -> None:
    tr = FromChatStream(OpenAIStream(True), "msg_1", "claude-x", 12)
    upstream = [
        _chunk({"role": "assistant", "content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        _chunk({}, "tool_calls"),
        b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":4}}\n\n',
        b"data: [DONE]\n\n",
    ]
    out = b"".join(tr.feed(c) for c in upstream)
    names = [line[7:].decode() for line in out.split(b"\n") if line.startswith(b"event: ")]
    assert names == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert tr.done and tr.usage == Usage(prompt_tokens=12, completion_tokens=4)
    message = sse_to_message(out)
    assert message is not None
    assert message["content"] == [
        {"type": "text", "text": "Hello"},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
    ]
    assert message["stop_reason"] == "tool_use" and message["usage"]["output_tokens"] == 4


def test_replaying_a_message_rebuilds_it() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "thinking", "thinking": "t", "signature": "sig"},
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"k": [1, 2]}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 5},
    }
    assert sse_to_message(b"".join(message_to_sse(message))) == message


def test_a_native_stream_passes_through_and_breaks_on_an_event_that_is_not_json() -> None:
    tr = NativeStream("msg_own", "sonnet")
    start = b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_up","model":"claude-x","usage":{"input_tokens":5,"cache_read_input_tokens":2,"output_tokens":1}}}\n\n'
    ping = b'event: ping\ndata: {"type": "ping"}\n\n'
    assert tr.feed(start[:30]) == b""
    # the message is the gateway's (its id, the model asked for); every other event passes as it came
    assert (
        tr.feed(start[30:] + ping)
        == start.replace(b"msg_up", b"msg_own").replace(b"claude-x", b"sonnet") + ping
    )
    assert tr.feed(ping) == ping
    assert tr.usage == Usage(prompt_tokens=7, completion_tokens=1, cached_tokens=2)
    out = tr.feed(b'event: content_block_delta\ndata: {"type": oops}\n\n')
    assert out.startswith(b"event: error\n") and tr.error is not None and not tr.done
    assert tr.feed(b'event: message_stop\ndata: {"type":"message_stop"}\n\n') == b""


def test_messages_usage_counts_cache_reads_and_writes_apart_from_input_tokens() -> None:
    upstream = {
        "input_tokens": 9,
        "output_tokens": 3,
        "cache_read_input_tokens": 4,
        "cache_creation_input_tokens": 2,
    }
    usage = usage_of(upstream)
    assert usage == Usage(prompt_tokens=15, completion_tokens=3, cached_tokens=4, cache_write_tokens=2)
    assert anthropic_usage(usage) == upstream  # a translated answer reports what a native one does
    tr = NativeStream("msg_x", "m")
    start = {"type": "message_start", "message": {"id": "msg_up", "usage": {**upstream, "output_tokens": 1}}}
    tr.feed(b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n")
    tr.feed(
        b'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"output_tokens":3}}\n\n'
    )
    assert tr.usage == usage


def test_reissue_gives_a_cached_message_the_new_calls_ids() -> None:
    old, new = "0123456789abcdef012345", "fedcba9876543210fedcba"
    chat = {
        "choices": [
            {
                "message": {
                    "content": "hi",
                    "tool_calls": [
                        {"function": {"name": "f", "arguments": "{}"}},
                        {"id": "toolu_up", "function": {"name": "g", "arguments": "{}"}},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    cached = message_from_chat(chat, message_id(old), "m", None)
    reissue(cached, message_id(new))
    assert cached["id"] == f"msg_{new}"
    assert [b.get("id") for b in cached["content"]] == [None, f"toolu_msg_{new}_1", "toolu_up"]
    native = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "content": [{"type": "tool_use", "id": "toolu_01A"}]}
    reissue(native, message_id(new))
    assert native["id"] == f"msg_{new}" and native["content"][0]["id"] == "toolu_01A"
