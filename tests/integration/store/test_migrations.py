from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from architect.errors import MigrationRequired
from architect.store import migrate, open_store
from architect.store.engine import make_engine
from architect.store.ledger import SQLLedger
from architect.store.schema import all_metadata


def test_there_is_a_single_head() -> None:
    assert len(migrate.heads()) == 1


def test_the_heads_read_from_the_revision_files_are_alembics() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate._alembic_config())
    assert migrate.heads() == tuple(sorted(scripts.get_heads()))


def test_the_revision_read_without_alembic_is_alembics(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine, "0004")
        with engine.connect() as conn:
            assert migrate.current_revision(engine) == MigrationContext.configure(conn).get_current_revision()
        assert migrate.current_revision(engine) == "0004"
        assert migrate.upgrade_if_behind(engine) is True
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert migrate.upgrade_if_behind(engine) is False
    finally:
        engine.dispose()


def test_migrating_an_empty_database_yields_the_declared_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), all_metadata())
        assert diff == [], f"migrations and schema modules disagree: {diff}"
        tables = set(inspect(engine).get_table_names())
        assert "calls" in tables and "call_attempts" not in tables  # attempts live on their call (0005)
    finally:
        engine.dispose()


def test_postgres_store_that_is_behind_is_refused_sqlite_is_upgraded(pg_url: str, sqlite_url: str) -> None:
    with pytest.raises(MigrationRequired, match="architect db upgrade"):
        open_store(pg_url)
    store = open_store(pg_url, migrate="upgrade")
    store.close()
    open_store(pg_url).close()  # now current: accepted
    s = open_store(sqlite_url)  # SQLite is migrated in place
    try:
        assert migrate.current_revision(s.engine) == migrate.head_revision()  # type: ignore[arg-type]
    finally:
        s.close()


def test_0005_moves_existing_attempts_onto_their_calls(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine, "0004")
        call = {"endpoint": "chat", "model": "m", "status": "ok", "http_status": 200, "total_ms": 1.0}
        attempt = {"ts": 1.0, "model_group": "m", "provider": "p", "total_ms": 1.0}
        attempt |= {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        with engine.begin() as conn:
            for i, rid in enumerate(("a", "b", "c")):
                conn.execute(
                    sa.text(
                        "INSERT INTO calls (request_id, ts, endpoint, model, status, http_status, "
                        "total_ms, simulated, stream, attempts, fallbacks, truncated, prompt_tokens, "
                        "completion_tokens, cached_tokens, tokens_estimated, cost_usd, saved_cost_usd, "
                        "saved_ms) VALUES (:rid, :ts, :endpoint, :model, :status, :http_status, "
                        ":total_ms, false, false, 0, 0, false, 0, 0, 0, false, 0, 0, 0)"
                    ),
                    {"rid": rid, "ts": float(i), **call},
                )
            # "b" has two attempts, inserted out of order; "c" has none
            for rid, n, dep, status in (("b", 2, "d2", "ok"), ("a", 1, "d1", "ok"), ("b", 1, "d1", "error")):
                conn.execute(
                    sa.text(
                        "INSERT INTO call_attempts (request_id, attempt, ts, model_group, deployment, "
                        "provider, status, total_ms, prompt_tokens, completion_tokens, cost_usd) VALUES "
                        "(:rid, :n, :ts, :model_group, :dep, :provider, :status, :total_ms, "
                        ":prompt_tokens, :completion_tokens, :cost_usd)"
                    ),
                    {"rid": rid, "n": n, "dep": dep, "status": status, **attempt},
                )
        migrate.upgrade(engine)
        ledger = SQLLedger(engine)
        b = ledger.attempts_for("b")
        assert [(x["attempt"], x["deployment"], x["status"]) for x in b] == [
            (1, "d1", "error"),
            (2, "d2", "ok"),
        ]
        assert b[0]["request_id"] == "b" and b[0]["provider"] == "p"
        assert [x["deployment"] for x in ledger.attempts_for("a")] == ["d1"]
        assert ledger.attempts_for("c") == []
        ledger.close()
    finally:
        engine.dispose()
