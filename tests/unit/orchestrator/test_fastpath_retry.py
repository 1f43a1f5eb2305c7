"""The PostgreSQL one-statement path runs its statement again after a deadlock abort (and only then)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.exc import DBAPIError

from architect.store.orchestrator import ClaimOptions
from architect.store.orchestrator.fastpath import FastPath


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


class _Result:
    def all(self) -> list[Any]:
        return []


class _Conn:
    """Records the statements; fails the first `fail` of them with `sqlstate`."""

    dialect = pg_psycopg.dialect()

    def __init__(self, fail: int, sqlstate: str) -> None:
        self.fail, self.sqlstate, self.calls = fail, sqlstate, 0

    def exec_driver_sql(self, sql: str, params: dict[str, Any]) -> _Result:
        self.calls += 1
        assert "FOR UPDATE SKIP LOCKED" in sql and params["vid"] == [1]
        if self.calls <= self.fail:
            raise DBAPIError(sql, params, _Orig(self.sqlstate))
        return _Result()


def test_deadlock_is_retried() -> None:
    conn = _Conn(fail=2, sqlstate="40P01")
    assert FastPath().run(conn, [(1, 1, 0.1)], "w", 4, 100.0, 30.0, ClaimOptions()) == (set(), [])  # type: ignore[arg-type]
    assert conn.calls == 3


def test_other_errors_and_persistent_deadlocks_are_raised() -> None:
    conn = _Conn(fail=1, sqlstate="23505")
    with pytest.raises(DBAPIError):
        FastPath().run(conn, [(1, 1, 0.1)], "w", 4, 100.0, 30.0, ClaimOptions())  # type: ignore[arg-type]
    assert conn.calls == 1
    conn = _Conn(fail=99, sqlstate="40P01")
    with pytest.raises(DBAPIError):
        FastPath().run(conn, [(1, 1, 0.1)], "w", 4, 100.0, 30.0, ClaimOptions())  # type: ignore[arg-type]
    assert conn.calls == 4
