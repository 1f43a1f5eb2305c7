"""The Responses API's translation to chat completions and back, and its stream translators, as pure
functions: what is carried, what is dropped and recorded, what is refused; the event sequence of a
translated stream (text, reasoning, function and custom tool calls, an upstream error) and of a
native one; cache replay and assembly."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from architect.errors import UpstreamRefused
from architect.gateway.apis.responses import RESPONSES
from architect.gateway.apis.responses_native import NativeStream, sse_to_response
from architect.gateway.apis.responses_stream import FromChatStream, response_to_sse
from architect.gateway.apis.responses_translate import (
    Turn,
    output_from_chat,
    reissue,
    response_object,
    to_chat,
)
from architect.gateway.providers.base import Usage
from architect.gateway.providers.openai import OpenAIStream


def _body(**kw: Any) -> dict[str, Any]:
    return {"model": "m", **kw}


def test_string_input_and_instructions() -> None:
    chat, dropped, custom = to_chat(
        _body(input="hi", instructions="sys", max_output_tokens=9, temperature=0.5)
    )
    assert chat == {
        "model": "m",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
        "max_tokens": 9,
        "temperature": 0.5,
    }
    assert dropped == [] and custom == frozenset()


def test_items_roles_parts_and_tool_calls() -> None:
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"},
            ],
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "P"},
        {"type": "reasoning", "id": "rs", "summary": [], "encrypted_content": "xx"},
        {"type": "function_call_output", "call_id": "c1", "output": "r1"},
        {
            "type": "custom_tool_call_output",
            "call_id": "c2",
            "output": [{"type": "input_text", "text": "r2"}],
        },
        {"type": "message", "role": "system", "content": "late"},
        {"type": "item_reference", "id": "x"},
    ]
    chat, dropped, _ = to_chat(_body(input=items))
    m = chat["messages"]
    assert m[0] == {"role": "system", "content": "dev"}
    assert m[1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AA", "detail": "low"},
    }
    assert m[2]["role"] == "assistant" and m[2]["content"] == "ok"
    assert [c["id"] for c in m[2]["tool_calls"]] == ["c1", "c2"]
    assert m[2]["tool_calls"][1]["function"] == {"name": "apply_patch", "arguments": '{"input":"P"}'}
    assert m[3] == {"role": "tool", "tool_call_id": "c1", "content": "r1"}
    assert m[4] == {"role": "tool", "tool_call_id": "c2", "content": "r2"}
    assert m[5] == {"role": "system", "content": "late"}
    assert dropped == ["input.item_reference", "input.reasoning"]


def test_tools_choice_and_formats() -> None:
    tools = [
        {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True},
        {
            "type": "custom",
            "name": "apply_patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "G"},
        },
        {"type": "web_search"},
        {"type": "local_shell"},
    ]
    chat, dropped, custom = to_chat(
        _body(
            input="x",
            tools=tools,
            tool_choice={"type": "custom", "name": "apply_patch"},
            parallel_tool_calls=False,
            text={
                "format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}, "strict": True}
            },
            reasoning={"effort": "high"},
            include=["reasoning.encrypted_content"],
            prompt_cache_key="k",
            store=True,
            metadata={"project": "p"},
            previous_response_id="resp_1",
        )
    )
    assert custom == frozenset({"apply_patch"})
    assert [t["function"]["name"] for t in chat["tools"]] == ["f", "apply_patch"]
    assert chat["tools"][0]["function"]["strict"] is True
    assert chat["tools"][1]["function"]["parameters"]["required"] == ["input"]
    assert "G" in chat["tools"][1]["function"]["description"]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}
    assert chat["parallel_tool_calls"] is False
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": True},
    }
    assert dropped == [
        "include",
        "prompt_cache_key",
        "reasoning",
        "tools.custom.format",
        "tools.local_shell",
        "tools.web_search",
    ]


def test_tool_choice_and_parallel_calls_without_a_tool_to_carry_them_are_recorded() -> None:
    builtin = [{"type": "web_search"}]
    chat, dropped, _ = to_chat(
        _body(input="x", tools=builtin, tool_choice="required", parallel_tool_calls=False)
    )
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(chat)
    assert dropped == ["parallel_tool_calls", "tool_choice", "tools.web_search"]
    chat, dropped, _ = to_chat(_body(input="x", tool_choice={"type": "function", "name": "f"}))
    assert "tool_choice" not in chat and dropped == ["tool_choice"]
    chat, dropped, _ = to_chat(_body(input="x", tools=builtin, tool_choice="none"))
    assert chat["tool_choice"] == "none" and dropped == ["tools.web_search"]  # carried: no tool is called


@pytest.mark.parametrize("key", ["background", "conversation", "prompt"])
def test_refused(key: str) -> None:
    with pytest.raises(UpstreamRefused) as err:
        to_chat(_body(input="x", **{key: True if key == "background" else {"id": "c"}}))
    assert err.value.status == 400 and err.value.param == key


@pytest.mark.parametrize("name", ["t" * 65, "mcp.tool"])
def test_a_tool_name_chat_cannot_take_is_refused_naming_it(name: str) -> None:
    fine = {"type": "function", "name": "f" * 64, "parameters": {"type": "object"}}
    to_chat(_body(input="x", tools=[fine]))  # 64 characters: taken
    for kind in ("function", "custom"):
        with pytest.raises(UpstreamRefused) as err:
            to_chat(_body(input="x", tools=[fine, {"type": kind, "name": name}]))
        assert err.value.status == 400 and err.value.param == "tools[1].name"


def test_an_input_of_nothing_the_deployment_can_take_is_refused_naming_it() -> None:
    reasoning = {"type": "reasoning", "summary": [], "encrypted_content": "x"}
    with pytest.raises(UpstreamRefused) as err:
        to_chat(_body(input=[reasoning]))  # dropped: no message would be left to send
    assert err.value.status == 400 and err.value.param == "input"


def test_output_from_chat() -> None:
    msg = {
        "role": "assistant",
        "content": "hi",
        "reasoning_content": "think",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
            {
                "id": "c2",
                "type": "function",
                "function": {"name": "apply_patch", "arguments": '{"input":"P"}'},
            },
        ],
    }
    out, finish = output_from_chat(
        {"choices": [{"message": msg, "finish_reason": "tool_calls"}]}, "resp_x", frozenset({"apply_patch"})
    )
    assert finish == "tool_calls"
    assert [o["type"] for o in out] == ["reasoning", "message", "function_call", "custom_tool_call"]
    assert out[0]["summary"][0]["text"] == "think"
    assert out[1]["content"][0] == {"type": "output_text", "text": "hi", "annotations": [], "logprobs": []}
    assert (out[2]["call_id"], out[2]["arguments"]) == ("c1", '{"a":1}')
    assert (out[3]["call_id"], out[3]["input"]) == ("c2", "P")
    resp = response_object(_body(input="x"), Turn("resp_x", {}), "m", out, Usage(10, 4, 2), "length")
    assert resp["status"] == "incomplete" and resp["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [o.get("status") for o in out] == [None, "completed", "completed", "completed"]
    cut, _ = output_from_chat(
        {"choices": [{"message": msg, "finish_reason": "length"}]}, "resp_x", frozenset()
    )
    assert [o.get("status") for o in cut] == [None, "completed", "completed", "incomplete"]
    text = {"role": "assistant", "content": "hi"}
    cut, _ = output_from_chat(
        {"choices": [{"message": text, "finish_reason": "length"}]}, "resp_x", frozenset()
    )
    assert [(o["type"], o["status"]) for o in cut] == [("message", "incomplete")]
    assert resp["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 14,
    }


def _chunks(*deltas: dict[str, Any], finish: str = "stop") -> bytes:
    out = b""
    for d in deltas:
        out += (
            b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": d, "finish_reason": None}]}) + b"\n\n"
        )
    out += (
        b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}) + b"\n\n"
    )
    out += (
        b"data: "
        + orjson.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}})
        + b"\n\n"
    )
    return out + b"data: [DONE]\n\n"


def _events(raw: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: ")]


def _stream(
    raw: bytes, custom: frozenset[str] = frozenset()
) -> tuple[list[dict[str, Any]], Turn, FromChatStream]:
    turn = Turn("resp_t", {})
    turn.custom = custom
    tr = FromChatStream(OpenAIStream(True), turn, _body(input="x"), "m", 1)
    out = b"".join(tr.feed(raw[i : i + 7]) for i in range(0, len(raw), 7))  # split anywhere
    return _events(out), turn, tr


def test_stream_text_and_reasoning() -> None:
    evs, turn, tr = _stream(_chunks({"reasoning_content": "hm"}, {"content": "Hel"}, {"content": "lo"}))
    assert [e["type"] for e in evs] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in evs] == list(range(len(evs)))
    done = evs[-1]["response"]
    assert done["status"] == "completed" and done["usage"]["total_tokens"] == 8
    assert done["output"][1]["content"][0]["text"] == "Hello"
    assert turn.response == done and tr.done and tr.usage == Usage(5, 3, 0)


def test_stream_function_and_custom_calls() -> None:
    deltas = [
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]},
        {
            "tool_calls": [
                {"index": 1, "id": "c2", "function": {"name": "apply_patch", "arguments": '{"input":'}}
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": '"P\\n"}'}}]},
    ]
    evs, _, _ = _stream(_chunks(*deltas, finish="tool_calls"), frozenset({"apply_patch"}))
    args = [e["delta"] for e in evs if e["type"] == "response.function_call_arguments.delta"]
    assert args == ['{"a"', ":1}"]
    (fdone,) = [e for e in evs if e["type"] == "response.function_call_arguments.done"]
    assert fdone["arguments"] == '{"a":1}' and fdone["name"] == "f"
    (cdone,) = [e for e in evs if e["type"] == "response.custom_tool_call_input.done"]
    assert cdone["input"] == "P\n"
    items = [e["item"] for e in evs if e["type"] == "response.output_item.done"]
    assert [(i["type"], i["call_id"]) for i in items] == [("function_call", "c1"), ("custom_tool_call", "c2")]
    assert evs[-1]["response"]["output"] == items


def test_stream_upstream_error_is_response_failed() -> None:
    raw = _chunks({"content": "a"}).split(b"data: [DONE]")[0].split(b"\n\n")[0] + b"\n\n"
    raw += b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n'
    evs, turn, tr = _stream(raw)
    assert evs[-1]["type"] == "response.failed" and evs[-1]["response"]["error"]["message"] == "boom"
    assert tr.error is not None and turn.response is None
    assert "response.completed" not in [e["type"] for e in evs]


def test_stream_ends_at_response_failed() -> None:
    """Nothing follows `response.failed`, even the rest of the read that brought the error."""
    raw = _chunks({"content": "a"}).split(b"data: [DONE]")[0].split(b"\n\n")[0] + b"\n\n"
    raw += b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n'
    raw += _chunks({"content": "b"})
    turn = Turn("resp_t", {})
    tr = FromChatStream(OpenAIStream(True), turn, _body(input="x"), "m", 1)
    evs = _events(tr.feed(raw))
    assert evs[-1]["type"] == "response.failed" and turn.response is None
    assert [e["sequence_number"] for e in evs] == list(range(len(evs)))
    assert tr.feed(_chunks({"content": "c"})) == b""


def test_stream_error_events_continue_the_numbering() -> None:
    """The `error` event that ends a broken stream (`stream_error`) or one with an event that is not
    JSON carries the sequence number after the last event sent."""
    evs, _, tr = _stream(_chunks({"content": "a"}).split(b"data: [DONE]")[0])
    (err,) = _events(RESPONSES.stream_error("broke", "stream_error", tr))
    assert err == {
        "type": "error",
        "code": "stream_error",
        "message": "broke",
        "param": None,
        "sequence_number": len(evs),
    }
    native = NativeStream(Turn("resp_n", {}))
    up = b"".join(
        b"data: " + orjson.dumps({"type": t, "sequence_number": n}) + b"\n\n"
        for n, t in enumerate(["response.created", "response.in_progress"])
    )
    native.feed(up)
    assert _events(RESPONSES.stream_error("broke", "stream_error", native))[0]["sequence_number"] == 2
    bad = NativeStream(Turn("resp_b", {}))
    out = _events(bad.feed(up + b"data: {oops}\n\n"))
    assert [e["sequence_number"] for e in out] == [0, 1, 2] and out[-1]["type"] == "error"


def test_incomplete_stream() -> None:
    """A stream cut at the token limit: its last item, as its done event and in the final response,
    is `incomplete`; the items before it are `completed`; a replay of it says the same."""
    evs, turn, _ = _stream(_chunks({"content": "a"}, finish="length"))
    assert evs[-1]["type"] == "response.incomplete"
    assert evs[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    (done,) = [e["item"] for e in evs if e["type"] == "response.output_item.done"]
    assert done["status"] == "incomplete" and evs[-1]["response"]["output"] == [done]
    assert turn.response is not None
    replayed = _events(b"".join(response_to_sse(turn.response)))
    assert [e["item"] for e in replayed if e["type"] == "response.output_item.done"] == [done]
    call = {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]}
    evs, _, _ = _stream(_chunks({"content": "a"}, call, finish="length"))
    items = [e["item"] for e in evs if e["type"] == "response.output_item.done"]
    assert [(i["type"], i["status"]) for i in items] == [
        ("message", "completed"),
        ("function_call", "incomplete"),
    ]
    assert evs[-1]["response"]["output"] == items


def test_replay_and_assemble_round_trip() -> None:
    _, turn, _ = _stream(
        _chunks(
            {"content": "Hi"},
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]},
        )
    )
    assert turn.response is not None
    replay = b"".join(response_to_sse(turn.response))
    assert sse_to_response(replay) == turn.response
    types = [e["type"] for e in _events(replay)]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_text.delta" in types and "response.function_call_arguments.done" in types
    assert sse_to_response(b'event: error\ndata: {"type": "error", "message": "x"}\n\n') is None


def test_native_stream_reads_usage_and_end() -> None:
    turn = Turn("resp_n", {})
    tr = NativeStream(turn)
    done = {
        "id": "resp_up",
        "status": "completed",
        "output": [],
        "usage": {"input_tokens": 4, "output_tokens": 2, "input_tokens_details": {"cached_tokens": 1}},
    }
    raw = (
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"x"}\n\n'
        b"event: response.completed\ndata: "
        + orjson.dumps({"type": "response.completed", "response": done})
        + b"\n\n"
    )
    assert tr.feed(raw[:20]) == b""
    assert tr.feed(raw[20:]) == raw
    assert tr.done and tr.usage == Usage(4, 2, 1) and turn.response == done and tr.completion_text() == "x"
    bad = NativeStream(Turn("resp_b", {}))
    out = bad.feed(b"data: {oops}\n\n")
    assert bad.error is not None and b"event: error" in out
    failed = NativeStream(Turn("resp_f", {}))
    failed.feed(
        b'data: {"type":"response.failed","response":{"error":{"code":"server_error","message":"no"}}}\n\n'
    )
    assert failed.error is not None and failed.error.message == "no" and not failed.done


def test_the_event_templates_write_what_framing_their_objects_writes() -> None:
    from architect.gateway.apis.responses_events import Events, text_delta
    from architect.gateway.apis.responses_translate import message_item

    fast, general = Events(), Events()
    a: list[bytes] = []
    b: list[bytes] = []
    iid = "msg_1_0"
    at = {"item_id": iid, "output_index": 3, "content_index": 0}
    for text in ("Hello", ' "quoted" \u00e9\n', ""):
        ij, tj = orjson.dumps(iid), orjson.dumps(text)
        fast.message_added(a, ij, 3)
        item = {"type": "message", "status": "in_progress", "role": "assistant", "content": [], "id": iid}
        general.add(b, {"type": "response.output_item.added", "output_index": 3, "item": item})
        fast.open_text(a, ij, 3)
        part = {"type": "output_text", "text": "", "annotations": []}
        general.add(b, {"type": "response.content_part.added", **at, "part": part})
        fast.text_delta(a, ij, 3, text)
        general.add(b, text_delta(iid, 3, text))
        fast.close_text(a, ij, 3, tj)
        general.add(b, {"type": "response.output_text.done", **at, "text": text, "logprobs": []})
        part = {"type": "output_text", "text": text, "annotations": []}
        general.add(b, {"type": "response.content_part.done", **at, "part": part})
        for status in ("completed", "incomplete"):
            fast.message_done(a, ij, 3, tj, status)
            item = message_item(iid, text, status)
            general.add(b, {"type": "response.output_item.done", "output_index": 3, "item": item})
        response = {"id": "resp_1", "output": [message_item(iid, text)]}
        fast.response(a, "response.completed", orjson.dumps(response))
        general.add(b, {"type": "response.completed", "response": response})
    assert b"".join(a) == b"".join(b) and fast.seq == general.seq == 24


_CHAT_STREAMS = [
    _chunks({"role": "assistant", "content": ""}, {"content": "Hel"}, {"content": 'lo "q" \u00e9\n'}),
    _chunks({"reasoning_content": "hm"}, {"reasoning": " more"}, {"content": "Hi"}, finish="length"),
    _chunks(
        {"content": "a"},
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
        {
            "tool_calls": [
                {"index": 1, "id": "c2", "function": {"name": "apply_patch", "arguments": '{"input":"P"}'}}
            ]
        },
        {"content": "b"},
        finish="tool_calls",
    ),
    _chunks({"content": "a"}, {"tool_calls": "odd"}, {"content": 5}, {"reasoning_content": ["x"]}),
    b'data: {"choices":[{"delta":{"content":"x, y"}}]}\n\ndata: {"choices":[1,{"delta":null}]}\n\n'
    b'data: {"choices":null}\n\ndata: {"error":{"message":"boom"}}\n\n',
    b': a comment\n\ndata: {"choices":[{"delta":{"content":"x"}}]}\r\n\r\ndata: [DONE]\n\n',
]


_CHAT_STREAMS += [
    b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n: keep-alive\n\n'
    b'data: {"choices":[{"delta":{"content":"y"}}]}\n\ndata: [DONE]\n\n',
    b'data: {"choices":[{"delta":{"content":"x"}}]}\n\nevent: e\ndata: {"choices":[]}\n\ndata: [DONE]\n\n',
    b'data: {"choices":[{"delta":{"content":"x"}}]}\n\ndata: {"error":{"message":"boom","code":"c"}}\n\n'
    b'data: {"choices":[{"delta":{"content":"z"}}]}\n\ndata: [DONE]\n\n',
    b'data: {"choices":[{"delta":{"content":"x"}}]}\n\ndata: {oops}\n\ndata: [DONE]\n\n',
    b'data: {"choices":[{"delta":{"content":"x"}}]}\n\ndata: {"a":1},{"b":2}\n\ndata: [DONE]\n\n',
    b'data: {"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\ndata: [DONE]\n\n',
    b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n',  # no [DONE]
]


class _Wrapped:
    """An `OpenAIStream` that is not one to `FromChatStream`: it takes the path of other adapters."""

    def __init__(self) -> None:
        self.s = OpenAIStream(True)
        self.feed, self.completion_text = self.s.feed, self.s.completion_text

    usage = property(lambda self: self.s.usage)
    done = property(lambda self: self.s.done)
    error = property(lambda self: self.s.error)


@pytest.mark.parametrize("raw", _CHAT_STREAMS)
@pytest.mark.parametrize("step", [7, 10_000])
def test_the_upstream_read_directly_through_the_adapter_or_event_by_event_gives_the_same(
    raw: bytes, step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three paths, one outcome: a chat stream read by `FromChatStream` itself (an OpenAI-compatible
    upstream), through the adapter's translator with its chunks decoded at once, and event by event."""
    from architect.gateway.apis import responses_stream

    def run(inner: Any) -> tuple[Any, ...]:
        turn = Turn("resp_t", {})
        turn.custom = frozenset({"apply_patch"})
        tr = FromChatStream(inner, turn, _body(input="x"), "m", 1)
        out = b"".join(tr.feed(raw[i : i + step]) for i in range(0, len(raw), step))
        error = tr.error.message if tr.error is not None else None
        return out, turn.response, tr.usage, tr.done, error, tr.completion_text()

    direct = run(OpenAIStream(True))
    assert run(_Wrapped()) == direct
    monkeypatch.setattr(responses_stream, "_decode", lambda raw: None)
    assert run(_Wrapped()) == direct


