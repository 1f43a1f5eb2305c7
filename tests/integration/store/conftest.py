"""The store every repository test here runs on: the in-memory doubles, SQLite and PostgreSQL (each
test run's own database, from the `sqlite_url` / `pg_url` fixtures), migrated to the head."""

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
