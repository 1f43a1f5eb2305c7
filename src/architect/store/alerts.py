"""Alert events and state: `SQLAlertRepo(engine)` on SQLite/PostgreSQL; `SQLiteMemoryAlertRepo(db)` is
the same implementation on the memory store's in-memory SQLite database.

Each (rule, target) has one state row, flipped with a conditional UPDATE: of several processes
evaluating the same rule, exactly one sees its flip succeed and records the firing or resolution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Engine, insert, select, update

from architect.store.engine import begin_immediate, dialect_insert
from architect.store.schema_alerts import alert_events, alert_state
from architect.store.sqlite_memory import Serialised, SQLiteMemory

__all__ = ["AlertRepo", "SQLAlertRepo", "SQLiteMemoryAlertRepo"]


class AlertRepo(Protocol):
    def add_alert_event(self, event: Mapping[str, Any]) -> int: ...
    def list_alert_events(self, *, since: float = 0.0, limit: int = 100) -> list[dict[str, Any]]: ...
    def flip_alert_state(self, key: str, state: str, now: float) -> bool:
        """Set (rule, target) `key` to `state`; True only for the caller that changed it."""

    def alert_states(self) -> dict[str, dict[str, Any]]: ...


class SQLAlertRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_alert_event(self, event: Mapping[str, Any]) -> int:
        with self._engine.begin() as conn:
            res = conn.execute(insert(alert_events).values(**event))
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def list_alert_events(self, *, since: float = 0.0, limit: int = 100) -> list[dict[str, Any]]:
        q = (
            select(alert_events)
            .where(alert_events.c.ts >= since)
            .order_by(alert_events.c.ts.desc(), alert_events.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def flip_alert_state(self, key: str, state: str, now: float) -> bool:
        with self._engine.connect() as conn, begin_immediate(conn):
            conn.execute(
                dialect_insert(self._engine)(alert_state)
                .values(key=key, state="resolved", since=now)
                .on_conflict_do_nothing()
            )
            n = conn.execute(
                update(alert_state)
                .where(alert_state.c.key == key, alert_state.c.state != state)
                .values(state=state, since=now)
            ).rowcount
        return bool(n)

    def alert_states(self) -> dict[str, dict[str, Any]]:
        with self._engine.connect() as conn:
            return {r.key: dict(r._mapping) for r in conn.execute(select(alert_state))}


class SQLiteMemoryAlertRepo(Serialised, SQLAlertRepo):
    """The double: the SQL implementation on an in-memory SQLite database (a private one by default)."""

    def __init__(self, db: SQLiteMemory | None = None) -> None:
        db = db or SQLiteMemory()
        super().__init__(db.engine)
        self._lock = db.lock
