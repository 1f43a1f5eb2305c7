"""Stored Responses API answers (`previous_response_id`): `SQLResponseRepo(engine)` on
SQLite/PostgreSQL; `SQLiteMemoryResponseRepo(db)` is the same implementation on the memory store's
in-memory SQLite database.

A row belongs to one key (`key_id`): every read and delete names the key, so a key can never read or
delete another key's response (to the caller it is the same as a missing id). Rows expire
(`expires_at`, decided by the caller's clock); `evict` keeps a key's rows under a byte cap by removing
its oldest (the caller decides when, from the key's `usage` it keeps count of).

`put` writes what it can: a row whose id is taken (the primary key) or whose values the database
refuses is left out, and every other row of the batch is written; it returns the ids left out. A
batch goes in with plain INSERTs; only when the database refuses it is it written again with
`ON CONFLICT (id) DO NOTHING`, then, if a value is refused, row by row.

Both writes are a few statements whatever the number of rows, so the database does the per-row work
without the Python interpreter (the writer is a thread of the gateway's process, sharing its core and
its interpreter lock with the event loop): on SQLite `put` is one multi-row INSERT per
`_SQLITE_ROWS` rows (the driver's executemany steps once per row, releasing and retaking the lock
each time), and `evict` finds the rows to remove with two queries that read the index by key and
creation time (it holds each row's size and expiry, migration 0011), then removes them with one
DELETE."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from architect.store.engine import begin_immediate, store_error
from architect.store.schema_responses import responses
from architect.store.sqlite_memory import Serialised, SQLiteMemory
from architect.store.text import storable

__all__ = ["ResponseRepo", "SQLResponseRepo", "SQLiteMemoryResponseRepo"]

log = logging.getLogger("architect.store")

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


def _oldest_out(live: ColumnElement[bool], need: int, n: int) -> Select[Any]:
    """Over the `n` oldest rows matching `live`, oldest first: the creation time of the newest row
    that must go to free `need` bytes (those whose running total before them is under `need`), the
    bytes they free, and the running total of all `n` (under `need`: `n` rows were too few)."""
    t = responses
    oldest = select(t.c.created_at, t.c.size).where(live).order_by(t.c.created_at).limit(n).subquery()
    run = func.sum(oldest.c.size).over(order_by=oldest.c.created_at, rows=(None, 0))
    ranked = select(oldest.c.created_at, oldest.c.size, run.label("run")).subquery()
    gone = ranked.c.run - ranked.c.size < need
    return select(
        func.max(case((gone, ranked.c.created_at))),
        func.max(case((gone, ranked.c.run))),
        func.max(ranked.c.run),
    )


class ResponseRepo(Protocol):
    def put(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Insert rows (`id, key_id, created_at, expires_at, size, body`); returns the ids of those
        not written (their id was taken, or the database refused their values): the others are."""

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

    def put(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        if not rows:
            return []
        try:
            try:
                with self._engine.begin() as conn:
                    if conn.dialect.name == "sqlite":
                        for i in range(0, len(rows), _SQLITE_ROWS):
                            part = rows[i : i + _SQLITE_ROWS]
                            conn.exec_driver_sql(_sqlite_insert(len(part)), _sqlite_params(part))
                    else:  # psycopg's executemany pipelines the rows
                        conn.execute(insert(responses), [dict(r) for r in rows])
                return []
            except (IntegrityError, DataError):  # a row refused: the others are written all the same
                written = self._put_tolerant(rows)
        except SQLAlchemyError as exc:
            raise store_error("storing responses", exc) from exc
        missed = [str(r["id"]) for r in rows if r["id"] not in written]
        log.warning("%d responses not stored (id taken or values refused): %s", len(missed), missed[:10])
        return missed

    def _put_tolerant(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Insert rows, leaving out those whose id is taken (and, row by row, those whose values the
        database refuses); returns the ids written."""
        try:
            with self._engine.begin() as conn:
                return self._insert_new(conn, rows)
        except (IntegrityError, DataError):
            pass
        written: set[str] = set()
        for r in rows:
            try:
                with self._engine.begin() as conn:
                    written |= self._insert_new(conn, [r])
            except (IntegrityError, DataError) as exc:
                log.warning("response %.64r not stored: %s", r["id"], exc.__class__.__name__)
        return written

    @staticmethod
    def _insert_new(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """INSERT ... ON CONFLICT (id) DO NOTHING; the ids inserted."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        q = dialect.insert(responses).on_conflict_do_nothing(index_elements=["id"]).returning(responses.c.id)
        written: set[str] = set()
        for i in range(0, len(rows), _SQLITE_ROWS):
            written.update(conn.execute(q, [dict(r) for r in rows[i : i + _SQLITE_ROWS]]).scalars())
        return written

    def usage(self, key_id: str, now: float) -> int:
        t = responses
        q = select(func.coalesce(func.sum(t.c.size), 0)).where(t.c.key_id == key_id, t.c.expires_at > now)
        try:
            with self._engine.connect() as conn:
                return int(conn.execute(q).scalar_one())
        except SQLAlchemyError as exc:
            raise store_error("reading responses' size", exc) from exc

    def evict(self, key_id: str, max_bytes: int, now: float) -> int:
        """The key's live bytes (one sum over the index), then, when over `max_bytes`, one window
        over its oldest rows (their running total of sizes) finds the newest row that must go for the
        rest to fit; that row, every older one and every expired one are removed in one DELETE. The
        window reads the oldest rows only, about as many as should go (all of them if sizes vary too
        much for that guess). Rows created at the same instant are removed together."""
        t = responses
        live = and_(t.c.key_id == key_id, t.c.expires_at > now)
        try:
            with self._engine.connect() as conn, begin_immediate(conn):  # read then write: lock first
                total, count = conn.execute(
                    select(func.coalesce(func.sum(t.c.size), 0), func.count()).where(live)
                ).one()
                total, kept, newest_gone = int(total), int(total), None
                if total > max_bytes:
                    need = total - max_bytes
                    guess = min(count, int(count * need / total * 1.5) + 32)
                    for n in (guess, count) if guess < count else (count,):
                        newest_gone, freed, reached = conn.execute(_oldest_out(live, need, n)).one()
                        if reached is not None and reached >= need:
                            kept = total - int(freed)
                            break
                doomed = t.c.expires_at <= now
                if newest_gone is not None:
                    doomed = or_(doomed, t.c.created_at <= newest_gone)
                conn.execute(delete(t).where(t.c.key_id == key_id, doomed))
        except SQLAlchemyError as exc:
            raise store_error("evicting responses", exc) from exc
        return kept

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