_OLD, _NEW = "0123456789abcdef012345", "fedcba9876543210fedcba"


def test_reissue_makes_a_cached_response_the_new_calls_own() -> None:
    chat = {
        "choices": [
            {
                "message": {
                    "content": "hi",
                    "reasoning_content": "think",
                    "tool_calls": [
                        {"function": {"name": "f", "arguments": "{}"}},
                        {"id": "call_up", "function": {"name": "g", "arguments": "{}"}},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    old = Turn(f"resp_{_OLD}", {"previous_response_id": "resp_a", "metadata": {"k": "v"}, "user": "u"})
    output, finish = output_from_chat(chat, old.response_id, frozenset())
    cached = orjson.loads(orjson.dumps(response_object({}, old, "m", output, None, finish, created_at=1)))
    body = {"store": False, "metadata": {"mine": "1"}}
    new = Turn(f"resp_{_NEW}", {"previous_response_id": "resp_b", **body})
    reissue(cached, new, body)
    assert cached["id"] == f"resp_{_NEW}" and _OLD not in orjson.dumps(cached).decode()
    assert [(i.get("id"), i.get("call_id")) for i in cached["output"]] == [
        (f"rs_{_NEW}", None),
        (f"msg_{_NEW}", None),
        (f"fc_{_NEW}_0", f"call_{_NEW}_0"),
        (f"fc_{_NEW}_1", "call_up"),  # the upstream's own call id: kept
    ]
    assert (cached["previous_response_id"], cached["store"], cached["metadata"]) == (
        "resp_b",
        False,
        {"mine": "1"},
    )
    assert cached["user"] is None and cached["created_at"] > 1
    assert cached["output"][1]["content"][0]["text"] == "hi"


def test_reissue_keeps_a_providers_item_ids() -> None:
    native = {"id": "resp_68ab12", "output": [{"type": "message", "id": "msg_68ab12", "content": []}]}
    reissue(native, Turn(f"resp_{_NEW}", {}), {})
    assert native["id"] == f"resp_{_NEW}" and native["output"][0]["id"] == "msg_68ab12"
    assert native["store"] is True and native["previous_response_id"] is None
