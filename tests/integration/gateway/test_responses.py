"""`/v1/responses` through the real app (uvicorn on 127.0.0.1) with the openai SDK's
`client.responses.create`, against a scripted upstream on 127.0.0.1 (`tests.stubs.agent_stub`):
translated to chat completions (plain, streaming, function and custom tools, Codex's request shape)
and native to a provider with `responses: true`; stored responses (`previous_response_id`,
`store: false`, GET/DELETE, `input_items` pages, another key's 404, redaction); ledger rows, tokens,
cost, dropped fields; streams that break or fail and answers cut at the token limit, against the
failure-injecting `tests.stubs.openai_stub`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from architect.access.keys import KeyService
from tests.helpers import LiveServer, make_config, stub_config, wait_until
from tests.stubs.agent_stub import ANSWER, PATCH, AgentStub
from tests.stubs.openai_stub import StubServer

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


@pytest.fixture
def agent_stub() -> Iterator[AgentStub]:
    with AgentStub() as s:
        yield s


def _config(stub: AgentStub, *, native: bool = False, **extra: Any) -> Any:
    return make_config(
        {
            "providers": [
                {
                    "name": "up",
                    "kind": "openai",
                    "base_url": stub.url,
                    "api_key": "sk-up",
                    "responses": native,
                }
            ],
            "models": [
                {
                    "name": "m",
                    "aliases": ["gpt-5.5"],
                    "deployments": [{"provider": "up", "model": "up-model", "price": PRICE}],
                }
            ],
            **extra,
        }
    )


@pytest.fixture
def server(agent_stub: AgentStub) -> Iterator[LiveServer]:
    with LiveServer(_config(agent_stub)) as s:
        yield s


def _client(server: LiveServer, key: str = "x") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=20)


def _rows(server: LiveServer, n: int) -> list[dict[str, Any]]:
    return wait_until(lambda: (rows := server.calls()) and len(rows) >= n and rows)  # type: ignore[return-value]


def test_plain_text_answer_and_ledger_row(server: LiveServer, agent_stub: AgentStub) -> None:
    with _client(server) as client:
        r = client.responses.create(model="m", input="say hi", instructions="be brief", max_output_tokens=50)
    assert r.object == "response" and r.status == "completed"
    assert r.output_text == f"{ANSWER} say hi"
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (
        11,
        7,
        18,
    )
    sent = agent_stub.bodies("/v1/chat/completions")[0]
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "say hi"},
    ]
    assert sent["max_tokens"] == 50 and sent["model"] == "up-model"
    (row,) = _rows(server, 1)
    assert row["endpoint"] == "responses" and row["status"] == "ok"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (11, 7)
    assert row["cost_usd"] == pytest.approx((11 * 1.0 + 7 * 2.0) / 1e6)


def test_streaming_events(server: LiveServer) -> None:
    with _client(server) as client:
        events = list(client.responses.create(model="m", input="stream please", stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    for t in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert t in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == f"{ANSWER} stream please"
    done = events[-1].response
    assert done.output_text == text and done.usage is not None and done.usage.total_tokens == 18
    (row,) = _rows(server, 1)
    assert row["endpoint"] == "responses" and row["stream"] and row["prompt_tokens"] == 11


def test_function_tool_round_trip_with_previous_response_id(
    server: LiveServer, agent_stub: AgentStub
) -> None:
    tools: Any = [
        {
            "type": "function",
            "name": "read_file",
            "description": "read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        }
    ]
    with _client(server) as client:
        first = client.responses.create(model="m", input="read greet.txt", tools=tools)
        (call,) = first.output
        assert call.type == "function_call" and call.name == "read_file"
        assert call.arguments == '{"path":"greet.txt"}' and call.call_id == "call_1"
        out: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "hello"}]
        second = client.responses.create(model="m", input=out, tools=tools, previous_response_id=first.id)
    assert second.output_text == f"{ANSWER} hello"
    assert second.previous_response_id == first.id
    sent = agent_stub.bodies("/v1/chat/completions")[1]["messages"]
    assert sent[0] == {"role": "user", "content": "read greet.txt"}
    assert sent[1]["role"] == "assistant" and sent[1]["tool_calls"][0]["id"] == "call_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "hello"}
    assert agent_stub.bodies("/v1/chat/completions")[1]["tools"][0]["function"]["name"] == "read_file"


def _codex_body(turn2: bool = False) -> dict[str, Any]:
    """The shape Codex CLI 0.171 sends (captured): developer messages first, a custom apply_patch tool
    with a grammar, web_search and namespace tools, reasoning, include, prompt_cache_key, store false."""

    def msg(role: str, text: str) -> dict[str, Any]:
        return {
            "type": "message",
            "id": f"msg_{role}",
            "role": role,
            "content": [{"type": "input_text", "text": text}],
        }

    items: list[dict[str, Any]] = [
        msg("developer", "You are Codex."),
        msg("developer", "<permissions instructions>"),
        msg("user", "<environment_context>"),
        msg("user", "Change hello to hello world in greet.txt"),
    ]
    if turn2:
        items += [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-opaque"},
            {
                "type": "custom_tool_call",
                "id": "ctc_1",
                "status": "completed",
                "call_id": "call_1",
                "name": "apply_patch",
                "input": PATCH,
            },
            {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Success. Updated greet.txt"},
        ]
    return {
        "model": "gpt-5.5",
        "stream": True,
        "input": items,
        "tools": [
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "Edit files. FREEFORM tool.",
                "format": {
                    "type": "grammar",
                    "syntax": "lark",
                    "definition": "start: begin_patch hunk+ end_patch",
                },
            },
            {
                "type": "function",
                "name": "exec_command",
                "strict": False,
                "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
            },
            {"type": "web_search", "external_web_access": True},
            {"type": "namespace", "name": "multi_agent_v1", "tools": []},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199-session",
        "text": {"verbosity": "low"},
        "client_metadata": {"thread_id": "t1"},
    }


def _sse(resp: httpx.Response) -> list[dict[str, Any]]:
    out = []
    for block in resp.text.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                out.append(orjson.loads(line[6:]))
    return out


def test_codex_shapes_translate_to_chat(server: LiveServer, agent_stub: AgentStub) -> None:
    with httpx.Client(base_url=server.url, timeout=20, headers={"authorization": "Bearer x"}) as http:
        r1 = http.post("/v1/responses", json=_codex_body())
        assert r1.status_code == 200, r1.text
        dropped = set(r1.headers["x-architect-dropped"].split(","))
        assert {
            "reasoning",
            "include",
            "prompt_cache_key",
            "tools.web_search",
            "tools.namespace",
            "tools.custom.format",
            "text.verbosity",
            "client_metadata",
        } <= dropped
        events = _sse(r1)
        done = [e for e in events if e["type"] == "response.output_item.done"]
        assert done[-1]["item"]["type"] == "custom_tool_call"
        assert done[-1]["item"]["input"] == PATCH and done[-1]["item"]["name"] == "apply_patch"
        assert events[-1]["type"] == "response.completed"
        assert events[-1]["response"]["output"][-1]["input"] == PATCH
        sent = agent_stub.bodies("/v1/chat/completions")[0]
        assert sent["messages"][0] == {
            "role": "system",
            "content": "You are Codex.\n\n<permissions instructions>",
        }
        assert [m["role"] for m in sent["messages"]] == ["system", "user", "user"]
        names = [t["function"]["name"] for t in sent["tools"]]
        assert names == ["apply_patch", "exec_command"]
        assert "start: begin_patch" in sent["tools"][0]["function"]["description"]
        assert sent["tools"][0]["function"]["parameters"]["required"] == ["input"]

        r2 = http.post("/v1/responses", json=_codex_body(turn2=True))
        assert r2.status_code == 200, r2.text
        assert "input.reasoning" in r2.headers["x-architect-dropped"]
        events = _sse(r2)
        assert events[-1]["type"] == "response.completed"
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text == f"{ANSWER} Success. Updated greet.txt"
        sent = agent_stub.bodies("/v1/chat/completions")[1]["messages"]
        args = orjson.dumps({"input": PATCH}).decode()
        assert sent[-2]["tool_calls"][0]["function"] == {"name": "apply_patch", "arguments": args}
        assert sent[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "Success. Updated greet.txt"}
    rows = _rows(server, 2)
    assert all(r["endpoint"] == "responses" and r["model"] == "gpt-5.5" for r in rows)
    assert "tools.web_search" in (rows[0]["dropped"] or "")
    # store: false kept nothing
    with _client(server) as client, pytest.raises(openai.NotFoundError):
        client.responses.retrieve(events[-1]["response"]["id"])


def test_store_false_keeps_nothing_and_get_delete(server: LiveServer) -> None:
    with _client(server) as client:
        gone = client.responses.create(model="m", input="forget me", store=False)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(gone.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="m", input="next", previous_response_id=gone.id)
        kept = client.responses.create(model="m", input="keep me")
        got = client.responses.retrieve(kept.id)
        assert got.id == kept.id and got.output_text == kept.output_text
        items = client.responses.input_items.list(kept.id)
        assert items.data[0].type == "message"
        client.responses.delete(kept.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(kept.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.delete(kept.id)


def test_another_key_gets_404(agent_stub: AgentStub) -> None:
    cfg = _config(agent_stub)
    with LiveServer(cfg) as server:
        keys = KeyService(server.store.keys, server.store.budgets, server.store.audit)
        s1, _ = keys.create(name="one", actor="test")
        s2, _ = keys.create(name="two", actor="test")
        with _client(server, s1) as one, _client(server, s2) as two:
            r = one.responses.create(model="m", input="mine")
            assert one.responses.retrieve(r.id).id == r.id
            for attempt in (
                lambda: two.responses.retrieve(r.id),
                lambda: two.responses.delete(r.id),
                lambda: two.responses.create(model="m", input="x", previous_response_id=r.id),
            ):
                with pytest.raises(openai.NotFoundError) as err:
                    attempt()
                assert "never stored for this key" in err.value.message
            assert one.responses.retrieve(r.id).id == r.id


def test_stored_responses_are_redacted(agent_stub: AgentStub) -> None:
    cfg = _config(agent_stub, ledger={"redact": [r"sk-secret-[a-z]+"]})
    with LiveServer(cfg) as server, _client(server) as client:
        r = client.responses.create(model="m", input="my key is sk-secret-abc")
        assert r.output_text == f"{ANSWER} my key is sk-secret-abc"  # the answer itself is not changed
        assert client.responses.retrieve(r.id).output_text == f"{ANSWER} my key is [REDACTED]"
        client.responses.create(model="m", input="and?", previous_response_id=r.id)
        sent = agent_stub.bodies("/v1/chat/completions")[1]["messages"]
        assert sent[0]["content"] == "my key is [REDACTED]"


def test_store_switched_off(agent_stub: AgentStub) -> None:
    cfg = _config(agent_stub, responses={"store": False})
    with LiveServer(cfg) as server, _client(server) as client:
        r = client.responses.create(model="m", input="hi")
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(r.id)
        with pytest.raises(openai.BadRequestError) as err:
            client.responses.create(model="m", input="hi", previous_response_id=r.id)
        assert err.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_native_passthrough(agent_stub: AgentStub) -> None:
    with LiveServer(_config(agent_stub, native=True)) as server, _client(server) as client:
        r = client.responses.create(
            model="m", input="hi", reasoning={"effort": "low"}, include=["reasoning.encrypted_content"]
        )
        assert r.output_text == "NATIVE" and r.id == "resp_native_1"
        events = list(
            client.responses.create(model="m", input="again", previous_response_id=r.id, stream=True)
        )
        assert events[-1].type == "response.completed"
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "NATIVE"
        sent = agent_stub.bodies("/v1/responses")
        assert not agent_stub.bodies("/v1/chat/completions")
        assert sent[0]["model"] == "up-model" and sent[0]["reasoning"] == {"effort": "low"}
        assert "previous_response_id" not in sent[1]
        assert [i.get("role") for i in sent[1]["input"]] == ["user", "assistant", "user"]
        rows = _rows(server, 2)
        assert [
            (x["endpoint"], x["prompt_tokens"], x["cached_tokens"], x["completion_tokens"]) for x in rows
        ] == [("responses", 13, 3, 5), ("responses", 13, 3, 5)]
        assert all(x["dropped"] is None for x in rows)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
        (
            {"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "temperature": 3}, "temperature"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.name"),
        ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "input": "x", "background": True}, "background"),
    ],
)
def test_bad_requests_are_400_naming_the_field(server: LiveServer, body: dict[str, Any], param: str) -> None:
    r = httpx.post(server.url + "/v1/responses", json=body, headers={"authorization": "Bearer x"}, timeout=10)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and param in err["message"]


def test_size_cap_evicts_the_oldest(agent_stub: AgentStub) -> None:
    cfg = _config(agent_stub, responses={"max_bytes_per_key": 4096})
    with LiveServer(cfg) as server, _client(server) as client:
        ids = [client.responses.create(model="m", input=f"turn {i} " + "x" * 600).id for i in range(5)]

        def evicted() -> bool:
            try:
                client.responses.retrieve(ids[0])
            except openai.NotFoundError:
                return True
            return False

        assert wait_until(evicted)
        assert client.responses.retrieve(ids[-1]).id == ids[-1]
        big = client.responses.create(model="m", input="z" * 5000)  # answered, but over the cap alone
        assert big.output_text.startswith(ANSWER)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(big.id)


def test_input_items_are_listed_in_pages(server: LiveServer) -> None:
    with _client(server) as client:
        first = client.responses.create(model="m", input="one")
        two: Any = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two"}]}
        mine: Any = {**two, "id": "msg_mine", "content": [{"type": "input_text", "text": "three"}]}
        second = client.responses.create(model="m", input=[two, mine], previous_response_id=first.id)
        page = client.responses.input_items.list(second.id)  # newest first, up to 20
        ids = [i.id for i in page.data]
        assert len(ids) == 4 and ids[0] == "msg_mine" and ids[2] == first.output[0].id
        assert (page.first_id, page.last_id, page.has_more) == (ids[0], ids[-1], False)
        texts = [getattr(i, "content", [None])[0] for i in page.data]
        assert [getattr(t, "text", None) for t in texts] == ["three", "two", first.output_text, "one"]
        asc = client.responses.input_items.list(second.id, order="asc")
        assert [i.id for i in asc.data] == ids[::-1]
        one = client.responses.input_items.list(second.id, limit=1)
        assert [i.id for i in one.data] == ids[:1] and one.has_more
        assert (one.first_id, one.last_id) == (ids[0], ids[0])
        rest = client.responses.input_items.list(second.id, limit=2, after=ids[1])
        assert [i.id for i in rest.data] == ids[2:] and not rest.has_more
        older = client.responses.input_items.list(second.id, limit=2, after=ids[1], order="asc")
        assert [i.id for i in older.data] == [ids[0]] and not older.has_more
        assert [i.id for i in client.responses.input_items.list(second.id, limit=1)] == ids  # the SDK pages
        included = client.responses.input_items.list(second.id, include=["message.input_image.image_url"])
        assert [i.id for i in included.data] == ids
        # the ids the gateway gives (items sent without one) are unique to their response
        first_ids = [i.id for i in client.responses.input_items.list(first.id).data]
        assert len(set(first_ids + ids)) == len(first_ids) + len(ids)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"order": "bogus"}, "order"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"after": "item_nowhere"}, "after"),
    ],
)
def test_bad_input_items_queries_are_400_naming_the_param(
    server: LiveServer, query: dict[str, str], param: str
) -> None:
    with _client(server) as client:
        rid = client.responses.create(model="m", input="hi").id
    r = httpx.get(
        f"{server.url}/v1/responses/{rid}/input_items",
        params=query,
        headers={"authorization": "Bearer x"},
        timeout=10,
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and param in err["message"]


def test_tool_choice_and_parallel_calls_dropped_with_the_built_in_tools_are_recorded(
    server: LiveServer, agent_stub: AgentStub
) -> None:
    body = {
        "model": "m",
        "input": "hi",
        "tools": [{"type": "web_search"}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    r = httpx.post(server.url + "/v1/responses", json=body, headers={"authorization": "Bearer x"}, timeout=10)
    assert r.status_code == 200, r.text
    dropped = r.headers["x-architect-dropped"].split(",")
    assert sorted(dropped) == ["parallel_tool_calls", "tool_choice", "tools.web_search"]
    sent = agent_stub.bodies("/v1/chat/completions")[0]
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(sent)


@pytest.mark.parametrize(
    ("mode", "last"),
    [("truncate", "error"), ("stream-error", "response.failed"), ("bad-json", "response.failed")],
)
def test_a_failed_stream_keeps_numbering_its_events(stub: StubServer, mode: str, last: str) -> None:
    stub.script.append(mode)
    stub.chunk_delay_s = 0.05  # the first chunks go out before the stream fails
    with (
        LiveServer(make_config(stub_config(stub.url))) as server,
        httpx.Client(base_url=server.url, timeout=20, headers={"authorization": "Bearer x"}) as http,
    ):
        r = http.post("/v1/responses", json={"model": "m", "input": "hi", "stream": True})
    events = _sse(r)
    assert events[-1]["type"] == last and "response.completed" not in [e["type"] for e in events]
    assert "response.output_text.delta" in [e["type"] for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_an_answer_cut_at_the_token_limit_is_incomplete_down_to_its_item(stub: StubServer) -> None:
    stub.script.extend(["length", "length"])
    with LiveServer(make_config(stub_config(stub.url))) as server, _client(server) as client:
        r = client.responses.create(model="m", input="hi", max_output_tokens=5)
        assert r.status == "incomplete" and r.incomplete_details is not None
        assert r.incomplete_details.reason == "max_output_tokens"
        assert [(o.type, o.status) for o in r.output] == [("message", "incomplete")]  # type: ignore[union-attr]
        events = list(client.responses.create(model="m", input="hi", max_output_tokens=5, stream=True))
    (done,) = [e for e in events if e.type == "response.output_item.done"]
    final = events[-1]
    assert final.type == "response.incomplete"
    assert done.item.status == "incomplete"  # type: ignore[union-attr]
    assert [o.model_dump() for o in final.response.output] == [done.item.model_dump()]
