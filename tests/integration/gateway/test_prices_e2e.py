"""Prices through the gateway, against a real stub upstream on 127.0.0.1: a configured price, a price
from the catalogue (a provider whose `prices_from` names OpenAI, as a proxy in front of it would) and
an unknown price (a local model without `price:`). The ledger row says where each cost came from, the
rollups and the REST API count the unpriced call and never add it in as $0.00, and a budgeted key is
charged the dearest known price of the group for an unknown-priced call, or skips a group where no
price is known."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from architect.access.keys import KeyService
from architect.store import Store
from tests.helpers import LiveServer, free_port, make_config
from tests.stubs.openai_stub import StubServer

MSG = [{"role": "user", "content": "Say hello."}]


def _config(stub_url: str) -> dict[str, Any]:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: every attempt fails at once
    return {
        "providers": [
            {"name": "stub", "kind": "openai", "base_url": stub_url},
            {"name": "proxy", "kind": "openai", "base_url": stub_url, "prices_from": "openai"},
            {"name": "dead", "kind": "openai", "base_url": dead},
        ],
        "models": [
            {
                "name": "priced",
                "deployments": [
                    {
                        "provider": "stub",
                        "model": "m1",
                        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                    }
                ],
            },
            {"name": "catalogued", "deployments": [{"provider": "proxy", "model": "gpt-4o-mini"}]},
            {"name": "local", "deployments": [{"provider": "stub", "model": "qwen"}]},
            {
                "name": "mixed",
                "deployments": [
                    {"provider": "stub", "model": "qwen-mixed", "name": "mixed-unknown"},
                    {
                        "provider": "dead",
                        "model": "dear",
                        "name": "mixed-dear",
                        "price": {"input_per_mtok": 100.0, "output_per_mtok": 200.0},
                    },
                ],
                "retry": {"max_attempts": 3, "backoff_base_s": 0.0},
            },
        ],
    }


def _chat(srv: LiveServer, model: str, key: str | None = None, rid: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if rid:
        headers["x-request-id"] = rid
    return httpx.post(
        srv.url + "/v1/chat/completions",
        json={"model": model, "messages": MSG, "max_tokens": 16},
        headers=headers,
        timeout=20,
    )


def test_cost_source_on_the_ledger_and_unpriced_counts_in_rollups_and_api(stub: StubServer) -> None:
    with LiveServer(make_config(_config(stub.url))) as srv:
        for model in ("priced", "catalogued", "local"):
            assert _chat(srv, model, rid=f"req-{model}").status_code == 200
        rows = {r["request_id"]: r for r in srv.calls()}
        summary = httpx.get(
            srv.url + "/api/v1/metrics/summary", params={"group_by": "model_group", "percentiles": "false"}
        ).json()
        spend = httpx.get(srv.url + "/api/v1/spend", params={"by": "model_group"}).json()
        providers = httpx.get(srv.url + "/api/v1/providers").json()["deployments"]
        calls = httpx.get(srv.url + "/api/v1/calls", params={"model_group": "local"}).json()["calls"]

    priced, catalogued, local = rows["req-priced"], rows["req-catalogued"], rows["req-local"]
    p, c = priced["prompt_tokens"], priced["completion_tokens"]
    assert p > 0 and c > 0
    assert priced["cost_source"] == "config"
    assert priced["cost_usd"] == pytest.approx((p * 1.0 + c * 2.0) / 1e6)
    assert catalogued["cost_source"] == "catalogue"  # gpt-4o-mini: $0.15 in, $0.60 out per Mtok
    p, c = catalogued["prompt_tokens"], catalogued["completion_tokens"]
    assert catalogued["cost_usd"] == pytest.approx((p * 0.15 + c * 0.60) / 1e6)
    assert local["cost_source"] == "unknown" and local["cost_usd"] == 0.0
    assert calls[0]["cost_source"] == "unknown"

    by_group = {r["model_group"]: r for r in summary["rows"]}
    assert {g: r["unpriced"] for g, r in by_group.items()} == {"catalogued": 0, "local": 1, "priced": 0}
    assert by_group["local"]["cost_usd"] == 0.0 and by_group["local"]["requests"] == 1
    assert {r["model_group"]: r["unpriced"] for r in spend["rows"]} == {
        "catalogued": 0,
        "local": 1,
        "priced": 0,
    }
    sources = {d["name"]: d["price_source"] for d in providers}
    assert sources["local/stub/qwen"] == "unknown" and sources["catalogued/proxy/gpt-4o-mini"] == "catalogue"
    assert {d["name"]: d["price"] for d in providers}["local/stub/qwen"] is None


def test_a_budgeted_key_is_charged_the_dearest_known_price_or_skips_a_group_with_none(
    stub: StubServer,
) -> None:
    store = Store.memory()
    secret, _key = KeyService(store.keys, store.budgets, store.audit).create(
        name="budgeted", actor="test", budget_usd=100.0, budget_period="total"
    )
    with LiveServer(make_config(_config(stub.url)), store) as srv:
        r = _chat(srv, "mixed", key=secret, rid="req-mixed")
        assert r.status_code == 200, r.text
        assert r.headers["x-architect-deployment"] == "mixed-unknown"
        refused = _chat(srv, "local", key=secret, rid="req-local-budgeted")
        open_call = _chat(srv, "local", rid="req-local-open")  # no budget: the unknown price is no bar
        rows = {row["request_id"]: row for row in srv.calls()}

        def spent() -> float:
            return float(store.budgets.list_budgets()[0]["spent_usd"])

        deadline = time.monotonic() + 10
        while spent() == 0.0 and time.monotonic() < deadline:  # settled in the background
            time.sleep(0.01)
        charged = spent()

    row = rows["req-mixed"]
    assert row["cost_source"] == "unknown" and row["cost_usd"] == 0.0
    # the budget holds the unknown-priced call at the group's dearest known price ($100 / $200 per Mtok)
    p, c = row["prompt_tokens"], row["completion_tokens"]
    assert charged == pytest.approx((p * 100.0 + c * 200.0) / 1e6)

    assert refused.status_code == 503
    err = refused.json()["error"]
    assert err["code"] == "no_deployment"
    assert (
        "local: skipped, the price of each of its deployments is unknown and the call is under a budget"
        in (err["message"])
    )
    assert rows["req-local-budgeted"]["attempts"] == 0
    assert open_call.status_code == 200 and rows["req-local-open"]["cost_source"] == "unknown"
