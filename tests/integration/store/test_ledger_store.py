"""The ledger interface behaves the same on the in-memory double, SQLite and PostgreSQL."""

from __future__ import annotations

import orjson
import pytest

from architect.store import Store, open_store
from tests.helpers import record_rows


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
    record_rows(store.ledger, calls)
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


def test_window_stats_count_errors_and_quantile_in_the_store(store: Store) -> None:
    latencies = [float(v) for v in (40, 10, 30, 20, 50, 60, 70, 80, 90, 100)]
    calls = [_call(f"w{i}", 2000.0 + i, total_ms=ms) for i, ms in enumerate(latencies)]
    calls += [_call("e1", 2003.5, status="error", http_status=502, total_ms=999.0)]
    calls += [_call("o1", 2004.5, model_group="other", deployment="other/x", total_ms=5000.0)]
    calls += [_call("late", 2100.0, total_ms=1.0)]
    record_rows(store.ledger, calls)
    all_ = store.ledger.window_stats(2000.0, 2050.0, None, 0.95)
    assert all_["calls"] == 12 and all_["errors"] == 1
    # ok calls: 10..100 and 5000; the value of rank floor(0.95 * 10) = 9, as the metrics report quantiles
    assert all_["quantile_ms"] == 100.0
    m = store.ledger.window_stats(2000.0, 2050.0, "m", 0.5)
    assert m["calls"] == 11 and m["errors"] == 1
    assert m["quantile_ms"] == 50.0  # rank floor(0.5 * 9) = 4 of 10..100
    by_deployment = store.ledger.window_stats(2000.0, 2050.0, "other/x", 0.95)
    assert by_deployment == {"calls": 1, "errors": 0, "quantile_ms": 5000.0}
    counts_only = store.ledger.window_stats(2000.0, 2050.0, None, None)
    assert counts_only == {"calls": 12, "errors": 1, "quantile_ms": None}
    assert store.ledger.window_stats(3000.0, 4000.0, None, 0.95) == {
        "calls": 0,
        "errors": 0,
        "quantile_ms": None,
    }


def test_rows_setting_different_columns_keep_their_order_and_values(store: Store) -> None:
    calls = [
        _call("a", 3000.0, project="p", error_kind=None),
        _call("b", 3000.0, status="error", http_status=500, error_kind="server_error", total_ms=3.0),
        _call("c", 3000.0, project="p", key_id="k1", cached_tokens=4),
        _call("d", 3000.0),
    ]
    record_rows(store.ledger, calls)
    rows = store.ledger.calls_between(2999.0, 3001.0)
    assert [r["request_id"] for r in rows] == ["a", "b", "c", "d"]
    by_id = {r["request_id"]: r for r in rows}
    assert by_id["a"]["project"] == "p" and by_id["a"]["key_id"] is None
    assert by_id["b"]["error_kind"] == "server_error" and by_id["b"]["project"] is None
    assert by_id["c"]["key_id"] == "k1" and by_id["c"]["cached_tokens"] == 4
    assert by_id["d"]["project"] is None and by_id["d"]["cached_tokens"] == 0


def test_a_sqlite_store_limits_its_wal(sqlite_url: str) -> None:
    """Each connection caps the WAL file kept after a checkpoint (it would keep its high-water mark)."""
    from architect.store.engine import WAL_SIZE_LIMIT

    store = open_store(sqlite_url, migrate="upgrade")
    try:
        assert store.engine is not None
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == WAL_SIZE_LIMIT
    finally:
        store.close()


def test_auto_route_columns_round_trip(store: Store) -> None:
    """What an `auto` route decided (routed_by, route_scores as JSON, task_type, explored) is written and
    read back on every store; a call without a decision reads explored False and the others null."""
    record_rows(
        store.ledger,
        [
            _call(
                "auto-1",
                1000.0,
                model="auto",
                model_group="small",
                routed_by="auto",
                route_scores={"small": 0.831, "large": 0.95},
                task_type="summarise",
                explored=True,
            ),
            _call("plain-1", 1001.0),
        ],
    )
    auto = store.ledger.get_call("auto-1")
    plain = store.ledger.get_call("plain-1")
    assert auto is not None and plain is not None
    assert auto["routed_by"] == "auto" and auto["model_group"] == "small"
    assert orjson.loads(auto["route_scores"]) == {"small": 0.831, "large": 0.95}
    assert auto["task_type"] == "summarise" and bool(auto["explored"]) is True
    assert plain["routed_by"] is None and plain["route_scores"] is None and bool(plain["explored"]) is False
    rows = store.ledger.calls_between(0, 2000, where={"routed_by": "auto"}, columns=["request_id"])
    assert [r["request_id"] for r in rows] == ["auto-1"]


def test_a_key_reads_its_own_call_under_an_id_another_call_took(store: Store) -> None:
    """`get_call(id, key_id)`: the key's call recorded as `id`, else the newest of the key's calls sent
    as `id` and recorded under a derived id; never another key's."""
    from architect.store.request_ids import reused_id

    mine_first, mine_later = reused_id("shared_1"), reused_id("shared_1")
    record_rows(
        store.ledger,
        [
            _call("shared_1", 3000.0, key_id="kb"),  # another key took the id first
            _call(mine_first, 3001.0, key_id="ka"),
            _call(mine_later, 3002.0, key_id="ka"),
            _call("sharedX1:" + "0" * 16, 3003.0, key_id="ka"),  # `_` is no wildcard
        ],
    )
    exact = store.ledger.get_call("shared_1")
    assert exact is not None and exact["key_id"] == "kb"  # without a key: the id as recorded
    got = store.ledger.get_call("shared_1", "ka")
    assert got is not None and got["request_id"] == mine_later
    own = store.ledger.get_call("shared_1", "kb")
    assert own is not None and own["request_id"] == "shared_1"  # its own exact row first
    assert store.ledger.get_call("shared_1", "kc") is None
