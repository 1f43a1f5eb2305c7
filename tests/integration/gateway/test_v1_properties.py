"""`/v1/chat/completions` bodies as properties, against a stub upstream (a real HTTP server on 127.0.0.1)
that always answers 200 with a valid completion, or a valid stream for `stream: true`.

The strategies mirror the rules of `architect.gateway.validation`: valid bodies are drawn from the
reference shapes (every role, content part, tool and field, nulls for absent fields, provider extensions),
and an invalid body is a valid one with exactly one rule broken, which names the JSON path it expects.
Every invalid body gets a 400 in exactly the OpenAI error format naming that path, and nothing goes
upstream; every valid one parses as the openai SDK's `ChatCompletion`, or streamed as its
`ChatCompletionChunk`s ending with `[DONE]`. Derandomized and bounded; the app runs in process (httpx's
ASGITransport). A few cases then go through the real SDK against a LiveServer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from architect.app import create_app
from architect.runtime import Runtime
from architect.store import Store
from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer

Draw = Callable[[st.SearchStrategy[Any]], Any]

# The rules, restated here rather than imported: the test is their independent statement.
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")
MAX_TOKENS_LIMIT = 2**31 - 1

# -- valid values ------------------------------------------------------------------------------------
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)  # no lone surrogates: not UTF-8
NAME = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)
INT64 = st.integers(-(2**63), 2**63 - 1)
FLOAT = st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(
    st.none() | st.booleans() | INT64 | FLOAT | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
SCHEMA = st.dictionaries(TEXT, JSON, max_size=3)


def _obj(required: dict[str, Any], **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {k: v if isinstance(v, st.SearchStrategy) else st.just(v) for k, v in required.items()},
        optional=optional,
    )


PARTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "text": _obj({"type": "text", "text": TEXT}, cache_control=st.just({"type": "ephemeral"})),
    "image_url": _obj(
        {
            "type": "image_url",
            "image_url": _obj({"url": TEXT}, detail=st.sampled_from(["auto", "low", "high"])),
        }
    ),
    "input_audio": _obj(
        {
            "type": "input_audio",
            "input_audio": _obj({"data": TEXT, "format": st.sampled_from(["wav", "mp3"])}),
        }
    ),
    "file": _obj({"type": "file", "file": _obj({}, file_id=TEXT, file_data=TEXT, filename=TEXT)}),
    "refusal": _obj({"type": "refusal", "refusal": TEXT}),
}
PART = st.one_of(*PARTS.values())
CONTENT = TEXT | st.lists(PART, min_size=1, max_size=3)
TOOL_CALL = _obj(
    {"id": TEXT, "type": "function", "function": _obj({"name": TEXT, "arguments": TEXT})}
) | _obj({"id": TEXT, "type": "custom", "custom": _obj({"name": TEXT, "input": TEXT})})
FUNCTION_CALL = _obj({"name": TEXT, "arguments": TEXT})

MESSAGE = st.one_of(
    _obj({"role": st.sampled_from(["system", "developer", "user"]), "content": CONTENT}, name=TEXT),
    _obj({"role": "assistant", "content": CONTENT}, tool_calls=st.lists(TOOL_CALL, max_size=2), refusal=TEXT),
    _obj({"role": "assistant", "tool_calls": st.lists(TOOL_CALL, min_size=1, max_size=2)}, content=st.none()),
    _obj({"role": "assistant", "function_call": FUNCTION_CALL}, content=st.none()),
    _obj({"role": "tool", "content": CONTENT, "tool_call_id": TEXT}),
    _obj({"role": "function", "name": TEXT, "content": TEXT | st.none()}),
)

FUNCTION = _obj(
    {"name": NAME}, description=TEXT, parameters=SCHEMA | st.none(), strict=st.booleans() | st.none()
)
TOOL = _obj({"type": "function", "function": FUNCTION}) | _obj(
    {"type": "custom", "custom": _obj({"name": TEXT}, description=TEXT)}
)
TOOL_CHOICE = st.one_of(
    st.sampled_from(["none", "auto", "required"]),
    _obj({"type": "function", "function": _obj({"name": TEXT})}),
    _obj({"type": "custom", "custom": _obj({"name": TEXT})}),
    _obj(
        {
            "type": "allowed_tools",
            "allowed_tools": _obj(
                {"mode": st.sampled_from(["auto", "required"]), "tools": st.lists(SCHEMA, max_size=2)}
            ),
        }
    ),
)
RESPONSE_FORMAT = st.one_of(
    _obj({"type": st.sampled_from(["text", "json_object"])}),
    _obj({"type": "json_schema", "json_schema": _obj({"name": NAME}, schema=SCHEMA, strict=st.booleans())}),
)


def _number(lo: float, hi: float) -> st.SearchStrategy[float | int]:
    return st.floats(lo, hi) | st.integers(int(lo), int(hi))


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "stream": st.booleans(),
    "stream_options": _obj({}, include_usage=st.booleans(), include_obfuscation=st.booleans()),
    "tools": st.lists(TOOL, max_size=3),
    "tool_choice": TOOL_CHOICE,
    "parallel_tool_calls": st.booleans(),
    "response_format": RESPONSE_FORMAT,
    "n": st.integers(1, 128),
    "stop": TEXT | st.lists(TEXT, max_size=4),
    "logit_bias": st.dictionaries(
        st.from_regex(r"[0-9]{1,6}", fullmatch=True), _number(-100, 100), max_size=3
    ),
    "user": TEXT,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_tokens": st.integers(1, MAX_TOKENS_LIMIT),
    "max_completion_tokens": st.integers(1, MAX_TOKENS_LIMIT),
    "seed": INT64,
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "logprobs": st.booleans(),
    "top_logprobs": st.integers(0, 20),
    # provider extensions: anything, passed through
    "top_k": JSON,
    "reasoning_effort": JSON,
    "vendor_extra": JSON,
}
VALID = _obj(
    {
        "model": "m",
        "messages": st.lists(MESSAGE, min_size=1, max_size=4),
        "stream": st.sampled_from([False, True, None]),  # drawn each time: streams are a third
    },
    **{k: v | st.none() for k, v in FIELDS.items() if k != "stream"},  # null stands for an absent field
)

# -- breaking exactly one rule -----------------------------------------------------------------------
NOT_STR = st.booleans() | INT64 | FLOAT | st.lists(JSON, max_size=2) | st.dictionaries(TEXT, JSON, max_size=2)
NOT_OBJECT = st.booleans() | INT64 | FLOAT | TEXT | st.lists(JSON, max_size=2)
NOT_BOOL = INT64 | FLOAT | TEXT | st.lists(JSON, max_size=2) | st.dictionaries(TEXT, JSON, max_size=2)
NOT_NUMBER = st.booleans() | TEXT | st.lists(JSON, max_size=2) | st.dictionaries(TEXT, JSON, max_size=2)
NOT_INT = NOT_NUMBER | FLOAT
NOT_LIST = st.booleans() | INT64 | FLOAT | TEXT | st.dictionaries(TEXT, JSON, max_size=2)


def _outside(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(max_value=lo, exclude_max=True, allow_infinity=False) | st.floats(
        min_value=hi, exclude_min=True, allow_infinity=False
    )


def _int_outside(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(-(2**63), lo - 1) | st.integers(hi + 1, 2**63 - 1)


def _insert(draw: Draw, items: list[Any], bad: Any) -> int:
    """Put `bad` somewhere in `items`; its index."""
    at = draw(st.integers(0, len(items)))
    items.insert(at, bad)
    return at


def _bad_message(kind: str) -> Callable[[Draw, dict[str, Any]], str]:
    return lambda draw, body: _break_message(draw, body["messages"], kind)


def _break_message(draw: Draw, msgs: list[Any], kind: str) -> str:
    if kind == "not_object":
        i = _insert(draw, msgs, draw(NOT_OBJECT))
        return f"messages[{i}]"
    if kind == "role":
        m = draw(MESSAGE)
        i = _insert(draw, msgs, m)
        m["role"] = draw(TEXT.filter(lambda r: r not in ROLES) | NOT_STR | st.none())
        return f"messages[{i}].role"
    if kind == "content":
        m = draw(
            _obj({"role": st.sampled_from(["system", "developer", "user", "tool"]), "tool_call_id": TEXT})
        )
        m["content"] = draw(
            NOT_STR.filter(lambda c: c != [] and not isinstance(c, list)) | st.just([]) | st.none()
        )
        i = _insert(draw, msgs, m)
        return f"messages[{i}].content"
    if kind == "part":
        parts = draw(st.lists(PART, max_size=2))
        which = draw(st.sampled_from(["not_object", "type", *PARTS]))
        if which == "not_object":
            j = _insert(draw, parts, draw(NOT_OBJECT))
            suffix = ""
        elif which == "type":
            part = {"type": draw(TEXT.filter(lambda t: t not in PART_TYPES) | NOT_STR | st.none())}
            j = _insert(draw, parts, part)
            suffix = ".type"
        else:  # a known part with its required value broken
            field, inner = {
                "text": ("text", None),
                "image_url": ("image_url", "url"),
                "input_audio": ("input_audio", draw(st.sampled_from(["data", "format"]))),
                "file": ("file", None),
                "refusal": ("refusal", None),
            }[which]
            part = draw(PARTS[which])
            if inner is not None:
                part[field][inner] = draw(NOT_STR | st.none())
                suffix = f".{field}.{inner}"
            elif which == "file":
                part["file"] = draw(NOT_OBJECT | st.none())
                suffix = ".file"
            else:
                part[field] = draw(NOT_STR | st.none())
                suffix = f".{field}"
            j = _insert(draw, parts, part)
        i = _insert(draw, msgs, {"role": "user", "content": parts})
        return f"messages[{i}].content[{j}]{suffix}"
    if kind == "tool_call_id":
        m = {"role": "tool", "content": draw(CONTENT)}
        bad = draw(NOT_STR | st.none())
        if bad is not None:
            m["tool_call_id"] = bad
        i = _insert(draw, msgs, m)
        return f"messages[{i}].tool_call_id"
    # an assistant's tool call
    calls = draw(st.lists(TOOL_CALL, max_size=2))
    call = draw(TOOL_CALL)
    what = draw(st.sampled_from(["id", "type", "function", "arguments", "not_object"]))
    if what == "not_object":
        call, suffix = draw(NOT_OBJECT), ""
    elif what == "id":
        call["id"], suffix = draw(NOT_STR | st.none()), ".id"
    elif what == "type":
        call["type"], suffix = (
            draw(TEXT.filter(lambda t: t not in ("function", "custom")) | st.none()),
            ".type",
        )
    elif what == "function":
        call = {"id": "c", "type": "function", "function": draw(NOT_OBJECT | st.none())}
        suffix = ".function"
    else:
        call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": draw(NOT_STR)}}
        suffix = ".function.arguments"
    k = _insert(draw, calls, call)
    i = _insert(draw, msgs, {"role": "assistant", "tool_calls": calls})
    return f"messages[{i}].tool_calls[{k}]{suffix}"


def _bad_tools(draw: Draw, body: dict[str, Any]) -> str:
    if draw(st.booleans()):
        body["tools"] = draw(NOT_LIST)
        return "tools"
    tools = draw(st.lists(TOOL, max_size=2))
    what = draw(st.sampled_from(["not_object", "type", "function", "name", "parameters", "strict"]))
    tool: Any
    if what == "not_object":
        tool, suffix = draw(NOT_OBJECT), ""
    elif what == "type":
        tool, suffix = (
            {"type": draw(TEXT.filter(lambda t: t not in ("function", "custom")) | NOT_STR)},
            ".type",
        )
    elif what == "function":
        tool, suffix = {"type": "function", "function": draw(NOT_OBJECT | st.none())}, ".function"
    else:
        fn = draw(FUNCTION)
        fn[what] = draw(
            {
                "name": TEXT.filter(
                    lambda n: (
                        not n
                        or len(n) > 64
                        or not n.replace("_", "a").replace("-", "a").isascii()
                        or not n.replace("_", "a").replace("-", "a").isalnum()
                    )
                )
                | NOT_STR
                | st.none(),
                "parameters": NOT_OBJECT,
                "strict": NOT_BOOL,
            }[what]
        )
        tool, suffix = {"type": "function", "function": fn}, f".function.{what}"
    k = _insert(draw, tools, tool)
    body["tools"] = tools
    return f"tools[{k}]{suffix}"


def _bad_tool_choice(draw: Draw, body: dict[str, Any]) -> str:
    what = draw(st.sampled_from(["string", "kind", "function", "name", "type"]))
    if what == "string":
        body["tool_choice"] = draw(TEXT.filter(lambda c: c not in ("none", "auto", "required")))
        return "tool_choice"
    if what == "kind":
        body["tool_choice"] = draw(st.booleans() | INT64 | FLOAT | st.lists(JSON, max_size=2))
        return "tool_choice"
    if what == "function":
        body["tool_choice"] = {"type": "function", "function": draw(NOT_OBJECT | st.none())}
        return "tool_choice.function"
    if what == "name":
        body["tool_choice"] = {"type": "function", "function": {"name": draw(NOT_STR | st.none())}}
        return "tool_choice.function.name"
    body["tool_choice"] = {
        "type": draw(TEXT.filter(lambda t: t not in ("function", "custom", "allowed_tools")))
    }
    return "tool_choice.type"


def _bad_response_format(draw: Draw, body: dict[str, Any]) -> str:
    what = draw(st.sampled_from(["object", "type", "schema_name"]))
    if what == "object":
        body["response_format"] = draw(NOT_OBJECT)
        return "response_format"
    if what == "type":
        body["response_format"] = {
            "type": draw(
                TEXT.filter(lambda t: t not in ("text", "json_object", "json_schema")) | NOT_STR | st.none()
            )
        }
        return "response_format.type"
    body["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": draw(st.sampled_from(["", "a b", "a.b", "x" * 65]) | NOT_STR)},
    }
    return "response_format.json_schema.name"


def _bad_stop(draw: Draw, body: dict[str, Any]) -> str:
    what = draw(st.sampled_from(["kind", "too_many", "item"]))
    if what == "kind":
        body["stop"] = draw(st.booleans() | INT64 | FLOAT | st.dictionaries(TEXT, JSON, max_size=2))
        return "stop"
    if what == "too_many":
        body["stop"] = draw(st.lists(TEXT, min_size=5, max_size=8))
        return "stop"
    stop = draw(st.lists(TEXT, max_size=3))
    k = _insert(draw, stop, draw(NOT_STR))
    body["stop"] = stop
    return f"stop[{k}]"


def _bad_logit_bias(draw: Draw, body: dict[str, Any]) -> str:
    if draw(st.booleans()):
        body["logit_bias"] = draw(NOT_OBJECT)
        return "logit_bias"
    bias = draw(st.dictionaries(st.from_regex(r"[0-9]{1,6}", fullmatch=True), _number(-100, 100), max_size=3))
    key = draw(st.from_regex(r"[0-9]{1,6}", fullmatch=True).filter(lambda k: k not in bias))
    bias[key] = draw(_outside(-100, 100) | NOT_NUMBER)
    body["logit_bias"] = bias
    return f"logit_bias.{key}"


def _scalar(name: str, bad: st.SearchStrategy[Any]) -> Callable[[Draw, dict[str, Any]], str]:
    def mutate(draw: Draw, body: dict[str, Any]) -> str:
        body[name] = draw(bad)
        return name

    return mutate


def _bad_stream_options(draw: Draw, body: dict[str, Any]) -> str:
    if draw(st.booleans()):
        body["stream_options"] = draw(NOT_OBJECT)
        return "stream_options"
    body["stream_options"] = {"include_usage": draw(NOT_BOOL)}
    return "stream_options.include_usage"


def _bad_messages(draw: Draw, body: dict[str, Any]) -> str:
    body["messages"] = draw(st.just([]) | NOT_LIST | st.none())
    return "messages"


MUTATIONS: dict[str, Callable[[Draw, dict[str, Any]], str]] = {
    "messages": _bad_messages,
    "message": _bad_message("not_object"),
    "role": _bad_message("role"),
    "content": _bad_message("content"),
    "content part": _bad_message("part"),
    "tool_call_id": _bad_message("tool_call_id"),
    "tool_calls": _bad_message("tool_call"),
    "tools": _bad_tools,
    "tool_choice": _bad_tool_choice,
    "response_format": _bad_response_format,
    "stop": _bad_stop,
    "logit_bias": _bad_logit_bias,
    "stream_options": _bad_stream_options,
    "stream": _scalar("stream", NOT_BOOL),
    "parallel_tool_calls": _scalar("parallel_tool_calls", NOT_BOOL),
    "logprobs": _scalar("logprobs", NOT_BOOL),
    "n": _scalar("n", _int_outside(1, 128) | NOT_INT),
    "top_logprobs": _scalar("top_logprobs", _int_outside(0, 20) | NOT_INT),
    "max_tokens": _scalar("max_tokens", _int_outside(1, MAX_TOKENS_LIMIT) | NOT_INT),
    "max_completion_tokens": _scalar("max_completion_tokens", _int_outside(1, MAX_TOKENS_LIMIT) | NOT_INT),
    "seed": _scalar("seed", NOT_INT),
    "user": _scalar("user", NOT_STR),
    "temperature": _scalar("temperature", _outside(0, 2) | NOT_NUMBER),
    "top_p": _scalar("top_p", _outside(0, 1) | NOT_NUMBER),
    "presence_penalty": _scalar("presence_penalty", _outside(-2, 2) | NOT_NUMBER),
    "frequency_penalty": _scalar("frequency_penalty", _outside(-2, 2) | NOT_NUMBER),
}


@st.composite
def invalid_bodies(draw: Draw, rule: str) -> tuple[dict[str, Any], str]:
    """A valid body with `rule` broken, and the JSON path the refusal must name."""
    body = draw(VALID)
    return body, MUTATIONS[rule](draw, body)


# -- the app in process, the stub upstream over HTTP -------------------------------------------------
class Gateway:
    """The gateway app on its own event loop, driven by httpx through ASGI."""

    def __init__(self, upstream: StubServer) -> None:
        self.runtime = Runtime(make_config(stub_config(upstream.url)), Store.memory())
        self.app = create_app(self.runtime)
        self.runner = asyncio.Runner()
        self.runner.run(self.runtime.start())
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw")

    def post(self, body: dict[str, Any]) -> httpx.Response:
        return self.runner.run(self.client.post("/v1/chat/completions", content=orjson.dumps(body)))

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.run(self.runtime.stop())
        self.runner.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[StubServer]:
    with StubServer() as s:
        yield s


@pytest.fixture(scope="module")
def gateway(upstream: StubServer) -> Iterator[Gateway]:
    gw = Gateway(upstream)
    yield gw
    gw.close()


def _settings(examples: int) -> settings:
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=examples,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@pytest.mark.parametrize("rule", list(MUTATIONS))
def test_every_invalid_body_gets_a_400_naming_the_path(
    gateway: Gateway, upstream: StubServer, rule: str
) -> None:
    @_settings(12)
    @given(invalid_bodies(rule))
    def check(case: tuple[dict[str, Any], str]) -> None:
        body, param = case
        sent_before = len(upstream.requests)
        r = gateway.post(body)
        assert r.status_code == 400, r.text
        payload = r.json()
        assert list(payload) == ["error"] and set(payload["error"]) == {"message", "type", "param", "code"}
        err = payload["error"]
        assert err["param"] == param, (err, body)
        assert err["type"] == "invalid_request_error" and isinstance(err["message"], str)
        assert err["code"] in ("missing_required_parameter", "invalid_type", "invalid_value")
        assert len(upstream.requests) == sent_before  # nothing went upstream

    check()


def test_every_valid_body_gets_a_completion_the_sdk_parses(gateway: Gateway, upstream: StubServer) -> None:
    @_settings(150)
    @given(VALID)
    def check(body: dict[str, Any]) -> None:
        r = gateway.post(body)
        assert r.status_code == 200, r.text
        if not body.get("stream"):
            completion = ChatCompletion.model_validate(r.json())
            assert completion.choices[0].message.content == upstream.content
            return
        events = [e.removeprefix(b"data: ") for e in r.content.split(b"\n\n") if e]
        assert events[-1] == b"[DONE]"
        chunks = [ChatCompletionChunk.model_validate(orjson.loads(e)) for e in events[:-1]]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == upstream.content

    check()


# -- a few through the real SDK ------------------------------------------------------------------------
WIZARD = [{"role": "wizard", "content": "x"}]
MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"messages": WIZARD}, "messages[0].role"),
        ({"messages": [*MSG, {"role": "user", "content": {"text": "x"}}]}, "messages[1].content"),
        (
            {"messages": MSG, "tools": [{"type": "function", "function": {"name": "no spaces"}}]},
            "tools[0].function.name",
        ),
        ({"messages": MSG, "tool_choice": "sometimes"}, "tool_choice"),
        ({"messages": MSG, "response_format": 7}, "response_format"),
        ({"messages": MSG, "n": 1e9}, "n"),
        ({"messages": MSG, "stop": {"at": "."}}, "stop"),
        ({"messages": MSG, "logit_bias": "x"}, "logit_bias"),
        ({"messages": MSG, "user": 5}, "user"),
    ],
)
def test_the_sdk_gets_a_bad_request_naming_the_field(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer, kwargs: dict[str, Any], param: str
) -> None:
    with LiveServer(make_config(stub_config(stub.url))) as srv, pytest.raises(openai.BadRequestError) as ei:
        client_for(srv).chat.completions.create(model="m", **kwargs)
    assert ei.value.status_code == 400 and ei.value.param == param
    assert ei.value.type == "invalid_request_error" and ei.value.code in ("invalid_type", "invalid_value")
    assert stub.requests == []


def test_the_sdk_sends_every_reference_shape_and_extensions_reach_the_upstream(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer
) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages: Any = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21C"},
    ]
    with LiveServer(make_config(stub_config(stub.url))) as srv:
        c = client_for(srv)
        plain = c.chat.completions.create(
            model="m",
            messages=messages,
            tools=[tool],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "w", "schema": {"type": "object"}},
            },
            stop=["\n", "END"],
            logit_bias={"50256": -100},
            seed=7,
            n=1,
            user="u-1",
            temperature=0.5,
            max_completion_tokens=64,
            extra_body={"top_k": 5, "vendor": {"x": [1]}},
        )
        chunks = list(
            c.chat.completions.create(
                model="m",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                logprobs=False,
            )
        )
    assert plain.choices[0].message.content == stub.content
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == stub.content
    sent = stub.requests[0]["body"]
    assert sent["messages"] == messages and sent["tools"] == [tool]
    assert (sent["top_k"], sent["vendor"]) == (5, {"x": [1]})
