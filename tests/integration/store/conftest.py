"""The store every repository test here runs on: the in-memory doubles, SQLite and PostgreSQL (each
test run's own database, from the `sqlite_url` / `pg_url` fixtures), migrated to the head."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from architect.store import Store, open_store


def param_store(request: pytest.FixtureRequest) -> Store:
    """The store `request.param` names ("memory", "sqlite", "postgresql"), migrated to the head."""
    if request.param == "memory":
        return Store.memory()
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return open_store(url, migrate="upgrade")


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    s = param_store(request)
    yield s
    s.close()
