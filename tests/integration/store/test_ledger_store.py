"""The ledger interface behaves the same on the in-memory double, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from architect.store import Store, open_store


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        s = Store.memory()
    else:
        url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
        s = open_store(url, migrate="upgrade")
    yield s
    s.close()


def _call(rid: str, ts: float, **kw: object) -> dict[str, object]:
    return {
        "request_id": rid,
        "ts": ts,
        "endpoint": "chat",
        "model": "m",
        "model_group": "m",
        "status": "ok",
        "http_status": 200,
        "total_ms": 12.5,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.001,
        **kw,
    }


def test_record_query_and_purge(store: Store) -> None:
    calls = [_call(f"r{i}", 1000.0 + i, project="shop" if i % 2 else None) for i in range(10)]
    calls[3]["attempt_log"] = [
        {
            "attempt": a,
            "ts": 1003.0,
            "model_group": "m",
            "deployment": "d",
            "provider": "p",
            "status": "error" if a == 1 else "ok",
            "total_ms": 5.0,
        }
        for a in (1, 2)
    ]
    store.ledger.record(calls)
    rows = store.ledger.calls_between(1002.0, 1006.0, columns=["request_id", "cost_usd", "simulated"])
    assert [r["request_id"] for r in rows] == ["r2", "r3", "r4", "r5"]
    assert rows[0]["cost_usd"] == pytest.approx(0.001) and rows[0]["simulated"] is False
    shop = store.ledger.calls_between(0, 2000, where={"project": "shop"}, newest_first=True, limit=2)
    assert [r["request_id"] for r in shop] == ["r9", "r7"]
    r3 = store.ledger.attempts_for("r3")
    assert [a["status"] for a in r3] == ["error", "ok"]
    assert r3[0]["request_id"] == "r3" and r3[0]["prompt_tokens"] == 0 and r3[0]["http_status"] is None
    assert store.ledger.attempts_for("r4") == []
    got = store.ledger.get_call("r3")
    assert got is not None and got["prompt_tokens"] == 10 and "attempt_log" not in got
    assert store.ledger.purge_before(1005.0) == 5
    assert len(store.ledger.calls_between(0, 2000)) == 5
    assert store.ledger.attempts_for("r3") == []
