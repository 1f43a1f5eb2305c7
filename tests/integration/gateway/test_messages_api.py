"""`/v1/messages` (Anthropic's Messages API) through the real gateway, with the official `anthropic`
SDK as the client: translated to an OpenAI-compatible deployment (a stub answering by content) and
passed through natively to an Anthropic deployment (a stub recording the raw bytes it receives)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.helpers import LiveServer, make_config
from tests.stubs.anthropic_stub import AnthropicStub
from tests.stubs.openai_stub import StubServer
from tests.stubs.scripted_chat import ScriptedChat, last_tool_result

ADMIN = "sk-admin-messages-test"
READ_FILE = {
    "name": "read_file",
    "description": "Read a file",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
}


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    """A tool call for `notes.txt` while no tool result is there; then an answer quoting it."""
    result = last_tool_result(body)
    if body.get("tools") and result is None:
        args = orjson.dumps({"path": "notes.txt"}).decode()
        call = {"id": "call_read_1", "type": "function", "function": {"name": "read_file", "arguments": args}}
        return {"content": None, "tool_calls": [call]}
    if result is not None:
        return {"content": f"The file says: {result}"}
    return {"content": "Hello from the translated deployment."}


@pytest.fixture(scope="module")
def stubs() -> Iterator[tuple[ScriptedChat, AnthropicStub, StubServer]]:
    with ScriptedChat(_reply) as chat, AnthropicStub() as ant, StubServer() as broken:
        yield chat, ant, broken


@pytest.fixture(scope="module")
def server(stubs: tuple[ScriptedChat, AnthropicStub, StubServer]) -> Iterator[LiveServer]:
    chat, ant, broken = stubs
    fast = {"max_attempts": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02}
    cfg = make_config(
        {
            "auth": {"admin_key": ADMIN},
            "providers": [
                {"name": "chat", "kind": "openai", "base_url": chat.url},
                {"name": "broken", "kind": "openai", "base_url": broken.url},
                {
                    "name": "ant",
                    "kind": "anthropic",
                    "base_url": f"http://127.0.0.1:{ant.port}/v1",
                    "api_key": "sk-ant-test",
                },
            ],
            "models": [
                {
                    "name": "coder",
                    "aliases": ["claude-*"],
                    "deployments": [
                        {
                            "provider": "chat",
                            "model": "qwen-coder",
                            "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                        }
                    ],
                },
                {
                    "name": "native",
                    "aliases": ["sonnet"],
                    "retry": fast,
                    "deployments": [
                        {
                            "provider": "ant",
                            "model": "claude-sonnet-4-20250514",
                            "price": {
                                "input_per_mtok": 3.0,
                                "output_per_mtok": 15.0,
                                "cached_input_per_mtok": 0.3,
                                "cache_write_per_mtok": 3.75,
                            },
                        }
                    ],
                },
                {
                    "name": "mixed",
                    "strategy": "lowest-cost",
                    "retry": {**fast, "max_attempts": 2},
                    "deployments": [
                        {
                            "provider": "ant",
                            "model": "claude-sonnet-4-20250514",
                            "name": "mixed-ant",
                            "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.1},
                        },
                        {
                            "provider": "chat",
                            "model": "qwen-coder",
                            "name": "mixed-chat",
                            "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                        },
                    ],
                },
                {
                    "name": "chat-first",
                    "strategy": "lowest-cost",
                    "deployments": [
                        {
                            "provider": "chat",
                            "model": "qwen-coder",
                            "name": "cf-chat",
                            "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.1},
                        },
                        {
                            "provider": "ant",
                            "model": "claude-sonnet-4-20250514",
                            "name": "cf-ant",
                            "price": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
                        },
                    ],
                },
                {"name": "flaky", "retry": fast, "deployments": [{"provider": "broken", "model": "m"}]},
            ],
        }
    )
    with LiveServer(cfg) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=ADMIN, max_retries=0, timeout=20) as c:
        yield c


def _row(server: LiveServer, request_id: str) -> dict[str, Any]:
    return next(r for r in server.calls() if r["request_id"] == request_id)


def test_plain_message_translated_to_a_chat_deployment(
    server: LiveServer, client: anthropic.Anthropic
) -> None:
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5-20250929",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Say hello"}],
        metadata={"user_id": "user-42"},
        extra_body={"top_k": 5},
    )
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Hello from the translated deployment."  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn" and msg.model == "claude-sonnet-4-5-20250929"
    assert msg.usage.output_tokens == 5 and msg.usage.input_tokens > 0
    assert raw.headers["x-architect-dropped"] == "cache_control,metadata.user_id,top_k"
    row = _row(server, raw.headers["x-request-id"])
    assert row["endpoint"] == "messages" and row["model"] == "claude-sonnet-4-5-20250929"
    assert row["model_group"] == "coder" and row["dropped"] == "cache_control,metadata.user_id,top_k"
    assert row["completion_tokens"] == 5 and row["cost_source"] == "config"
    assert row["cost_usd"] == pytest.approx((row["prompt_tokens"] * 1.0 + 5 * 2.0) / 1e6)


def test_stream_and_tool_round_trip(
    stubs: tuple[ScriptedChat, AnthropicStub, StubServer], server: LiveServer, client: anthropic.Anthropic
) -> None:
    chat = stubs[0]
    question = [{"role": "user", "content": "What does notes.txt say?"}]
    with client.messages.stream(model="coder", max_tokens=200, tools=[READ_FILE], messages=question) as s:
        kinds = [ev.type for ev in s]
        first = s.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "input_json" in kinds or "content_block_delta" in kinds
    assert first.stop_reason == "tool_use"
    use = first.content[-1]
    assert use.type == "tool_use" and use.name == "read_file" and use.input == {"path": "notes.txt"}
    assert use.id == "call_read_1"
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
    followup = [
        *question,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": use.id,
                    "is_error": False,
                    "content": [
                        {"type": "text", "text": "ship it on friday"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": png},
                        },
                    ],
                }
            ],
        },
    ]
    with client.messages.stream(model="coder", max_tokens=200, tools=[READ_FILE], messages=followup) as s:
        final = s.get_final_message()
    assert final.stop_reason == "end_turn"
    assert final.content[0].text == "The file says: ship it on friday"  # type: ignore[union-attr]
    sent = chat.requests[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_read_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_read_1", "content": "ship it on friday"}
    assert sent[3]["role"] == "user" and sent[3]["content"][0]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )
    rows = [r for r in server.calls() if r["model"] == "coder" and r["stream"]]
    assert (
        rows[-1]["endpoint"] == "messages"
        and rows[-1]["completion_tokens"] > 0
        and rows[-1]["status"] == "ok"
    )


def test_native_passthrough_keeps_thinking_signature_and_cache_control_byte_identical(
    stubs: tuple[ScriptedChat, AnthropicStub, StubServer], server: LiveServer
) -> None:
    ant = stubs[1]
    thinking = {
        "type": "thinking",
        "thinking": "Let me think \u2014 carefully.",
        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h",
    }
    cached = {
        "type": "text",
        "text": "A long contract...",
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }
    body = {
        "model": "native",
        "max_tokens": 512,
        "system": [cached],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [
            {"role": "user", "content": "Summarise the termination clause."},
            {"role": "assistant", "content": [thinking, {"type": "text", "text": "Reading it."}]},
            {"role": "user", "content": "Go on."},
        ],
    }
    headers = {
        "x-api-key": ADMIN,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14",
    }
    r = httpx.post(
        server.url + "/v1/messages?beta=true", content=orjson.dumps(body), headers=headers, timeout=20
    )
    assert r.status_code == 200, r.text
    got = ant.requests[-1]
    assert orjson.dumps(thinking) in got["raw"] and orjson.dumps(cached) in got["raw"]
    assert got["body"]["model"] == "claude-sonnet-4-20250514" and got["body"]["thinking"] == body["thinking"]
    assert got["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "x-architect-dropped" not in r.headers
    assert r.json()["usage"]["cache_creation_input_tokens"] == 188086
    row = _row(server, r.headers["x-request-id"])
    assert row["endpoint"] == "messages" and row["cached_tokens"] == 1500 and row["cost_source"] == "config"
    # 21 uncached input at $3, 1,500 cache reads at $0.30, 188,086 cache writes at $3.75, 393 out at $15
    assert row["cost_usd"] == pytest.approx(0.7117305)


def test_native_stream_relayed_as_anthropic_sent_it(
    stubs: tuple[ScriptedChat, AnthropicStub, StubServer], client: anthropic.Anthropic, server: LiveServer
) -> None:
    with client.messages.stream(
        model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        text = s.get_final_text()
        request_id = s.response.headers["x-request-id"]
    assert text
    row = _row(server, request_id)
    assert row["model_group"] == "native" and row["cached_tokens"] == 2000 and row["completion_tokens"] == 15


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/v1/models")],
)
def test_an_anthropic_request_without_a_key_is_told_to_send_x_api_key(
    server: LiveServer, method: str, path: str
) -> None:
    body = {"model": "coder", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    ask = {"json": body} if method == "POST" else {}
    r = httpx.request(method, server.url + path, headers={"anthropic-version": "2023-06-01"}, **ask)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert "x-api-key" in r.json()["error"]["message"]
    # an OpenAI client is told about the header it sends
    r = httpx.post(server.url + "/v1/chat/completions", json=body)
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"]["message"]
    assert "x-api-key" not in r.json()["error"]["message"]


def test_a_native_message_has_the_gateways_id_and_the_model_asked_for(
    stubs: tuple[ScriptedChat, AnthropicStub, StubServer], client: anthropic.Anthropic
) -> None:
    ask: dict[str, Any] = {
        "model": "sonnet",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
    }
    raw = client.messages.with_raw_response.create(**ask)
    with client.messages.stream(**ask) as s:
        events = list(s)
        streamed = s.get_final_message()
        stream_id = s.response.headers["x-request-id"]
    answers = [(raw.parse(), raw.headers["x-request-id"]), (streamed, stream_id)]
    assert stubs[1].requests[-1]["body"]["model"] == "claude-sonnet-4-20250514"
    for msg, request_id in answers:  # the stub answers msg_01... for claude-sonnet-4-20250514
        assert msg.id == f"msg_{request_id}" and msg.model == "sonnet"
        assert msg.content[0].type == "text" and msg.content[0].text.startswith("Hello!")
    assert events[0].type == "message_start" and events[0].message.id == f"msg_{stream_id}"
    assert raw.parse().id != streamed.id


def test_errors_in_anthropic_shape(
    server: LiveServer, client: anthropic.Anthropic, stubs: tuple[ScriptedChat, AnthropicStub, StubServer]
) -> None:
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="coder", max_tokens=0, messages=[{"role": "user", "content": "x"}])
    assert bad.value.body["type"] == "error"  # type: ignore[index]
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "max_tokens" in bad.value.body["error"]["message"]  # type: ignore[index]
    r = httpx.post(
        server.url + "/v1/messages", json={"model": "coder", "messages": []}, headers={"x-api-key": ADMIN}
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in r.json()["error"]["message"]
    r = httpx.post(
        server.url + "/v1/messages",
        json={"model": "coder", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]},
        headers={"x-api-key": ADMIN},
    )
    assert r.status_code == 400 and "messages[0].role" in r.json()["error"]["message"]
    r = httpx.post(
        server.url + "/v1/messages",
        json={
            "model": "coder",
            "max_tokens": 5,
            "system": [{"type": "image"}],
            "messages": [{"role": "user", "content": "x"}],
        },
        headers={"x-api-key": ADMIN},
    )
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("system[0].type:")
    assert "text" in r.json()["error"]["message"]  # system takes text blocks only
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="gpt-unknown", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with (
        anthropic.Anthropic(base_url=server.url, api_key="sk-wrong", max_retries=0) as wrong,
        pytest.raises(anthropic.AuthenticationError) as auth,
    ):
        wrong.messages.create(model="coder", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    stubs[1].script.append("overloaded")
    with pytest.raises(anthropic.APIStatusError) as over:
        client.messages.create(model="native", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert over.value.status_code == 529 and over.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_fields_the_chat_deployment_cannot_take_are_refused_by_name(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(
            model="coder",
            max_tokens=50,
            tools=[{"type": "web_search_20250305", "name": "web_search"}],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "news?"}],
        )
    assert "tools[0].type" in e.value.body["error"]["message"]  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(
            model="coder",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"mcp_servers": [{"url": "http://x"}]},
        )
    assert "mcp_servers" in e.value.body["error"]["message"]  # type: ignore[index]


def test_a_stream_broken_after_its_first_byte_ends_with_an_error_event(
    stubs: tuple[ScriptedChat, AnthropicStub, StubServer], server: LiveServer
) -> None:
    stubs[2].script.append("stream-error")
    stubs[2].chunk_delay_s = 0.05  # the first chunk arrives alone: the stream has started
    body = {
        "model": "flaky",
        "max_tokens": 20,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    with httpx.stream("POST", server.url + "/v1/messages", json=body, headers={"x-api-key": ADMIN}) as r:
        text = r.read().decode()
    names = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert names, (r.status_code, text)
    assert names[0] == "message_start" and names[-1] == "error" and "message_stop" not in names
    row = _row(server, r.headers["x-request-id"])
    assert row["truncated"] and row["status"] == "error"


def test_a_mixed_group_falls_over_from_anthropic_to_a_chat_deployment(
    stubs: tuple[ScriptedChat, AnthropicStub, StubServer], server: LiveServer, client: anthropic.Anthropic
) -> None:
    stubs[1].script.append("overloaded")  # the cheaper Anthropic deployment is tried first and fails
    raw = client.messages.with_raw_response.create(
        model="mixed", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    msg = raw.parse()
    assert msg.content[0].text == "Hello from the translated deployment."  # type: ignore[union-attr]
    row = _row(server, raw.headers["x-request-id"])
    assert row["status"] == "ok" and row["endpoint"] == "messages" and row["deployment"] == "mixed-chat"
    attempts = server.store.ledger.attempts_for(row["request_id"])
    assert [a["deployment"] for a in attempts] == ["mixed-ant", "mixed-chat"]
    # and the native path answers when it is healthy: the same call, natively
    native = client.messages.with_raw_response.create(
        model="mixed", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert native.headers["x-architect-deployment"] == "mixed-ant"
    assert native.parse().content[0].text == "Hello! How can I help you today?"  # type: ignore[union-attr]


def test_count_tokens_native_and_estimated(client: anthropic.Anthropic, server: LiveServer) -> None:
    native = client.messages.count_tokens(
        model="native", messages=[{"role": "user", "content": "hello there"}]
    )
    assert native.input_tokens == 42
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "hello there " * 50}]
    )
    assert raw.headers["x-architect-estimate"] == "true"
    assert 50 <= raw.parse().input_tokens <= 400


def test_models_list_in_anthropic_shape(client: anthropic.Anthropic, server: LiveServer) -> None:
    ids = [m.id for m in client.models.list()]
    assert {"coder", "native", "mixed"} <= set(ids)
    r = httpx.get(server.url + "/v1/models", headers={"authorization": f"Bearer {ADMIN}"})
    assert r.json()["object"] == "list"
    one = client.models.retrieve("coder")
    assert (one.id, one.type, one.display_name) == ("coder", "model", "coder")
    assert one.created_at == next(m.created_at for m in client.models.list() if m.id == "coder")
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.models.retrieve("ghost")
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index,call-overload]


def test_a_key_limited_to_a_group_may_use_its_aliases(server: LiveServer) -> None:
    r = httpx.post(
        server.url + "/api/v1/keys",
        json={"name": "agent", "models": ["coder"]},
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    with anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0) as c:
        msg = c.messages.create(
            model="claude-opus-4-1", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert msg.content[0].type == "text"
        with pytest.raises(anthropic.PermissionDeniedError):
            c.messages.create(model="native", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


def test_deterministic_messages_are_cached_per_api_and_replayed_as_messages_events(
    stubs: tuple[ScriptedChat, AnthropicStub, StubServer], server: LiveServer, client: anthropic.Anthropic
) -> None:
    chat = stubs[0]
    ask: dict[str, Any] = {
        "model": "coder",
        "max_tokens": 30,
        "messages": [{"role": "user", "content": "cache me"}],
        "extra_body": {"temperature": 0},  # this SDK has no temperature argument
    }
    before = len(chat.requests)
    with client.messages.stream(**ask) as s:
        first = s.get_final_message()
        assert s.response.headers["x-architect-cache"] == "miss"
    with client.messages.stream(**ask) as s:
        kinds = [ev.type for ev in s]
        again = s.get_final_message()
        assert s.response.headers["x-architect-cache"].startswith("hit")
    plain = client.messages.with_raw_response.create(**ask)
    assert plain.headers["x-architect-cache"].startswith("hit")
    texts = [[b.text for b in m.content if b.type == "text"] for m in (plain.parse(), again, first)]
    assert texts[0] == texts[1] == texts[2] == ["Hello from the translated deployment."]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert len({m.id for m in (plain.parse(), again, first)}) == 3  # each answer its own message id
    assert len(chat.requests) == before + 1  # one upstream call for three answers
    # the same request over chat completions is another entry: its bytes are in another format
    r = httpx.post(
        server.url + "/v1/chat/completions",
        json={
            "model": "coder",
            "max_tokens": 30,
            "temperature": 0,
            "messages": [{"role": "user", "content": "cache me"}],
        },
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    assert (
        r.status_code == 200
        and r.headers["x-architect-cache"] == "miss"
        and r.json()["object"] == "chat.completion"
    )


def test_spend_and_metrics_group_by_endpoint(server: LiveServer, client: anthropic.Anthropic) -> None:
    client.messages.create(model="coder", max_tokens=10, messages=[{"role": "user", "content": "count me"}])
    httpx.post(
        server.url + "/v1/chat/completions",
        json={"model": "coder", "messages": [{"role": "user", "content": "and me"}]},
        headers={"authorization": f"Bearer {ADMIN}"},
    ).raise_for_status()
    server.runtime.ledger.flush()
    admin = {"authorization": f"Bearer {ADMIN}"}
    spend = httpx.get(server.url + "/api/v1/spend", params={"by": "endpoint"}, headers=admin).json()
    by = {r["endpoint"]: r for r in spend["rows"]}
    assert by["messages"]["requests"] >= 1 and by["chat"]["requests"] >= 1
    summary = httpx.get(
        server.url + "/api/v1/metrics/summary", params={"group_by": "endpoint"}, headers=admin
    )
    assert summary.status_code == 200, summary.text
    groups = {r["endpoint"]: r for r in summary.json()["rows"]}
    assert groups["messages"]["requests"] == by["messages"]["requests"]


def test_a_request_one_deployment_cannot_take_goes_to_one_that_can(
    stubs: tuple[ScriptedChat, AnthropicStub, StubServer], server: LiveServer, client: anthropic.Anthropic
) -> None:
    tools: Any = [{"type": "web_search_20250305", "name": "web_search"}]
    raw = client.messages.with_raw_response.create(
        model="chat-first", max_tokens=50, tools=tools, messages=[{"role": "user", "content": "news?"}]
    )
    assert raw.headers["x-architect-deployment"] == "cf-ant"  # answered natively by the Anthropic deployment
    assert stubs[1].requests[-1]["body"]["tools"] == tools
    row = _row(server, raw.headers["x-request-id"])
    assert row["deployment"] == "cf-ant" and row["status"] == "ok"
    attempts = server.store.ledger.attempts_for(row["request_id"])
    assert [(a["deployment"], a["status"]) for a in attempts] == [("cf-chat", "error"), ("cf-ant", "ok")]
    # five stop sequences are more than chat completions take: only the Anthropic deployment can
    stops = ["a", "b", "c", "d", "e"]
    raw = client.messages.with_raw_response.create(
        model="chat-first", max_tokens=5, stop_sequences=stops, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-architect-deployment"] == "cf-ant"
    assert stubs[1].requests[-1]["body"]["stop_sequences"] == stops
    with pytest.raises(anthropic.BadRequestError) as e:  # a group of chat deployments only
        client.messages.create(
            model="coder", max_tokens=5, stop_sequences=stops, messages=[{"role": "user", "content": "hi"}]
        )
    assert e.value.body["error"]["message"].startswith("stop_sequences:")  # type: ignore[index]
    # and a plain request stays on the cheaper chat deployment
    plain = client.messages.with_raw_response.create(
        model="chat-first", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    assert plain.headers["x-architect-deployment"] == "cf-chat"


def test_a_key_over_its_rate_gets_rate_limit_error_and_a_large_body_request_too_large(
    server: LiveServer,
) -> None:
    r = httpx.post(
        server.url + "/api/v1/keys",
        json={"name": "slow-agent", "models": ["coder"], "rpm": 1},
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    assert r.status_code == 201, r.text
    with anthropic.Anthropic(base_url=server.url, api_key=r.json()["key"], max_retries=0) as c:
        c.messages.create(model="coder", max_tokens=5, messages=[{"role": "user", "content": "one"}])
        with pytest.raises(anthropic.RateLimitError) as limited:
            c.messages.create(model="coder", max_tokens=5, messages=[{"role": "user", "content": "two"}])
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(limited.value.response.headers["retry-after"]) >= 1
    big = {
        "model": "coder",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x" * (server.runtime.config.server.max_body_bytes + 1)}],
    }
    r = httpx.post(server.url + "/v1/messages", json=big, headers={"x-api-key": ADMIN})
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
