"""`/v1/responses` answers from the response cache and from coalescing, through the real app (uvicorn
on 127.0.0.1) with the openai SDK, against a scripted upstream on 127.0.0.1 (`tests.stubs.agent_stub`):
an answer another call made is the new call's own, with its own response id and item ids, stored for
its key (GET, `previous_response_id`) unless it said `store: false`, across keys that share the
cache, replayed as a stream, and from a native Responses deployment. (The Messages API's ids: in
`test_messages_api`.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.responses import Response

from architect.access.keys import KeyService
from tests.helpers import LiveServer, make_config
from tests.stubs.agent_stub import ANSWER, AgentStub

ASK: dict[str, Any] = {"model": "m", "input": "cache me", "temperature": 0}
CHAT = "/v1/chat/completions"


@pytest.fixture
def agent_stub() -> Iterator[AgentStub]:
    with AgentStub() as s:
        yield s


def _config(stub: AgentStub, *, native: bool = False, **extra: Any) -> Any:
    provider = {"name": "up", "kind": "openai", "base_url": stub.url, "api_key": "sk-up", "responses": native}
    return make_config(
        {
            "providers": [provider],
            "models": [{"name": "m", "deployments": [{"provider": "up", "model": "up-model"}]}],
            **extra,
        }
    )


@pytest.fixture
def server(agent_stub: AgentStub) -> Iterator[LiveServer]:
    with LiveServer(_config(agent_stub)) as s:
        yield s


def _client(server: LiveServer, key: str = "x") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=20)


def _create(client: openai.OpenAI, **kw: Any) -> tuple[str, Response]:
    """(the x-architect-cache header, the response) of a create with `ASK` (and `kw` over it)."""
    raw = client.responses.with_raw_response.create(**{**ASK, **kw})
    return raw.headers["x-architect-cache"], raw.parse()


def _stream(server: LiveServer, key: str = "x", **kw: Any) -> tuple[str, list[dict[str, Any]]]:
    """(the x-architect-cache header, the events) of a streamed create with `ASK`."""
    body = {**ASK, **kw, "stream": True}
    headers = {"authorization": f"Bearer {key}"}
    with httpx.stream("POST", server.url + "/v1/responses", json=body, headers=headers, timeout=20) as r:
        assert r.status_code == 200
        raw = r.read()
        tier = r.headers["x-architect-cache"]
    events = []
    for block in raw.decode().split("\n\n"):
        data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
        if data:
            events.append(orjson.loads(data[0]))
    return tier, events


def _base(response_id: str) -> str:
    return response_id.removeprefix("resp_")


def test_a_cache_hit_has_its_own_ids_and_is_stored_for_its_call(
    server: LiveServer, agent_stub: AgentStub
) -> None:
    with _client(server) as client:
        tier1, first = _create(client)
        tier2, second = _create(client)
        assert (tier1, tier2) == ("miss", "hit-l1")
        assert len(agent_stub.bodies(CHAT)) == 1
        assert second.output_text == first.output_text == f"{ANSWER} cache me"
        assert second.id != first.id
        (item1,), (item2,) = first.output, second.output
        assert item1.id == f"msg_{_base(first.id)}" and item2.id == f"msg_{_base(second.id)}"
        for r in (first, second):
            got = client.responses.retrieve(r.id)
            assert (got.id, got.output[0].id, got.output_text) == (r.id, r.output[0].id, r.output_text)
        # a conversation continues from the cached answer as from any other
        nxt = client.responses.create(model="m", input="and then?", previous_response_id=second.id)
        assert nxt.previous_response_id == second.id and nxt.output_text == f"{ANSWER} and then?"
        assert agent_stub.bodies(CHAT)[-1]["messages"] == [
            {"role": "user", "content": "cache me"},
            {"role": "assistant", "content": f"{ANSWER} cache me"},
            {"role": "user", "content": "and then?"},
        ]
        # a hit that continues a conversation: stored with the whole of it, chained on
        tier3, a2 = _create(client, input="next", previous_response_id=second.id)
        tier4, b2 = _create(client, input="next", previous_response_id=second.id)
        assert (tier3, tier4) == ("miss", "hit-l1")
        assert a2.previous_response_id == b2.previous_response_id == second.id and b2.id != a2.id
        assert client.responses.retrieve(b2.id).previous_response_id == second.id
        items = client.responses.input_items.list(b2.id).data
        assert [i.type for i in items] == ["message", "message", "message"]
        b3 = client.responses.create(model="m", input="last", previous_response_id=b2.id)
        assert agent_stub.bodies(CHAT)[-1]["messages"][-2:] == [
            {"role": "assistant", "content": f"{ANSWER} next"},
            {"role": "user", "content": "last"},
        ]
        assert b3.previous_response_id == b2.id


def test_a_function_call_answer_from_the_cache_gets_its_own_item_ids(server: LiveServer) -> None:
    tools: Any = [{"type": "function", "name": "read_file", "parameters": {"type": "object"}}]
    with _client(server) as client:
        _, first = _create(client, tools=tools)
        tier, second = _create(client, tools=tools)
    assert tier == "hit-l1" and second.id != first.id
    (c1,), (c2,) = first.output, second.output
    assert c1.type == c2.type == "function_call"
    assert (c1.id, c2.id) == (f"fc_{_base(first.id)}_0", f"fc_{_base(second.id)}_0")
    assert c1.call_id == c2.call_id == "call_1"  # the upstream's own: kept


def test_across_keys_sharing_the_cache(agent_stub: AgentStub) -> None:
    cfg = _config(agent_stub, cache={"namespace": "project"})
    with LiveServer(cfg) as server:
        keys = KeyService(server.store.keys, server.store.budgets, server.store.audit)
        s1, _ = keys.create(name="one", actor="test", tags={"project": "shared"})
        s2, _ = keys.create(name="two", actor="test", tags={"project": "shared"})
        with _client(server, s1) as one, _client(server, s2) as two:
            tier1, mine = _create(one)
            tier2, theirs = _create(two)
            assert (tier1, tier2) == ("miss", "hit-l1") and len(agent_stub.bodies(CHAT)) == 1
            assert theirs.id != mine.id
            assert one.responses.retrieve(mine.id).id == mine.id
            assert two.responses.retrieve(theirs.id).id == theirs.id
            for client, other in ((one, theirs.id), (two, mine.id)):
                with pytest.raises(openai.NotFoundError):
                    client.responses.retrieve(other)
            nxt = two.responses.create(model="m", input="more", previous_response_id=theirs.id)
            assert nxt.previous_response_id == theirs.id


def test_stream_replay_of_a_cached_answer(server: LiveServer) -> None:
    tier1, streamed = _stream(server)
    tier2, replayed = _stream(server)
    with _client(server) as client:
        tier3, plain = _create(client)
        assert (tier1, tier2, tier3) == ("miss", "hit-l1", "hit-l1")
        first, second = streamed[-1]["response"], replayed[-1]["response"]
        assert replayed[-1]["type"] == "response.completed"
        assert len({first["id"], second["id"], plain.id}) == 3
        # every event of the replay carries the new call's ids
        rid = second["id"]
        assert all(e["response"]["id"] == rid for e in replayed if "response" in e)
        item_ids = {e.get("item_id") or e["item"]["id"] for e in replayed if "item_id" in e or "item" in e}
        assert item_ids == {f"msg_{_base(rid)}_0"}  # as a stream makes them (from the first, streamed)
        assert [e["sequence_number"] for e in replayed] == list(range(len(replayed)))
        text = "".join(e["delta"] for e in replayed if e["type"] == "response.output_text.delta")
        assert text == plain.output_text == f"{ANSWER} cache me"
        for r in (first, second):
            got = client.responses.retrieve(r["id"])
            assert got.id == r["id"] and got.output[0].id == r["output"][0]["id"]
        assert client.responses.retrieve(plain.id).id == plain.id


def test_store_false_on_a_hit_stores_nothing_and_on_the_original_does_not_matter(
    server: LiveServer,
) -> None:
    with _client(server) as client:
        _, kept = _create(client)
        tier, gone = _create(client, store=False)
        assert tier == "hit-l1" and gone.store is False and gone.id != kept.id
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(gone.id)
        tier, streamed = _stream(server, store=False)
        assert tier == "hit-l1" and streamed[-1]["response"]["store"] is False
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(streamed[-1]["response"]["id"])
        # the other way round: an answer first made with store: false, then a hit that keeps it
        _, first = _create(client, input="unkept", store=False)
        tier, second = _create(client, input="unkept")
        assert tier == "hit-l1" and second.store is True
        assert client.responses.retrieve(second.id).id == second.id
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(first.id)


async def test_coalesced_calls_get_their_own_ids(server: LiveServer, agent_stub: AgentStub) -> None:
    agent_stub.delay_s = 0.5
    headers = {"authorization": "Bearer x"}
    async with httpx.AsyncClient(base_url=server.url, timeout=20, headers=headers) as c:
        rs = await asyncio.gather(*[c.post("/v1/responses", json=ASK) for _ in range(4)])
    assert [r.status_code for r in rs] == [200] * 4
    assert len(agent_stub.bodies(CHAT)) == 1
    assert sorted(r.headers["x-architect-cache"] for r in rs) == ["hit-l1"] * 3 + ["miss"]
    ids = [r.json()["id"] for r in rs]
    assert len(set(ids)) == 4
    async with httpx.AsyncClient(base_url=server.url, timeout=20, headers=headers) as c:
        for r in rs:
            got = await c.get(f"/v1/responses/{r.json()['id']}")
            assert got.status_code == 200 and got.json() == r.json()


def test_a_native_answer_from_the_cache(agent_stub: AgentStub) -> None:
    with LiveServer(_config(agent_stub, native=True)) as server, _client(server) as client:
        tier1, first = _create(client)
        tier2, second = _create(client)
        tier3, events = _stream(server)
        assert (tier1, tier2, tier3) == ("miss", "hit-l1", "hit-l1")
        assert len(agent_stub.bodies("/v1/responses")) == 1
        assert first.id == "resp_native_1"  # the provider's
        third = events[-1]["response"]
        assert second.id.startswith("resp_") and len({first.id, second.id, third["id"]}) == 3
        # the provider's item ids are the provider's: kept
        assert first.output[0].id == second.output[0].id == third["output"][0]["id"] == "msg_native_1"
        for rid in (first.id, second.id, third["id"]):
            assert client.responses.retrieve(rid).output_text == "NATIVE"
