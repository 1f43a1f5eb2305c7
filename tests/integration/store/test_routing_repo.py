"""The auto route's state (`store.routing`) behaves the same on the memory store's double, SQLite and
PostgreSQL: project settings, feedback scoped to the call's key, key outcomes applied at once and by
the sweep (never over an outcome a call already has), outcomes followed by id with their features,
the quality counts, and what auto routes did."""

from __future__ import annotations

from typing import Any

import pytest

from architect.records import CallRecord
from architect.store import Store


def _call(rid: str, key: str | None = "k1", **kw: Any) -> CallRecord:
    base: dict[str, Any] = {
        "request_id": rid, "ts": 100.0, "endpoint": "chat", "model": "auto", "key_id": key,
        "project": "p1", "model_group": "small", "task_type": "code",
    }  # fmt: skip
    return CallRecord(**{**base, **kw})


def test_project_settings(store: Store) -> None:
    repo = store.routing
    assert repo.get_settings("p1") is None and repo.list_settings() == []
    row = repo.put_settings(
        "p1", {"quality_target": 0.9, "privacy": "local-only"}, actor="admin-key", now=5.0
    )
    assert row == {
        "project": "p1", "quality_target": 0.9, "cost_weight": None, "privacy": "local-only",
        "updated_at": 5.0, "updated_by": "admin-key",
    }  # fmt: skip
    assert repo.get_settings("p1") == row
    repo.put_settings("p1", {"cost_weight": 0.2}, actor="key:x", now=6.0)  # replaces every field
    got = repo.get_settings("p1")
    assert got is not None and (got["quality_target"], got["cost_weight"], got["privacy"]) == (
        None,
        0.2,
        None,
    )
    repo.put_settings("p0", {"quality_target": 0.5}, actor="a")
    assert [r["project"] for r in repo.list_settings()] == ["p0", "p1"]
    assert repo.delete_settings("p1") is True and repo.delete_settings("p1") is False
    assert repo.get_settings("p1") is None


def test_feedback_is_scoped_to_the_calls_key_and_replaces(store: Store) -> None:
    store.ledger.record([_call("r1"), _call("r2", key="k2", model_group="large")])
    repo = store.routing
    assert repo.record_feedback("r1", "k2", 1.0) is None  # another key's call
    assert repo.record_feedback("nope", "k1", 1.0) is None
    got = repo.record_feedback("r1", "k1", 0.75, "fine", now=200.0)
    assert got is not None
    assert (got["model_group"], got["task_type"], got["project"], got["outcome"]) == (
        "small",
        "code",
        "p1",
        0.75,
    )
    first = repo.outcome_for("r1")
    assert first is not None and first["comment"] == "fine" and first["source"] == "feedback"
    assert repo.record_feedback("r1", None, 0.0) is not None  # the admin: any call
    second = repo.outcome_for("r1")
    assert second is not None and second["outcome"] == 0.0 and second["id"] > first["id"]
    assert [r["request_id"] for r in repo.outcomes_since(0)] == ["r1"]


def test_feedback_on_a_reused_request_id_judges_the_newest_call_of_the_key(store: Store) -> None:
    """A client may reuse its `x-request-id`: the ledger records the later calls under derived ids, and
    feedback by the id the client knows judges its newest call with that key."""
    from architect.store.request_ids import reused_id

    again, third = reused_id("r_1"), reused_id("r_1")
    store.ledger.record(
        [
            _call("r_1", ts=100.0),
            _call(again, ts=101.0, model_group="large"),
            _call(third, key="k2", ts=102.0, model_group="other"),  # another key's, newer
            _call("rX1", ts=103.0, model_group="lookalike"),  # `_` is no wildcard
            _call("r_1:" + "0" * 15, ts=104.0, model_group="lookalike"),  # not a derived id
        ]
    )
    repo = store.routing
    got = repo.record_feedback("r_1", "k1", 0.5, now=200.0)
    assert got is not None and (got["request_id"], got["model_group"]) == (again, "large")
    assert repo.outcome_for(again) is not None and repo.outcome_for("r_1") is None
    other = repo.record_feedback("r_1", "k2", 1.0)  # the other key's reuse of the same id
    assert other is not None and (other["request_id"], other["model_group"]) == (third, "other")
    newest = repo.record_feedback("r_1", None, 0.0)  # the admin: the newest call of any key
    assert newest is not None and newest["request_id"] == third


