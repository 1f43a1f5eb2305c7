"""Outcomes and learning through the real app: `POST /v1/feedback` (validation naming the field, a call
just made is found, another key's call is a 404, a second judgement replaces the first), `GET
/api/v1/quality` (counts, posterior and interval per group and task type; auto groups' shares,
predicted vs observed, explorations, saving; a key sees only its projects), and the project settings
(`/api/v1/projects/{project}/settings`: who may read and write, validation, audit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from architect.access.keys import KeyService
from architect.records import CallRecord
from tests.helpers import LiveServer, make_config

ADMIN = "sk-admin-test"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    cfg = make_config(
        {
            "auth": {"admin_key": ADMIN},
            "providers": [{"name": "sim", "kind": "simulated"}],
            "models": [
                {
                    "name": "small",
                    "deployments": [{"provider": "sim", "model": "s", "simulate": {"ttft_ms": 1}}],
                }
            ],
        }
    )
    with LiveServer(cfg) as s:
        yield s


@pytest.fixture(scope="module")
def keys(server: LiveServer) -> dict[str, str]:
    svc = KeyService(server.store.keys, server.store.budgets, server.store.audit)
    a, _ = svc.create(name="alpha", actor="test", tags={"project": "pa"})
    b, _ = svc.create(name="bravo", actor="test", tags={"project": "pb"})
    ops, _ = svc.create(name="ops", actor="test", projects=["pa"], scopes=["tasks:execute"])
    return {"a": a, "b": b, "ops": ops, "admin": ADMIN}


def _h(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _chat(server: LiveServer, key: str) -> str:
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers=_h(key),
        json={"model": "small", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 200, r.text
    return r.headers["x-request-id"]


def _feedback(server: LiveServer, key: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/feedback", headers=_h(key), json=body)


def test_feedback_on_a_call_just_made_is_scoped_to_its_key(server: LiveServer, keys: dict[str, str]) -> None:
    rid = _chat(server, keys["a"])
    r = _feedback(server, keys["a"], {"request_id": rid, "passed": True, "comment": "good"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "request_id": rid,
        "outcome": 1.0,
        "model_group": "small",
        "task_type": "unknown",
    }  # no type or role tag
    other = _feedback(server, keys["b"], {"request_id": rid, "score": 0.0})
    assert other.status_code == 404 and other.json()["error"]["param"] == "request_id"
    assert _feedback(server, keys["a"], {"request_id": "missing", "score": 1}).status_code == 404
    again = _feedback(server, keys["a"], {"request_id": rid, "score": 0.25})
    assert again.json()["outcome"] == 0.25
    row = server.store.routing.outcome_for(rid)
    assert row is not None and row["outcome"] == 0.25 and row["comment"] is None and row["project"] == "pa"
    assert _feedback(server, keys["admin"], {"request_id": rid, "passed": False}).status_code == 200


def test_feedback_on_a_reused_request_id_judges_the_newest_call(
    server: LiveServer, keys: dict[str, str]
) -> None:
    """Two calls under one `x-request-id`, then feedback by it: the second call is judged, and the
    answer names the id the ledger records it under."""
    sent = []
    for _ in range(2):
        r = httpx.post(
            f"{server.url}/v1/chat/completions",
            headers={**_h(keys["a"]), "x-request-id": "reused-id-1"},
            json={"model": "small", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "reused-id-1"
        sent.append(r)
    r = _feedback(server, keys["a"], {"request_id": "reused-id-1", "score": 0.5})
    assert r.status_code == 200, r.text
    judged = r.json()["request_id"]
    assert judged.startswith("reused-id-1:") and len(judged) == len("reused-id-1:") + 16
    first, second = server.store.ledger.get_call("reused-id-1"), server.store.ledger.get_call(judged)
    assert first is not None and second is not None and second["ts"] >= first["ts"]
    assert server.store.routing.outcome_for(judged) is not None
    assert server.store.routing.outcome_for("reused-id-1") is None


def test_a_key_reads_its_call_under_an_id_another_key_took(server: LiveServer, keys: dict[str, str]) -> None:
    for who in ("b", "a"):  # bravo takes the id first; alpha's call is recorded under a derived id
        r = httpx.post(
            f"{server.url}/v1/chat/completions",
            headers={**_h(keys[who]), "x-request-id": "taken-id-7"},
            json={"model": "small", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.status_code == 200
    server.runtime.ledger.flush()
    mine = httpx.get(f"{server.url}/api/v1/calls/taken-id-7", headers=_h(keys["a"]))
    assert mine.status_code == 200, mine.text
    assert mine.json()["call"]["request_id"].startswith("taken-id-7:")
    theirs = httpx.get(f"{server.url}/api/v1/calls/taken-id-7", headers=_h(keys["b"]))
    assert theirs.status_code == 200 and theirs.json()["call"]["request_id"] == "taken-id-7"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"request_id": "r", "score": 0.5, "passed": True}, "score"),
        ({"request_id": "r"}, "score"),
        ({"request_id": "r", "score": 1.5}, "score"),
        ({"request_id": "r", "score": True}, "score"),
        ({"request_id": "r", "score": "1"}, "score"),
        ({"request_id": "r", "passed": "yes"}, "passed"),
        ({"request_id": "r", "passed": 1}, "passed"),
        ({"request_id": "r", "passed": True, "comment": "x" * 2001}, "comment"),
        ({"request_id": "r", "passed": True, "comment": 5}, "comment"),
        ({"score": 1}, "request_id"),
        ({"request_id": "has space", "score": 1}, "request_id"),
        ({"request_id": "r", "score": 1, "model": "x"}, "model"),
    ],
)
def test_feedback_validation_names_the_field(
    server: LiveServer, keys: dict[str, str], body: dict[str, Any], param: str
) -> None:
    r = _feedback(server, keys["a"], body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error" and param in err["message"]


def test_feedback_needs_a_key_a_json_body_and_post(server: LiveServer, keys: dict[str, str]) -> None:
    assert _feedback(server, "sk-nope", {"request_id": "r", "score": 1}).status_code == 401
    assert httpx.get(f"{server.url}/v1/feedback", headers=_h(keys["a"])).status_code == 405
    r = httpx.post(f"{server.url}/v1/feedback", headers=_h(keys["a"]), content=b"[1]")
    assert r.status_code == 400 and "error" in r.json()


def test_quality_figures_and_what_a_key_sees(server: LiveServer, keys: dict[str, str]) -> None:
    common = {"endpoint": "chat", "model": "auto", "routed_by": "auto", "task_type": "code", "ts": 1e9}
    server.store.ledger.record([
        CallRecord(request_id="q1", key_id="kq", project="pa", model_group="small", cost_usd=0.01,
                   baseline_cost_usd=0.1, route_scores={"small": 0.9, "large": 0.95}, **common),
        CallRecord(request_id="q2", key_id="kq", project="pa", model_group="small", cost_usd=0.01, **common),
        CallRecord(request_id="q3", key_id="kq", project="pb", model_group="large", cost_usd=0.05,
                   explored=True, route_scores={"small": 0.2, "large": 0.6}, **common),
    ])  # fmt: skip
    repo = server.store.routing
    repo.record_feedback("q1", None, 1.0)
    repo.record_feedback("q3", None, 0.0)
    r = httpx.get(f"{server.url}/api/v1/quality", headers=_h(ADMIN), params={"since": 0})
    assert r.status_code == 200, r.text
    out = r.json()
    rows = {(x["model_group"], x["task_type"]): x for x in out["rows"]}
    code = rows[("small", "code")]
    assert (code["n"], code["successes"], code["prior"]) == (1, 1.0, 0.7)
    assert code["interval"][0] < code["mean"] < code["interval"][1]
    (auto,) = out["auto"]
    cands = {c["model_group"]: c for c in auto["candidates"]}
    assert (
        auto["calls"] == 3
        and auto["explored"] == 1
        and auto["explored_share"] == pytest.approx(1 / 3, abs=1e-3)
    )
    assert auto["saving_usd"] == pytest.approx(0.09) and auto["explored_cost_usd"] == pytest.approx(0.05)
    assert cands["small"]["share"] == pytest.approx(2 / 3, abs=1e-3)
    assert (cands["small"]["predicted_mean"], cands["small"]["observed_mean"]) == (0.9, 1.0)
    assert (cands["large"]["predicted_mean"], cands["large"]["observed_mean"]) == (0.6, 0.0)
    # a key sees its own projects' figures only
    mine = httpx.get(f"{server.url}/api/v1/quality", headers=_h(keys["a"]), params={"since": 0}).json()
    assert {c["model_group"] for a in mine["auto"] for c in a["candidates"]} == {"small"}
    assert ("large", "code") not in {(x["model_group"], x["task_type"]) for x in mine["rows"]}
    denied = httpx.get(f"{server.url}/api/v1/quality", headers=_h(keys["a"]), params={"project": "pb"})
    assert denied.status_code == 403 and denied.json()["error"]["param"] == "project"
    proj = httpx.get(
        f"{server.url}/api/v1/quality", headers=_h(ADMIN), params={"project": "pb", "since": 0}
    ).json()
    assert [(x["model_group"], x["project"], x["n"]) for x in proj["rows"]] == [("large", "pb", 1)]
    grp = httpx.get(
        f"{server.url}/api/v1/quality", headers=_h(ADMIN), params={"group": "auto", "since": 0}
    ).json()
    assert {x["model_group"] for x in grp["rows"]} <= {"small", "large"} and len(grp["auto"]) == 1


def test_project_settings_read_write_and_validation(server: LiveServer, keys: dict[str, str]) -> None:
    url = f"{server.url}/api/v1/projects/pa/settings"
    assert httpx.get(url, headers=_h(keys["a"])).json() == {
        "project": "pa", "settings": {}, "updated_at": None, "updated_by": None
    }  # fmt: skip
    body = {"quality_target": 0.9, "privacy": "local-only"}
    denied = httpx.put(url, headers=_h(keys["a"]), json=body)  # granted the project, no scope
    assert denied.status_code == 403
    assert httpx.get(url, headers=_h(keys["b"])).status_code == 404  # another project's: not revealed
    assert httpx.put(url, headers=_h(keys["b"]), json=body).status_code == 404
    ok = httpx.put(url, headers=_h(keys["ops"]), json=body)
    assert ok.status_code == 200, ok.text
    assert ok.json()["settings"] == body and ok.json()["updated_by"].startswith("key:")
    assert httpx.get(url, headers=_h(keys["a"])).json()["settings"] == body
    for bad, param in (({"quality_target": 1.5}, "quality_target"), ({"quality_target": 0}, "quality_target"),
                       ({"cost_weight": -1}, "cost_weight"), ({"privacy": "none"}, "privacy"),
                       ({"quality_target": True}, "quality_target"), ({"quality": 0.5}, "quality")):  # fmt: skip
        r = httpx.put(url, headers=_h(ADMIN), json=bad)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    assert httpx.put(url, headers=_h(ADMIN), json={"cost_weight": 1}).json()["settings"] == {
        "cost_weight": 1.0
    }
    audit = server.store.audit.list_audit(since=0, limit=10, action="project.settings")
    assert audit and audit[0]["target"] == "pa"
    assert httpx.delete(url, headers=_h(keys["a"])).status_code == 403
    assert httpx.delete(url, headers=_h(ADMIN)).json() == {"project": "pa", "deleted": True}
    assert httpx.delete(url, headers=_h(ADMIN)).status_code == 404
