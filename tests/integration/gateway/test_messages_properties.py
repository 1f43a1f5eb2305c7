"""`/v1/messages` bodies as properties, translated to an OpenAI-compatible stub upstream (a real HTTP
server on 127.0.0.1 that always answers 200).

Valid bodies are drawn from the Messages shapes the translation carries (system as a string or
blocks; text, image, tool_use, tool_result with text and images, thinking blocks; tools, tool_choice,
stop_sequences, sampling fields, metadata); every one gets a message the `anthropic` SDK's types
parse, or streamed, an event sequence from `message_start` to `message_stop`. An invalid body is a
valid one with one rule broken: it gets a 400 in Anthropic's error format whose message starts with
the path of the field, and nothing goes upstream. Derandomized and bounded; the app runs in process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from architect.app import create_app
from architect.runtime import Runtime
from architect.store import Store
from tests.helpers import make_config, stub_config
from tests.stubs.openai_stub import StubServer

Draw = Callable[[st.SearchStrategy[Any]], Any]
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
CACHE = st.just({"type": "ephemeral"})
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="


def _obj(required: dict[str, Any], **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {k: v if isinstance(v, st.SearchStrategy) else st.just(v) for k, v in required.items()},
        optional=optional,
    )


TEXT_BLOCK = _obj({"type": "text", "text": TEXT}, cache_control=CACHE)
IMAGE = st.sampled_from(
    [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
    ]
)
TOOL_RESULT = _obj(
    {"type": "tool_result", "tool_use_id": st.from_regex(r"toolu_[a-z0-9]{1,8}", fullmatch=True)},
    content=TEXT | st.lists(TEXT_BLOCK | IMAGE, max_size=2),
    is_error=st.booleans(),
)
TOOL_USE = _obj(
    {
        "type": "tool_use",
        "id": st.from_regex(r"toolu_[a-z0-9]{1,8}", fullmatch=True),
        "name": "f",
        "input": st.dictionaries(TEXT, TEXT, max_size=2),
    }
)
THINKING = _obj({"type": "thinking", "thinking": TEXT, "signature": TEXT})
USER = _obj(
    {"role": "user", "content": TEXT | st.lists(TEXT_BLOCK | IMAGE | TOOL_RESULT, min_size=1, max_size=3)}
)
ASSISTANT = _obj(
    {
        "role": "assistant",
        "content": TEXT | st.lists(TEXT_BLOCK | TOOL_USE | THINKING, min_size=1, max_size=3),
    }
)
TOOL = _obj(
    {"name": st.from_regex(r"[a-z_]{1,10}", fullmatch=True), "input_schema": st.just({"type": "object"})},
    description=TEXT,
    cache_control=CACHE,
)
VALID = _obj(
    {
        "model": "m",
        "max_tokens": st.integers(1, 4096),
        "messages": st.lists(USER | ASSISTANT, min_size=1, max_size=4),
    },
    system=TEXT | st.lists(TEXT_BLOCK, max_size=2),
    stream=st.booleans(),
    temperature=st.floats(0, 1),
    top_p=st.floats(0, 1),
    top_k=st.integers(0, 500),
    stop_sequences=st.lists(TEXT, max_size=3),
    tools=st.lists(TOOL, min_size=1, max_size=2),
    tool_choice=st.sampled_from(
        [
            {"type": "auto"},
            {"type": "any"},
            {"type": "none"},
            {"type": "auto", "disable_parallel_tool_use": True},
        ]
    ),
    metadata=st.just({"user_id": "u-1"}),
    thinking=st.just({"type": "enabled", "budget_tokens": 1024}),
)


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        target: Any = body
        for p in path[:-1]:
            target = target[p]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return apply


_DELETE = object()
# rule -> (how to break a valid body, the path the error must name first)
MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "max_tokens missing": (_set(["max_tokens"], _DELETE), "max_tokens"),
    "max_tokens zero": (_set(["max_tokens"], 0), "max_tokens"),
    "max_tokens a string": (_set(["max_tokens"], "10"), "max_tokens"),
    "role unknown": (_set(["messages", 0, "role"], "wizard"), "messages[0].role"),
    "content an object": (_set(["messages", 0, "content"], {"text": "x"}), "messages[0].content"),
    "block without type": (_set(["messages", 0, "content"], [{"text": "x"}]), "messages[0].content[0].type"),
    "tool_result without id": (
        _set(["messages", 0, "content"], [{"type": "tool_result", "content": "x"}]),
        "messages[0].content[0].tool_use_id",
    ),
    "temperature 2": (_set(["temperature"], 2), "temperature"),
    "stop_sequences of numbers": (_set(["stop_sequences"], [1]), "stop_sequences[0]"),
    "tool_choice unknown": (_set(["tool_choice"], {"type": "sometimes"}), "tool_choice.type"),
    "tool without schema": (_set(["tools"], [{"name": "f"}]), "tools[0].input_schema"),
    "messages empty": (_set(["messages"], []), "messages"),
}


class Gateway:
    def __init__(self, upstream: StubServer) -> None:
        self.runtime = Runtime(make_config(stub_config(upstream.url)), Store.memory())
        self.app = create_app(self.runtime)
        self.runner = asyncio.Runner()
        self.runner.run(self.runtime.start())
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw")

    def post(self, body: dict[str, Any]) -> httpx.Response:
        return self.runner.run(self.client.post("/v1/messages", content=orjson.dumps(body)))

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


EVENTS: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)


def test_every_valid_body_gets_a_message_the_sdk_parses(gateway: Gateway, upstream: StubServer) -> None:
    @_settings(60)
    @given(VALID)
    def check(body: dict[str, Any]) -> None:
        r = gateway.post(body)
        assert r.status_code == 200, r.text
        if not body.get("stream"):
            msg = Message.model_validate(r.json())
            assert "".join(b.text for b in msg.content if b.type == "text") == upstream.content
            return
        datas = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        objs = [orjson.loads(d) for d in datas]
        events = [EVENTS.validate_python(o) for o in objs if o["type"] != "ping"]
        assert events[0].type == "message_start" and events[-1].type == "message_stop"
        text = "".join(
            e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
        )
        assert text == upstream.content

    check()


@pytest.mark.parametrize("rule", list(MUTATIONS))
def test_every_invalid_body_gets_a_400_naming_the_field(
    gateway: Gateway, upstream: StubServer, rule: str
) -> None:
    breaks, path = MUTATIONS[rule]

    @_settings(6)
    @given(VALID)
    def check(body: dict[str, Any]) -> None:
        body.setdefault("tools", [{"name": "f", "input_schema": {"type": "object"}}])
        body.setdefault("tool_choice", {"type": "auto"})
        body.setdefault("stop_sequences", ["x"])
        body.setdefault("temperature", 0.5)
        breaks(body)
        sent_before = len(upstream.requests)
        r = gateway.post(body)
        assert r.status_code == 400, r.text
        payload = r.json()
        assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
        assert payload["error"]["message"].startswith(path + ":"), (payload, body)
        assert len(upstream.requests) == sent_before

    check()
