"""Stored Responses API answers (`previous_response_id`): `SQLResponseRepo(engine)` on
SQLite/PostgreSQL; `SQLiteMemoryResponseRepo(db)` is the same implementation on the memory store's
in-memory SQLite database.

A row belongs to one key (`key_id`): every read and delete names the key, so a key can never read or
delete another key's response (to the caller it is the same as a missing id). Rows expire
(`expires_at`, decided by the caller's clock); `evict` keeps a key's rows under a byte cap by removing
its oldest (the caller decides when, from the key's `usage` it keeps count of)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from architect.store.engine import begin_immediate, store_error
from architect.store.schema_responses import responses
from architect.store.sqlite_memory import Serialised, SQLiteMemory

__all__ = ["ResponseRepo", "SQLResponseRepo", "SQLiteMemoryResponseRepo"]


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
        t = responses
        q = (
            select(t.c.id, t.c.size, t.c.expires_at)
            .where(t.c.key_id == key_id)
            .order_by(t.c.created_at.desc(), t.c.id.desc())
        )
        try:
            with self._engine.connect() as conn, begin_immediate(conn):  # read then write: lock first
                total, kept, doomed = 0, 0, []
                for rid, size, expires_at in conn.execute(q):
                    total += int(size)
                    if expires_at <= now or total > max_bytes:
                        doomed.append(rid)
                    else:
                        kept += int(size)
                for i in range(0, len(doomed), 500):
                    conn.execute(delete(t).where(t.c.id.in_(doomed[i : i + 500])))
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
