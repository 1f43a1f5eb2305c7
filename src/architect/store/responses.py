"""Stored Responses API answers (`previous_response_id`): `SQLResponseRepo(engine)` on
SQLite/PostgreSQL; `SQLiteMemoryResponseRepo(db)` is the same implementation on the memory store's
in-memory SQLite database.

A row belongs to one key (`key_id`): every read and delete names the key, so a key can never read or
delete another key's response (to the caller it is the same as a missing id). Rows expire
(`expires_at`, decided by the caller's clock); `evict` keeps a key's rows under a byte cap by removing
its oldest (the caller decides when, from the key's `usage` it keeps count of).

Both writes are a few statements whatever the number of rows, so the database does the per-row work
without the Python interpreter (the writer is a thread of the gateway's process, sharing its core and
its interpreter lock with the event loop): on SQLite `put` is one multi-row INSERT per
`_SQLITE_ROWS` rows (the driver's executemany steps once per row, releasing and retaking the lock
each time), and `evict` finds the rows to remove with one window query, then removes them with one
DELETE."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Protocol

from sqlalchemy import Engine, case, delete, func, insert, or_, select
from sqlalchemy.exc import SQLAlchemyError

from architect.store.engine import begin_immediate, store_error
from architect.store.schema_responses import responses
from architect.store.sqlite_memory import Serialised, SQLiteMemory
from architect.store.text import storable

__all__ = ["ResponseRepo", "SQLResponseRepo", "SQLiteMemoryResponseRepo"]

_COLUMNS = ("id", "key_id", "created_at", "expires_at", "size", "body")
_SQLITE_ROWS = 150  # rows per INSERT: 900 parameters, under the 999 of the oldest SQLite builds


@cache
def _sqlite_insert(n: int) -> str:
    """The INSERT of `n` rows (qmark parameters, `_COLUMNS` in order)."""
    row = "(" + ",".join("?" * len(_COLUMNS)) + ")"
    return f"INSERT INTO responses ({', '.join(_COLUMNS)}) VALUES " + ",".join([row] * n)


def _sqlite_params(rows: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
    """The rows' values in `_COLUMNS` order, one flat tuple; text made storable, as the schema's
    types do on SQLAlchemy's path."""
    out: list[Any] = []
    for r in rows:
        out += (storable(r["id"]), storable(r["key_id"]), r["created_at"], r["expires_at"], r["size"])
        out.append(storable(r["body"]))
    return tuple(out)


class ResponseRepo(Protocol):
    def put(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows (`id, key_id, created_at, expires_at, size, body`)."""

    def usage(self, key_id: str, now: float) -> int:
        """The bytes (`size`) of a key's live rows."""

    def evict(self, key_id: str, max_bytes: int, now: float) -> int:
        """Remove a key's expired rows and its oldest rows beyond `max_bytes`; returns the bytes left."""

    def get(self, response_id: str, key_id: str, now: float) -> str | None:
        """The body of the live response `response_id` of key `key_id`, or None."""

    def delete(self, response_id: str, key_id: str) -> bool:
        """Remove the response `response_id` of key `key_id`; whether there was one."""

    def purge_expired(self, now: float) -> int:
        """Remove every expired row; returns the count."""


class SQLResponseRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        try:
            with self._engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    for i in range(0, len(rows), _SQLITE_ROWS):
                        part = rows[i : i + _SQLITE_ROWS]
                        conn.exec_driver_sql(_sqlite_insert(len(part)), _sqlite_params(part))
                else:  # psycopg's executemany pipelines the rows
                    conn.execute(insert(responses), [dict(r) for r in rows])
        except SQLAlchemyError as exc:
            raise store_error("storing responses", exc) from exc

    def usage(self, key_id: str, now: float) -> int:
        t = responses
        q = select(func.coalesce(func.sum(t.c.size), 0)).where(t.c.key_id == key_id, t.c.expires_at > now)
        try:
            with self._engine.connect() as conn:
                return int(conn.execute(q).scalar_one())
        except SQLAlchemyError as exc:
            raise store_error("reading responses' size", exc) from exc

    def evict(self, key_id: str, max_bytes: int, now: float) -> int:
        """One window query over the key's live rows, newest first, gives the newest row that no
        longer fits under `max_bytes` (its running total of sizes is over) and the bytes of those
        that fit; that row, every older one and every expired one are deleted in one statement.
        Rows created at the same time are kept or removed together (the window ranks them as one)."""
        t = responses
        total = func.sum(t.c.size).over(order_by=t.c.created_at.desc())
        ranked = (
            select(t.c.created_at, total.label("total"))
            .where(t.c.key_id == key_id, t.c.expires_at > now)
            .subquery()
        )
        q = select(
            func.max(case((ranked.c.total > max_bytes, ranked.c.created_at))),
            func.max(case((ranked.c.total <= max_bytes, ranked.c.total))),
        )
        try:
            with self._engine.connect() as conn, begin_immediate(conn):  # read then write: lock first
                newest_out, kept = conn.execute(q).one()
                doomed = t.c.expires_at <= now
                if newest_out is not None:
                    doomed = or_(doomed, t.c.created_at <= newest_out)
                conn.execute(delete(t).where(t.c.key_id == key_id, doomed))
        except SQLAlchemyError as exc:
            raise store_error("evicting responses", exc) from exc
        return int(kept or 0)

    def get(self, response_id: str, key_id: str, now: float) -> str | None:
        t = responses
        q = select(t.c.body).where(t.c.id == response_id, t.c.key_id == key_id, t.c.expires_at > now)
        try:
            with self._engine.connect() as conn:
                row = conn.execute(q).first()
        except SQLAlchemyError as exc:
            raise store_error("reading a response", exc) from exc
        return str(row[0]) if row is not None else None

    def delete(self, response_id: str, key_id: str) -> bool:
        t = responses
        try:
            with self._engine.begin() as conn:
                n = conn.execute(delete(t).where(t.c.id == response_id, t.c.key_id == key_id)).rowcount
        except SQLAlchemyError as exc:
            raise store_error("deleting a response", exc) from exc
        return bool(n)

    def purge_expired(self, now: float) -> int:
        try:
            with self._engine.begin() as conn:
                return conn.execute(delete(responses).where(responses.c.expires_at <= now)).rowcount or 0
        except SQLAlchemyError as exc:
            raise store_error("purging responses", exc) from exc


class SQLiteMemoryResponseRepo(Serialised, SQLResponseRepo):
    """The double: the SQL implementation on an in-memory SQLite database (a private one by default)."""

    def __init__(self, db: SQLiteMemory | None = None) -> None:
        db = db or SQLiteMemory()
        super().__init__(db.engine)
        self._lock = db.lock
