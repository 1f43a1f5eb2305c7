"""The `auto` route and the hard constraints through the gateway, against a real stub upstream on
127.0.0.1: an auto group picks the cheap or the strong candidate by the knob (request header, body
metadata, key), on all three inbound APIs; a local-only key goes only to `local: true` deployments (an
auto group's local candidate, a normal group's local fallback) or gets a 400 naming the constraint; bad
route settings get a 400 in the API's own error shape naming the field; the ledger records the
decision (on SQLite and PostgreSQL too); /v1/models lists the auto group."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.helpers import LiveServer, make_config
from tests.stubs.openai_stub import StubServer

ADMIN = "sk-admin-auto-route-test"
MSG = [{"role": "user", "content": "Summarise the plot of Hamlet in one line."}]


def _config(url: str) -> dict[str, Any]:
    def dep(model: str, price: float, **kw: Any) -> dict[str, Any]:
        return {
            "provider": "stub",
            "model": model,
            "price": {"input_per_mtok": price, "output_per_mtok": price * 4},
            **kw,
        }

    return {
        "providers": [{"name": "stub", "kind": "openai", "base_url": url}],
        "auth": {"admin_key": ADMIN},
        "models": [
            {"name": "small", "deployments": [dep("small-m", 0.1, local=True)]},
            {"name": "large", "deployments": [dep("large-m", 5.0)]},
            {
                "name": "auto",
                "strategy": "auto",
                "candidates": ["large", "small"],
                "exploration": {"share": 0.0},
            },
            {
                "name": "mixed",
                "deployments": [
                    dep("mixed-cloud", 1.0, weight=100),
                    dep("mixed-local", 1.0, weight=1, local=True),
                ],
            },
            {"name": "tiny", "deployments": [dep("tiny-m", 0.01, context_window=100)]},
            {"name": "auto-tiny", "strategy": "auto", "candidates": ["tiny"]},
            {"name": "cloud", "fallbacks": ["onprem"], "deployments": [dep("cloud-m", 1.0)]},
            {"name": "onprem", "deployments": [dep("onprem-m", 0.0, local=True)]},
            {"name": "cloudonly", "deployments": [dep("cloudonly-m", 1.0, tools=False)]},
        ],
    }


@pytest.fixture
def server(stub: StubServer) -> Iterator[LiveServer]:
    with LiveServer(make_config(_config(stub.url))) as srv:
        yield srv


def _chat(
    srv: LiveServer, model: str, *, key: str = ADMIN, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    return httpx.post(
        srv.url + "/v1/chat/completions",
        json={"model": model, "messages": MSG, "max_tokens": 16, **body},
        headers={"authorization": f"Bearer {key}", **(headers or {})},
        timeout=20,
    )


def _sent_model(stub: StubServer) -> str:
    return str(stub.requests[-1]["body"]["model"])


def test_auto_picks_cheap_or_strong_by_the_knob_and_records_the_decision(
    server: LiveServer, stub: StubServer
) -> None:
    # no settings: the default quality_target 0.8; the prior (by price tier) says small 0.55, large 0.85
    r = _chat(server, "auto", headers={"x-architect-tags": "type=summarise", "x-request-id": "auto-default"})
    assert r.status_code == 200, r.text
    assert _sent_model(stub) == "large-m"
    assert r.headers["x-architect-route"] == "group=large; p=0.850; quality_target=0.8; source=default"
    r = _chat(server, "auto", headers={"x-architect-route": "quality=0.5", "x-request-id": "auto-cheap"})
    assert r.status_code == 200 and _sent_model(stub) == "small-m"
    assert r.headers["x-architect-route"] == "group=small; p=0.550; quality_target=0.5; source=request"
    r = _chat(server, "auto", metadata={"architect_route": "cost_weight=1", "project": "p1"}, user="u")
    assert r.status_code == 200 and _sent_model(stub) == "small-m"
    assert "cost_weight=1; source=request" in r.headers["x-architect-route"]
    rows = {c["request_id"]: c for c in server.calls()}
    row = rows["auto-default"]
    assert row["model"] == "auto" and row["routed_by"] == "auto" and row["model_group"] == "large"
    assert orjson.loads(row["route_scores"]) == {"small": 0.55, "large": 0.85}
    assert row["task_type"] == "summarise" and not row["explored"] and row["fallbacks"] == 0
    assert row["route_reason"].startswith(
        "auto: cheapest with P>=0.80 (quality_target from default): small 0.55; large 0.85"
    )
    assert rows["auto-cheap"]["model_group"] == "small" and rows["auto-cheap"]["task_type"] == "unknown"
    meta = next(c for c in rows.values() if c["project"] == "p1")
    assert "architect_route" not in orjson.loads(meta["tags"])  # route settings are not a tag
    # a plain group: no decision, the task type still recorded
    assert _chat(server, "large", headers={"x-request-id": "plain"}).status_code == 200
    plain = {c["request_id"]: c for c in server.calls()}["plain"]
    assert plain["routed_by"] is None and plain["route_scores"] is None and plain["task_type"] == "unknown"
    models = httpx.get(server.url + "/v1/models", headers={"authorization": f"Bearer {ADMIN}"}).json()
    assert "auto" in [m["id"] for m in models["data"]]
    detail = httpx.get(
        server.url + "/api/v1/calls/auto-default", headers={"authorization": f"Bearer {ADMIN}"}
    )
    call = detail.json()["call"]
    assert call["route_scores"] == {"small": 0.55, "large": 0.85} and call["routed_by"] == "auto"
    ready = httpx.get(server.url + "/readyz", headers={"authorization": f"Bearer {ADMIN}"}).json()
    assert ready["checks"]["models"]["auto"] == {"available": True, "candidates": ["large", "small"]}


def test_auto_on_the_messages_and_responses_apis(server: LiveServer, stub: StubServer) -> None:
    h = {"authorization": f"Bearer {ADMIN}", "x-architect-route": "quality=0.5"}
    r = httpx.post(
        server.url + "/v1/messages",
        json={"model": "auto", "max_tokens": 16, "messages": MSG},
        headers={**h, "anthropic-version": "2023-06-01"},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "message" and _sent_model(stub) == "small-m"
    assert r.headers["x-architect-route"].startswith("group=small;")
    r = httpx.post(server.url + "/v1/responses", json={"model": "auto", "input": "Hi"}, headers=h, timeout=20)
    assert r.status_code == 200, r.text
    assert r.json()["object"] == "response" and _sent_model(stub) == "small-m"
    r = httpx.post(
        server.url + "/v1/responses",
        json={"model": "auto", "input": "Hi", "metadata": {"architect_route": "quality=0.9"}},
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=20,
    )
    assert r.status_code == 200 and _sent_model(stub) == "large-m"
    assert r.json()["metadata"] == {"architect_route": "quality=0.9"}  # echoed as sent


def test_bad_route_settings_get_a_400_in_the_apis_own_shape_naming_the_field(
    server: LiveServer, stub: StubServer
) -> None:
    r = _chat(server, "auto", headers={"x-architect-route": "quality=1.5"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "x-architect-route.quality" and err["type"] == "invalid_request_error"
    r = _chat(server, "large", metadata={"architect_route": "privacy=public"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "metadata.architect_route.privacy"
    r = httpx.post(
        server.url + "/v1/messages",
        json={"model": "auto", "max_tokens": 16, "messages": MSG},
        headers={
            "x-api-key": ADMIN,
            "anthropic-version": "2023-06-01",
            "x-architect-route": "cost_weight=-1",
        },
        timeout=20,
    )
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("x-architect-route.cost_weight")
    assert stub.requests == []  # nothing was sent upstream


def test_a_local_only_key_goes_only_to_local_deployments(server: LiveServer, stub: StubServer) -> None:
    admin = {"authorization": f"Bearer {ADMIN}"}
    r = httpx.post(
        server.url + "/api/v1/keys",
        json={"name": "private", "route": {"privacy": "local-only", "quality_target": 0.6}},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    key, key_id = r.json()["key"], r.json()["id"]
    assert r.json()["route"] == {"quality_target": 0.6, "privacy": "local-only"}
    # an auto group: only its local candidate is eligible, whatever the knob
    r = _chat(server, "auto", key=key, headers={"x-architect-route": "quality=0.9; privacy=any"})
    assert r.status_code == 200, r.text
    assert _sent_model(stub) == "small-m"
    # a normal group whose own deployment is not local: its local fallback serves the call
    r = _chat(server, "cloud", key=key, headers={"x-request-id": "private-cloud"})
    assert r.status_code == 200 and _sent_model(stub) == "onprem-m"
    row = {c["request_id"]: c for c in server.calls()}["private-cloud"]
    assert (
        row["model_group"] == "cloud"
        and row["deployment"].startswith("onprem/")
        and row["fallbacks"] == 1
        and row["attempts"] == 1
    )
    # a weighted group mixing both: always its local deployment (by weight it would be the cloud one)
    for _ in range(5):
        r = _chat(server, "mixed", key=key)
        assert r.status_code == 200 and _sent_model(stub) == "mixed-local"
        assert r.headers["x-architect-deployment"].startswith("mixed/stub/mixed-local")
    # the request alone may ask for it too (any key)
    r = _chat(server, "mixed", headers={"x-architect-route": "privacy=local-only"})
    assert r.status_code == 200 and _sent_model(stub) == "mixed-local"
    n = len(stub.requests)
    r = _chat(server, "cloudonly", key=key)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "privacy" and err["message"].startswith("privacy: local-only: ")
    assert len(stub.requests) == n
    # tools on a group whose deployment cannot take them: a 400 naming tools
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    r = _chat(server, "cloudonly", tools=tools)
    assert r.status_code == 400 and r.json()["error"]["param"] == "tools"
    # the key's route changed through the API: in force at once
    r = httpx.patch(
        server.url + f"/api/v1/keys/{key_id}", json={"route": {"quality_target": 0.9}}, headers=admin
    )
    assert r.status_code == 200 and r.json()["route"] == {"quality_target": 0.9}
    r = _chat(server, "auto", key=key)
    assert r.status_code == 200 and _sent_model(stub) == "large-m"
    assert r.headers["x-architect-route"].endswith("source=key")
    r = httpx.patch(
        server.url + f"/api/v1/keys/{key_id}", json={"route": {"quality_target": 2}}, headers=admin
    )
    assert r.status_code == 400 and "quality_target" in r.text
    r = httpx.post(
        server.url + "/api/v1/keys", json={"name": "x", "route": {"privacy": "cloud"}}, headers=admin
    )
    assert r.status_code == 400 and "privacy" in r.text


def test_the_ledger_records_the_decision_on_sqlite_and_postgresql(stub: StubServer, db_url: str) -> None:
    from architect.store import open_store

    open_store(db_url, migrate="upgrade").close()
    with LiveServer(make_config(_config(stub.url)), database_url=db_url) as srv:
        r = _chat(srv, "auto", headers={"x-architect-route": "quality=0.5", "x-architect-tags": "role=coder"})
        assert r.status_code == 200
        (row,) = srv.calls()
    assert row["routed_by"] == "auto" and row["model_group"] == "small" and row["task_type"] == "coder"
    assert orjson.loads(row["route_scores"]) == {"small": 0.55, "large": 0.85} and row["explored"] is False


def test_a_stream_through_auto_and_a_prompt_no_candidate_can_hold(
    server: LiveServer, stub: StubServer
) -> None:
    with httpx.stream(
        "POST",
        server.url + "/v1/chat/completions",
        json={"model": "auto", "messages": MSG, "stream": True},
        headers={"authorization": f"Bearer {ADMIN}", "x-architect-route": "quality=0.5"},
        timeout=20,
    ) as r:
        assert r.status_code == 200
        assert r.headers["x-architect-route"].startswith("group=small;")
        assert b"[DONE]" in r.read()
    assert _sent_model(stub) == "small-m"
    long = [{"role": "user", "content": "word " * 400}]
    r = _chat(server, "auto-tiny", messages=long)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["message"].startswith("context window: ") and err["code"] == "context_length_exceeded"
    models = httpx.get(
        server.url + "/v1/models", headers={"x-api-key": ADMIN, "anthropic-version": "2023-06-01"}
    ).json()
    assert {"auto", "auto-tiny"} <= {m["id"] for m in models["data"]}