def test_key_outcomes_apply_now_and_in_the_sweep(store: Store) -> None:
    repo = store.routing
    store.ledger.record([
        _call("a1", key="ka"), _call("a2", key="ka", status="error"), _call("a3", key="ka", endpoint="embeddings"),
        _call("a4", key="ka"), _call("b1", key="kb"),
    ])  # fmt: skip
    repo.record_feedback("a4", "ka", 1.0)
    assert repo.set_key_outcome("ka", 0.0, "task", now=1000.0) == 1  # a1: not the error, embedding, a4
    assert repo.outcome_for("a4")["outcome"] == 1.0  # type: ignore[index]
    assert repo.outcome_for("a1")["source"] == "task"  # type: ignore[index]
    store.ledger.record([_call("a5", key="ka", ts=101.0)])  # the ledger wrote it later
    assert repo.sweep_key_outcomes(now=1100.0) == 1
    assert repo.sweep_key_outcomes(now=1100.0) == 0
    store.ledger.record([_call("a6", key="ka", ts=102.0)])
    assert repo.sweep_key_outcomes(now=1000.0 + 700) == 0  # too old to sweep
    # escalation does not replace a key outcome; a new task outcome does (a1, a5 judged again)
    assert repo.set_key_outcome("ka", 0.0, "escalation", replace=False, now=1800.0) == 1  # a6 only
    assert repo.key_outcome("ka")["source"] == "task"  # type: ignore[index]
    assert repo.set_key_outcome("ka", 1.0, "task", now=1900.0) == 3
    assert {r["request_id"]: r["outcome"] for r in repo.outcomes_since(0)} == {
        "a4": 1.0,
        "a1": 1.0,
        "a5": 1.0,
        "a6": 1.0,
    }
    assert repo.set_key_outcome("kb", 0.0, "escalation", replace=False) == 1


def test_outcomes_follow_ids_with_features_and_quality_counts(store: Store) -> None:
    repo = store.routing
    store.ledger.record([
        _call("r1"), _call("r2", model_group="large"), _call("r3", project="p2"), _call("r4", task_type="chat"),
    ])  # fmt: skip
    repo.put_features([("r1", 100.0, b"\x01\x02"), ("r3", 50.0, b"\x03")])
    repo.put_features([("r1", 100.0, b"ignored")])
    for rid, y in (("r1", 1.0), ("r2", 1.0), ("r3", 0.0), ("r4", 1.0)):
        repo.record_feedback(rid, "k1", y)
    rows = repo.outcomes_since(0)
    assert [r["request_id"] for r in rows] == ["r1", "r2", "r3", "r4"]
    assert bytes(rows[0]["features"]) == b"\x01\x02" and rows[1]["features"] is None
    ids = [r["id"] for r in rows]
    assert [r["request_id"] for r in repo.outcomes_since(ids[1], limit=1)] == ["r3"]
    assert [r["request_id"] for r in repo.outcomes_since(ids[3], ids=[ids[0]])] == ["r1"]
    assert [r["request_id"] for r in repo.last_outcomes(2)] == ["r3", "r4"]
    q = {(r["model_group"], r["task_type"]): (r["n"], r["sum"]) for r in repo.quality()}
    assert q == {("small", "code"): (2, 1.0), ("large", "code"): (1, 1.0), ("small", "chat"): (1, 1.0)}
    assert {(r["model_group"], r["n"]) for r in repo.quality(project="p2")} == {("small", 1)}
    by = {(r["project"], r["model_group"], r["task_type"]): r["n"] for r in repo.quality(by_project=True)}
    assert by[("p2", "small", "code")] == 1 and by[("p1", "small", "code")] == 1
    assert repo.prune_features(60.0) == 1
    assert repo.outcomes_since(0)[2]["features"] is None


def test_auto_calls_and_their_outcomes(store: Store) -> None:
    store.ledger.record([
        _call("c1", routed_by="auto", cost_usd=0.01, baseline_cost_usd=0.1, route_scores={"small": 0.8}),
        _call("c2", routed_by="auto", cost_usd=0.02, explored=True, model_group="large"),
        _call("c3", routed_by="auto", cost_usd=0.01, ts=500.0),
        _call("c4", cost_usd=5.0),  # not an auto route's
    ])  # fmt: skip
    repo = store.routing
    rows = {r["model_group"]: r for r in repo.auto_calls(0.0)}
    assert rows["small"]["calls"] == 2 and rows["small"]["cost_usd"] == pytest.approx(0.02)
    assert rows["small"]["baseline_cost_usd"] == pytest.approx(0.1)
    assert rows["small"]["baselined_cost_usd"] == pytest.approx(0.01)
    assert (rows["large"]["explored"], rows["large"]["explored_cost_usd"]) == (1, pytest.approx(0.02))
    assert [r["calls"] for r in repo.auto_calls(200.0)] == [1]
    assert repo.auto_calls(0.0, routed_by="other") == [] and repo.auto_calls(0.0, project="p9") == []
    repo.record_feedback("c1", "k1", 1.0)
    out = repo.auto_outcomes(0.0)
    assert out == [
        {"routed_by": "auto", "model_group": "small", "route_scores": '{"small":0.8}', "outcome": 1.0}
    ]
