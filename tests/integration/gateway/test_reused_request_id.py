"""A client that reuses its `x-request-id` loses nothing, on SQLite and PostgreSQL: on every endpoint
(chat completions, messages, responses, embeddings; stream and not) both calls are answered, echo
the id as a correlation value and get a ledger row (the later one under `<id>:<16 hex>`); their
Responses API objects have ids of their own (the gateway's, never the client's), each stored and
read back by its own id; and a response whose id is already taken in the store never drops the other
responses of its batch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from architect.gateway import call as call_module
from architect.store import Store, open_store
from tests.helpers import LiveServer, make_config, stub_config, wait_until
from tests.stubs.openai_stub import StubServer

MSG = [{"role": "user", "content": "hi"}]
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": "m", "messages": MSG}),
    "chat-stream": ("/v1/chat/completions", {"model": "m", "messages": MSG, "stream": True}),
    "messages": ("/v1/messages", {"model": "m", "max_tokens": 16, "messages": MSG}),
    "messages-stream": ("/v1/messages", {"model": "m", "max_tokens": 16, "messages": MSG, "stream": True}),
    "responses": ("/v1/responses", {"model": "m", "input": "hi"}),
    "responses-stream": ("/v1/responses", {"model": "m", "input": "hi", "stream": True}),
    "embeddings": ("/v1/embeddings", {"model": "m", "input": "hi"}),
}


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url, migrate="upgrade")
    yield s
    s.close()


def _server(stub: StubServer, store: Store, **extra: Any) -> LiveServer:
    return LiveServer(make_config({**stub_config(stub.url), **extra}), store)


def _ledger(srv: LiveServer, n: int) -> dict[str, dict[str, Any]]:
    rows: list[dict[str, Any]] = wait_until(lambda: (r := srv.calls()) and len(r) >= n and r)  # type: ignore[assignment]
    return {r["request_id"]: r for r in rows}


def _stored(store: Store, response_id: str) -> str | None:
    """The stored document of a response, read from the database (not the gateway's memory)."""
    return store.responses.get(response_id, "anonymous", time.time())


def test_every_endpoint_records_both_calls_of_a_reused_request_id(stub: StubServer, store: Store) -> None:
    with _server(stub, store) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        for name, (path, body) in CALLS.items():
            for _ in range(2):
                r = c.post(path, json=body, headers={"x-request-id": f"same-{name}"})
                assert r.status_code == 200, (name, r.text)
                assert r.headers["x-request-id"] == f"same-{name}"  # the client's id, echoed
        rows = _ledger(srv, 2 * len(CALLS))
    assert len(rows) == 2 * len(CALLS) and srv.runtime.ledger.quarantined == 0
    assert srv.runtime.ledger.renamed == len(CALLS)
    for name in CALLS:
        rid = f"same-{name}"
        (again,) = [k for k in rows if k.startswith(f"{rid}:")]
        assert len(again) == len(rid) + 17
        first, second = rows[rid], rows[again]
        endpoint = name.removesuffix("-stream")
        assert first["endpoint"] == second["endpoint"] == endpoint
        assert first["status"] == second["status"] == "ok"


@pytest.mark.parametrize("stream", [False, True])
def test_two_responses_with_one_request_id_are_both_stored_under_their_own_ids(
    stub: StubServer, store: Store, stream: bool
) -> None:
    with _server(stub, store, responses={"write_interval_ms": 1}) as srv:
        with httpx.Client(base_url=srv.url, timeout=20) as c:
            ids = []
            for text in ("first question", "second question"):
                body = {"model": "m", "input": text, "stream": stream}
                r = c.post("/v1/responses", json=body, headers={"x-request-id": "reused"})
                assert r.status_code == 200
                if stream:
                    done = [ln for ln in r.text.splitlines() if '"type":"response.completed"' in ln]
                    ids.append(httpx.Response(200, content=done[0][6:]).json()["response"]["id"])
                else:
                    ids.append(r.json()["id"])
            assert ids[0] != ids[1] and all(i.startswith("resp_") and "reused" not in i for i in ids)
            docs = [wait_until(lambda i=i: _stored(store, i)) for i in ids]  # written, not only pending
            for rid, text, doc in zip(ids, ("first question", "second question"), docs, strict=True):
                assert text in str(doc)
                assert c.get(f"/v1/responses/{rid}").json()["id"] == rid
                items = c.get(f"/v1/responses/{rid}/input_items").json()["data"]
                assert items[0]["content"] == text or items[0]["content"][0]["text"] == text
                follow = c.post(
                    "/v1/responses", json={"model": "m", "input": "and?", "previous_response_id": rid}
                )
                assert follow.status_code == 200
        rows = _ledger(srv, 4)
    assert "reused" in rows and any(k.startswith("reused:") for k in rows) and len(rows) == 4


def test_a_response_whose_id_is_taken_never_drops_the_rest_of_its_batch(
    stub: StubServer, store: Store
) -> None:
    # the next call's response id, already taken in the store by another key's row: the batch that
    # row is written in holds the other calls' responses too (one write every 300 ms)
    n = next(call_module._ids)
    taken = f"resp_{call_module._ID_PREFIX}{n + 1:010x}"
    other = {"id": taken, "key_id": "someone-else", "created_at": 1.0, "expires_at": time.time() + 3600}
    assert store.responses.put([{**other, "size": 2, "body": "{}"}]) == []
    srv = _server(stub, store, responses={"write_interval_ms": 300})
    with srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        ids = [c.post("/v1/responses", json={"model": "m", "input": f"q{i}"}).json()["id"] for i in range(5)]
        assert ids[0] == taken
        for rid in ids[1:]:  # every other response of the batch is written
            assert wait_until(lambda rid=rid: _stored(store, rid)) is not None
            assert c.get(f"/v1/responses/{rid}").status_code == 200
    assert store.responses.get(taken, "someone-else", time.time()) == "{}"  # the row there is kept
    assert _stored(store, taken) is None
