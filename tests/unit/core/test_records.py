"""The ledger's record types: a `CallRecord` is one `calls` row, written and read back unchanged, and
its attempts are stored with only the fields that are set."""

from __future__ import annotations

import threading

from architect.events import EventBus
from architect.records import CALL_FIELDS, AttemptRecord, CallRecord
from architect.store import Store
from architect.store.schema import calls


def test_a_call_record_has_exactly_the_columns_of_calls() -> None:
    assert set(CALL_FIELDS) == {c.name for c in calls.columns} - {"id"}


def test_a_record_is_written_and_read_back_with_its_attempts_and_tags() -> None:
    store = Store.memory()
    failed = AttemptRecord(attempt=1, ts=1.0, model_group="g", deployment="a", provider="p")
    failed.status, failed.http_status, failed.error_kind, failed.total_ms = "error", 503, "server_error", 2.0
    ok = AttemptRecord(attempt=2, ts=1.1, model_group="g", deployment="b", provider="p", route_reason="r")
    ok.status, ok.http_status, ok.total_ms, ok.prompt_tokens, ok.cost_usd = "ok", 200, 3.0, 7, 0.5
    rec = CallRecord(
        request_id="r1",
        ts=1.0,
        endpoint="chat",
        model="g",
        tags={"project": "shop", "team": "x"},
        project="shop",
        attempts=2,
        attempt_log=[failed, ok],
    )
    store.ledger.record([rec])
    row = store.ledger.get_call("r1")
    assert row is not None and row["tags"] == '{"project":"shop","team":"x"}' and row["project"] == "shop"
    assert failed.stored() == {
        "attempt": 1, "ts": 1.0, "model_group": "g", "deployment": "a", "provider": "p",
        "status": "error", "http_status": 503, "error_kind": "server_error", "total_ms": 2.0,
    }  # fmt: skip
    got = store.ledger.attempts_for("r1")
    assert [(a["deployment"], a["status"], a["prompt_tokens"], a["cost_usd"]) for a in got] == [
        ("a", "error", 0, 0.0),
        ("b", "ok", 7, 0.5),
    ]
    again = CallRecord.from_row({**row, "attempt_log": [a.stored() for a in (failed, ok)]})
    assert again.tags == rec.tags and again.attempt_log == rec.attempt_log


def test_a_partial_row_becomes_a_record_with_the_defaults() -> None:
    rec = CallRecord.from_row({"ts": 5.0, "status": "error", "cost_usd": None, "cache": "hit-l1"})
    assert rec.cost_usd == 0.0 and rec.cache_hit and rec.status == "error" and rec.attempt_log is None


async def test_events_published_from_another_thread_reach_the_subscribers() -> None:
    bus = EventBus()
    bus.publish_from_thread("task", {"n": 0})  # nobody listens yet: nothing to deliver, no error
    sub = bus.subscription({"task"})
    t = threading.Thread(target=bus.publish_from_thread, args=("task", {"n": 1}))
    t.start()
    t.join()
    ev = await sub.get(timeout=5)
    assert ev is not None and ev.topic == "task" and ev.data == {"n": 1}
    sub.close()
