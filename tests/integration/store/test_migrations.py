from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from architect.errors import MigrationRequired
from architect.store import migrate, open_store
from architect.store.engine import make_engine
from architect.store.schema import all_metadata


def test_there_is_a_single_head() -> None:
    assert len(migrate.heads()) == 1


def test_migrating_an_empty_database_yields_the_declared_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), all_metadata())
        assert diff == [], f"migrations and schema modules disagree: {diff}"
        tables = set(inspect(engine).get_table_names())
        assert {"calls", "call_attempts"} <= tables
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
