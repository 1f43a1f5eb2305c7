"""Text a database cannot hold (NUL, lone surrogates) is escaped by the store the same way on the
in-memory double, SQLite and PostgreSQL: through the ledger's raw insert path and through every text
column written with SQLAlchemy, and values compared with a column are escaped alike."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.store import Store, open_store
from tests.helpers import record_rows
from tests.integration.store.conftest import param_store


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def ledger_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    s = param_store(request)
    yield s
    s.close()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url, migrate="upgrade")
    yield s
    s.close()


def _call(rid: str, **kw: object) -> dict[str, object]:
    return {
        "request_id": rid,
        "ts": time.time(),
        "endpoint": "chat",
        "model": "m",
        "status": "error",
        "http_status": 400,
        "total_ms": 1.0,
        **kw,
    }


def test_ledger_text_with_nul_and_lone_surrogates_is_written_and_read_back_escaped(
    ledger_store: Store,
) -> None:
    ledger = ledger_store.ledger
    record_rows(
        ledger,
        [
            _call("before"),
            _call(
                "poisoned",
                request_body='{"messages": [{"role": "user", "content": "raw a\x00b"}]}',
                response_body="answer \x00 and \ud83d alone",
                error_message="upstream: invalid content 'a\x00b'",
                error_kind="bad\x00kind",
            ),
            _call("after"),
        ],
    )
    row = ledger.get_call("poisoned")
    assert row is not None
    assert row["request_body"] == '{"messages": [{"role": "user", "content": "raw a\ufffdb"}]}'
    assert row["response_body"] == "answer \ufffd and \ufffd alone"
    assert row["error_message"] == "upstream: invalid content 'a\ufffdb'"
    assert row["error_kind"] == "bad\ufffdkind"
    assert {c["request_id"] for c in ledger.calls_between(0, time.time() + 1)} == {
        "before",
        "poisoned",
        "after",
    }


def test_comparing_a_column_with_a_value_holding_nul_finds_nothing_rather_than_failing(store: Store) -> None:
    record_rows(store.ledger, [_call("r1", model_group="g")])
    assert store.ledger.calls_between(0, time.time() + 1, where={"model_group": "a\x00b"}) == []
    assert store.audit.list_audit(actor="admin\x00") == []
    assert [
        c["request_id"] for c in store.ledger.calls_between(0, time.time() + 1, where={"model_group": "g"})
    ] == ["r1"]


def test_text_columns_written_through_sqlalchemy_hold_nul_escaped(store: Store) -> None:
    now = time.time()
    store.alerts.add_alert_event(
        {"ts": now, "rule": "r", "kind": "error_rate", "state": "firing", "message": "upstream said a\x00b"}
    )
    assert store.alerts.list_alert_events()[0]["message"] == "upstream said a\ufffdb"

    m = Manager(store.tasks)
    feature = m.import_plans(parse_markdown("# Feature: F\n## Phase 1: P\n- [ ] T1 one\n"))[0]["feature"]
    store.tasks.add_item(feature["id"], {"kind": "issue", "title": "output", "body": "log a\x00b\ud800"}, now)
    assert store.tasks.items(feature["id"])[0]["body"] == "log a\ufffdb\ufffd"

    # JSON columns: the encoder writes NUL as the escape \u0000, which every database holds, and it
    # reads back exactly
    store.audit.add_audit("admin", "key.create", "k1", {"name": "a\x00b"}, None)
    assert store.audit.list_audit()[0]["before"] == {"name": "a\x00b"}
