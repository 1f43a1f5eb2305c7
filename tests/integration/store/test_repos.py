"""The access and metrics repositories (keys, budgets, audit, alerts, rollups, spend) behave the same
on the memory store's doubles, SQLite and PostgreSQL; a memory store's SQL-backed doubles share one
database (a budget's deletion and its audit row are one transaction there too, and threads using
several of them at once are serialised); and a repository's module is imported when its attribute is
first read."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from architect.errors import NotFoundInStore, StoreError
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.records import CallRecord
from architect.store import Store, open_store
from architect.store.budgets import period_start
from architect.store.orchestrator import ClaimOptions


def _key(key_id: str, secret_hash: str, **kw: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "id": key_id,
        "name": key_id,
        "prefix": "sk-arch-abcd",
        "secret_hash": secret_hash,
        "created_at": now,
        "updated_at": now,
        **kw,
    }


def test_keys_round_trip_their_list_fields_and_refuse_a_second_secret(store: Store) -> None:
    keys = store.keys
    assert not keys.has_keys()
    keys.create_key(_key("k1", "h1", models=["a", "b"], tags={"project": "web"}, projects="*", scopes=None))
    keys.create_key(_key("k2", "h2"))
    assert keys.has_keys()
    k1 = keys.key_by_hash("h1")
    assert k1 is not None
    assert (k1["id"], k1["models"], k1["tags"], k1["projects"], k1["scopes"]) == (
        "k1",
        ["a", "b"],
        {"project": "web"},
        "*",
        None,
    )
    with pytest.raises(StoreError, match="already exists"):
        keys.create_key(_key("k3", "h1"))
    assert keys.update_key("k2", {"scopes": ["tasks:execute"], "revoked_at": 5.0})["scopes"] == [
        "tasks:execute"
    ]
    assert [k["id"] for k in keys.list_keys(["k2"])] == ["k2"]
    assert [k["id"] for k in keys.list_keys()] == ["k1", "k2"]
    with pytest.raises(NotFoundInStore):
        keys.update_key("nope", {"rpm": 1})


def test_reservations_stop_at_the_limit_and_settle_into_spend(store: Store) -> None:
    budgets = store.budgets
    b = budgets.upsert_budget("project", "web", "day", 1.0)
    assert budgets.upsert_budget("project", "web", "day", 2.0)["id"] == b["id"]  # one per scope/target/period
    now = time.time()
    item = (b["id"], period_start("day", now), 2.0)
    assert budgets.reserve([item], 1.5, now) is None
    refused = budgets.reserve([item], 0.6, now)
    assert refused is not None and refused["budget_id"] == b["id"] and refused["reserved_usd"] == 1.5
    (state,) = budgets.settle([item], 1.5, 0.25, now)
    assert (state["spent_usd"], state["reserved_usd"], state["limit_usd"]) == (0.25, 0.0, 2.0)
    (listed,) = budgets.list_budgets(now)
    assert (listed["spent_usd"], listed["remaining_usd"]) == (0.25, 1.75)
    assert budgets.mark_alerted(b["id"], item[1], 50) and not budgets.mark_alerted(b["id"], item[1], 50)
    assert budgets.budget_count() == 1


def test_deleting_a_budget_writes_its_audit_row_seen_by_the_audit_log(store: Store) -> None:
    b = store.budgets.upsert_budget("key", "k1", "month", 3.0)
    deleted = store.budgets.delete_budget(b["id"], actor="admin")
    assert deleted["id"] == b["id"]
    assert store.budgets.list_budgets() == []
    (row,) = store.audit.list_audit(action="budget.delete")
    assert (row["actor"], row["target"], row["before"]["limit_usd"]) == ("admin", "key:k1:month", 3.0)
    with pytest.raises(NotFoundInStore):
        store.budgets.delete_budget(b["id"], actor="admin")


def test_alert_state_flips_once_per_change_and_events_list_newest_first(store: Store) -> None:
    alerts = store.alerts
    assert alerts.flip_alert_state("r:t", "firing", 10.0)
    assert not alerts.flip_alert_state("r:t", "firing", 11.0)
    assert alerts.alert_states()["r:t"]["state"] == "firing"
    assert alerts.flip_alert_state("r:t", "resolved", 12.0)
    for ts, state in ((10.0, "firing"), (12.0, "resolved")):
        alerts.add_alert_event({"ts": ts, "rule": "r", "kind": "error_rate", "state": state, "message": "m"})
    assert [e["state"] for e in alerts.list_alert_events()] == ["resolved", "firing"]
    assert [e["state"] for e in alerts.list_alert_events(since=11.0)] == ["resolved"]


def _rollup(bucket: int, requests: int, res: int = 60) -> dict[str, Any]:
    zero = dict.fromkeys(
        ("errors", "prompt_tokens", "completion_tokens", "cached_tokens", "baselined", "cache_hits"), 0
    ) | dict.fromkeys(("baseline_cost_usd", "cost_baselined_usd", "cache_saved_usd"), 0.0)
    return {
        "res": res,
        "bucket": bucket,
        "dimset": 0,
        "model_group": "g",
        "deployment": "d",
        "provider": "p",
        "requests": requests,
        "cost_usd": 0.5 * requests,
        "attempts": requests,
        "fallbacks": 0,
        **zero,
    }


def _merge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**rows[0], "requests": sum(r["requests"] for r in rows)}] if rows else []


def test_rollups_compact_whole_hours_once_and_later_minutes_join_their_hour(store: Store) -> None:
    rollups = store.rollups
    h = 3600 * 500_000
    rollups.insert_rollups([_rollup(h, 1), _rollup(h + 60, 2), _rollup(h + 3600, 4)])
    assert rollups.compact_next_hour(_merge, h + 5400) is None  # the first call places the watermark
    assert rollups.hour_watermark() == h
    assert rollups.compact_next_hour(_merge, h + 5400) == h
    assert rollups.compact_next_hour(_merge, h + 5400) is None  # the next hour has not ended yet
    assert rollups.hour_watermark() == h + 3600
    assert [r["requests"] for r in rollups.rollup_rows(0, 3600, h, h + 3600)] == [3]
    rollups.insert_rollups([_rollup(h + 120, 5)])  # a late minute of the compacted hour
    assert sorted(r["requests"] for r in rollups.rollup_rows(0, 3600, h, h + 3600)) == [3, 5]
    sums = rollups.rollup_sums(0, 60, h, h + 7200, {"model_group": ["g"]}, ["model_group"], ["requests"])
    assert sums == [{"model_group": "g", "requests": 12}]
    assert rollups.purge_rollups(60, h + 3600) == 3
    assert [r["requests"] for r in rollups.rollup_rows(0, 60, h, h + 7200)] == [4]


def test_spend_groups_the_ledger_calls_of_the_window_dearest_first(store: Store) -> None:
    def call(rid: str, ts: float, project: str | None, cost: float, key_id: str = "k1") -> CallRecord:
        return CallRecord.from_row(
            {
                "request_id": rid,
                "ts": ts,
                "endpoint": "chat",
                "model": "m",
                "status": "ok",
                "http_status": 200,
                "total_ms": 1.0,
                "prompt_tokens": 10,
                "completion_tokens": 2,
                "cost_usd": cost,
                "saved_cost_usd": 0.5 if rid == "c2" else 0.0,
                "project": project,
                "key_id": key_id,
            }
        )

    store.ledger.record(
        [
            call("c1", 100.0, "web", 1.0),
            call("c2", 101.0, "web", 2.0),
            call("c3", 102.0, None, 4.0, key_id="k2"),
            call("c4", 200.0, "web", 8.0),  # outside the window
        ]
    )
    rows = store.spend.between(100.0, 200.0, "project")
    assert [(r["project"], r["requests"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
        (None, 1, 10, 2),
        ("web", 2, 20, 4),
    ]
    assert [r["cost_usd"] for r in rows] == [pytest.approx(4.0), pytest.approx(3.0)]
    assert rows[1]["cache_saved_usd"] == pytest.approx(0.5)
    assert [r["key_id"] for r in store.spend.between(100.0, 200.0, "key_id", {"key_id": "k1"})] == ["k1"]
    assert store.spend.between(300.0, 400.0, "project") == []


def test_threads_using_tasks_and_budgets_of_a_memory_store_at_once_are_serialised() -> None:
    store = Store.memory()
    m = Manager(store.tasks)
    m.import_plans(
        parse_markdown("# Feature: F\n## Phase 1: P\n" + "".join(f"- [ ] T{i} t\n" for i in range(40)))
    )
    b = store.budgets.upsert_budget("project", "web", "total", 1000.0)
    item = (b["id"], 0.0, 1000.0)
    errors: list[BaseException] = []
    claimed: list[int] = []

    def claim() -> None:
        try:
            while rows := m.claim("w", 1, 30.0, ClaimOptions()):
                claimed.extend(r["id"] for r in rows)
        except BaseException as exc:
            errors.append(exc)

    def spend() -> None:
        try:
            for _ in range(40):
                assert store.budgets.reserve([item], 1.0, time.time()) is None
                store.budgets.settle([item], 1.0, 1.0, time.time())
                store.audit.add_audit("t", "spend", None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (claim, claim, spend, spend)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 40
    assert store.budgets.list_budgets()[0]["spent_usd"] == 80.0
    assert len(store.audit.list_audit(action="spend", limit=1000)) == 80
    store.close()


LAZY = """
import json, sys
from architect.store import Store, open_store
store = Store.memory() if sys.argv[1] == "memory" else open_store(sys.argv[1], migrate="none")
names = ("keys", "budgets", "audit", "alerts", "rollups", "spend", "orchestrator", "cache")
def loaded():
    return [n for n in names if f"architect.store.{n}" in sys.modules]
before = loaded()
store.rollups.hour_watermark()
print(json.dumps({"before": before, "after": loaded()}))
"""


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_repository_module_is_imported_when_its_attribute_is_first_read(kind: str, sqlite_url: str) -> None:
    if kind == "sqlite":
        open_store(sqlite_url, migrate="upgrade").close()
    out = subprocess.run(
        [sys.executable, "-c", LAZY, "memory" if kind == "memory" else sqlite_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    seen = json.loads(out)
    assert seen == {"before": [], "after": ["rollups"]}
