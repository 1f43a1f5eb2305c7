"""Keys minted for task attempts (`access.attempt_keys.AttemptKeys`) through a real server, the stub
upstream and the openai SDK: the key's tags are pinned (a client cannot move the attempt's spend to
another task), its budget applies from its very first call, a feature's budget (scope `feature`)
stops every attempt of the feature, the key is hidden from `keys list` unless asked, and revoking it
ends its use; what it spent is read back from the ledger."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from tests.helpers import LiveServer, make_config, stub_config, wait_until
from tests.stubs.openai_stub import StubServer

from architect.access.attempt_keys import AttemptKeys
from architect.access.keys import KeyService

ADMIN = "admin-attempt-keys-0123456789"
TAGS = {"project": "shop", "feature": "checkout", "task": "T1", "attempt": "1", "agent": "coder"}


@pytest.fixture
def server() -> Iterator[LiveServer]:
    cfg = stub_config("http://127.0.0.1:9", deployments=[
        {"provider": "stub", "model": "stub-model", "local": True,  # a local-only route may reach it
         "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}])  # fmt: skip
    with StubServer() as stub:
        cfg["providers"][0]["base_url"] = stub.url
        cfg["auth"] = {"admin_key": ADMIN}
        with LiveServer(make_config(cfg)) as srv:
            yield srv


def _minter(srv: LiveServer) -> AttemptKeys:
    s = srv.store
    return AttemptKeys(KeyService(s.keys, s.budgets, s.audit), s.ledger)


def _chat(
    srv: LiveServer, secret: str, tags: str | None = None, max_tokens: int = 7
) -> openai.types.chat.ChatCompletion:
    with openai.OpenAI(base_url=srv.url + "/v1", api_key=secret, max_retries=0) as client:
        return client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi there"}], max_tokens=max_tokens,
            extra_headers={"x-architect-tags": tags} if tags else None,
        )  # fmt: skip


def test_an_attempt_key_pins_its_tags_and_its_spend_is_read_back(server: LiveServer) -> None:
    minter = _minter(server)
    start = time.time()
    key_id, secret = minter.mint(name="attempt checkout/T1#1", tags=TAGS, budget_usd=1.0)
    _chat(server, secret, tags="task=T9,feature=other,project=shop")
    rows = [r for r in server.calls() if r["key_id"] == key_id]
    assert [(r["feature"], r["task"]) for r in rows] == [("checkout", "T1")]
    usage = minter.usage(key_id, start)
    assert usage["calls"] == 1 and usage["models"] == ["m"]
    assert usage["cost_usd"] == pytest.approx(rows[0]["cost_usd"]) and usage["cost_usd"] > 0
    # hidden from the list unless asked; never a scope
    h = {"authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server.url, headers=h) as c:
        assert key_id not in [k["id"] for k in c.get("/api/v1/keys").json()["keys"]]
        listed = {k["id"]: k for k in c.get("/api/v1/keys", params={"temporary": "true"}).json()["keys"]}
    assert listed[key_id]["temporary"] is True and listed[key_id]["scopes"] == []
    minter.revoke(key_id)
    with pytest.raises(openai.AuthenticationError):
        wait_until(lambda: _chat(server, secret) and None, timeout=3)  # refused within the resolver's TTL


def test_budgets_of_a_new_attempt_key_and_of_its_feature_apply_from_the_first_call(
    server: LiveServer,
) -> None:
    minter = _minter(server)
    _, tiny = minter.mint(name="attempt checkout/T2#1", tags={**TAGS, "task": "T2"}, budget_usd=1e-9)
    with pytest.raises(openai.RateLimitError) as e:
        _chat(server, tiny)  # minted a moment ago: the gateway reads its budget before this call
    assert e.value.code == "budget_exceeded"
    minter.feature_budget("checkout", 1e-9)
    _, roomy = minter.mint(name="attempt checkout/T3#1", tags={**TAGS, "task": "T3"}, budget_usd=5.0)
    with pytest.raises(openai.RateLimitError) as e:
        _chat(server, roomy)
    assert e.value.code == "budget_exceeded" and "feature 'checkout'" in e.value.message


def test_an_attempt_key_carries_the_tasks_route_and_its_outcome_judges_its_calls(server: LiveServer) -> None:
    s = server.store
    minter = AttemptKeys(KeyService(s.keys, s.budgets, s.audit), s.ledger, routing=s.routing)
    route = {"quality_target": 0.9, "privacy": "local-only"}
    key_id, secret = minter.mint(
        name="attempt checkout/T4#1", tags={**TAGS, "task": "T4"}, budget_usd=None, route=route
    )
    assert s.keys.get_key(key_id)["route"] == route  # type: ignore[index]
    _chat(server, secret)
    server.runtime.ledger.flush()
    minter.judge(key_id, 0.0, "task")
    (rid,) = [r["request_id"] for r in server.calls() if r["key_id"] == key_id]
    assert s.routing.outcome_for(rid)["source"] == "task"  # type: ignore[index]
    minter.judge(key_id, 0.0, "escalation", replace=False)  # already judged: kept
    assert s.routing.key_outcome(key_id)["source"] == "task"  # type: ignore[index]
    plain_id, _ = minter.mint(name="attempt checkout/T5#1", tags={**TAGS, "task": "T5"}, budget_usd=None)
    assert s.keys.get_key(plain_id)["route"] is None  # type: ignore[index]
    AttemptKeys(KeyService(s.keys, s.budgets, s.audit), s.ledger).judge(
        plain_id, 1.0, "task"
    )  # no store: nothing
    assert s.routing.key_outcome(plain_id) is None
