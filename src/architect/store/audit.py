"""The audit log: who changed what, with the values before and after (stored as JSON).
`SQLAuditRepo(engine)` on SQLite/PostgreSQL; `SQLiteMemoryAuditRepo(db)` is the same implementation
on the memory store's in-memory SQLite database. `audit_insert` is the INSERT of one row, for a
repository that writes its audit row in its own transaction (a budget's deletion)."""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine, Insert, insert, select

from architect.store.schema_audit import audit_log
from architect.store.sqlite_memory import Serialised, SQLiteMemory

__all__ = ["AuditRepo", "SQLAuditRepo", "SQLiteMemoryAuditRepo", "audit_insert"]


class AuditRepo(Protocol):
    def add_audit(
        self, actor: str, action: str, target: str | None, before: Any = None, after: Any = None
    ) -> None: ...
    def list_audit(
        self, *, since: float = 0.0, limit: int = 100, actor: str | None = None, action: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest rows first, with `before` and `after` decoded."""


def _cut(value: str | None, n: int) -> str | None:
    return None if value is None else value[:n]


def audit_insert(actor: str, action: str, target: str | None, before: Any, after: Any) -> Insert:
    """The INSERT of one audit row; `before` and `after` are stored as JSON."""

    def enc(v: Any) -> str | None:
        return None if v is None else orjson.dumps(v, default=str, option=orjson.OPT_NON_STR_KEYS).decode()

    # cut to the columns' lengths (a target such as "project:<200 characters>:month" is longer; the
    # full values are in before/after)
    return insert(audit_log).values(
        ts=time.time(),
        actor=_cut(actor, 200),
        action=_cut(action, 64),
        target=_cut(target, 200),
        before=enc(before),
        after=enc(after),
    )


class SQLAuditRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_audit(
        self, actor: str, action: str, target: str | None, before: Any = None, after: Any = None
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(audit_insert(actor, action, target, before, after))

    def list_audit(
        self, *, since: float = 0.0, limit: int = 100, actor: str | None = None, action: str | None = None
    ) -> list[dict[str, Any]]:
        q = select(audit_log).where(audit_log.c.ts >= since)
        if actor is not None:
            q = q.where(audit_log.c.actor == actor)
        if action is not None:
            q = q.where(audit_log.c.action == action)
        q = q.order_by(audit_log.c.ts.desc(), audit_log.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            r["before"] = orjson.loads(r["before"]) if r["before"] else None
            r["after"] = orjson.loads(r["after"]) if r["after"] else None
        return rows


class SQLiteMemoryAuditRepo(Serialised, SQLAuditRepo):
    """The double: the SQL implementation on an in-memory SQLite database (a private one by default)."""

    def __init__(self, db: SQLiteMemory | None = None) -> None:
        db = db or SQLiteMemory()
        super().__init__(db.engine)
        self._lock = db.lock
