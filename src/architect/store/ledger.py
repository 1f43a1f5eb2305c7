"""Ledger storage: calls and their attempts. SQL and in-memory implementations of one interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import SQLAlchemyError

from architect.errors import StoreError
from architect.store.schema import attempts, calls

__all__ = ["CALL_COLUMNS", "LedgerRepo", "MemoryLedger", "SQLLedger"]

CALL_COLUMNS = tuple(c.name for c in calls.columns if c.name != "id")
ATTEMPT_COLUMNS = tuple(c.name for c in attempts.columns if c.name != "id")
_CALL_DEFAULTS: dict[str, Any] = {
    c.name: (c.default.arg if c.default is not None else None)  # type: ignore[attr-defined]
    for c in calls.columns
    if c.name != "id"
}
_ATTEMPT_DEFAULTS: dict[str, Any] = {
    c.name: (c.default.arg if c.default is not None else None)  # type: ignore[attr-defined]
    for c in attempts.columns
    if c.name != "id"
}


def _complete(row: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    out.update(row)
    return out


class LedgerRepo(Protocol):
    def record(
        self, call_rows: Sequence[Mapping[str, Any]], attempt_rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert calls and attempts (multi-row inserts, one transaction)."""

    def calls_between(
        self,
        since: float,
        until: float,
        *,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Calls with since <= ts < until, optionally filtered by column equality."""

    def get_call(self, request_id: str) -> dict[str, Any] | None: ...

    def attempts_for(self, request_id: str) -> list[dict[str, Any]]: ...

    def purge_before(self, ts: float) -> int:
        """Delete calls (and their attempts) older than ts; returns the number of calls deleted."""


def _insert_sql(table: str, columns: Sequence[str], paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def _tuples(rows: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    items = tuple(defaults.items())
    return [tuple(r.get(k, d) for k, d in items) for r in rows]


class SQLLedger:
    """Writes go straight to the driver's executemany with one prepared statement per table (the
    ledger writer's batches are the hottest writes in the system); reads use SQLAlchemy Core."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        style = engine.dialect.paramstyle
        self._insert_calls = _insert_sql("calls", list(_CALL_DEFAULTS), style)
        self._insert_attempts = _insert_sql("call_attempts", list(_ATTEMPT_DEFAULTS), style)

    def record(
        self, call_rows: Sequence[Mapping[str, Any]], attempt_rows: Sequence[Mapping[str, Any]]
    ) -> None:
        try:
            with self._engine.begin() as conn:
                if call_rows:
                    conn.exec_driver_sql(self._insert_calls, _tuples(call_rows, _CALL_DEFAULTS))
                if attempt_rows:
                    conn.exec_driver_sql(self._insert_attempts, _tuples(attempt_rows, _ATTEMPT_DEFAULTS))
        except SQLAlchemyError as exc:
            raise StoreError(
                f"ledger write failed: {exc.__class__.__name__}: {exc.args[0] if exc.args else ''}"
            ) from exc

    def calls_between(
        self,
        since: float,
        until: float,
        *,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        cols = [calls.c[c] for c in (columns or CALL_COLUMNS)]
        q = select(*cols).where(calls.c.ts >= since, calls.c.ts < until)
        for k, v in (where or {}).items():
            q = q.where(calls.c[k].is_(None) if v is None else calls.c[k] == v)
        q = q.order_by(calls.c.ts.desc() if newest_first else calls.c.ts, calls.c.id)
        if limit is not None:
            q = q.limit(limit).offset(offset)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def get_call(self, request_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(calls).where(calls.c.request_id == request_id)).first()
        return dict(row._mapping) if row else None

    def attempts_for(self, request_id: str) -> list[dict[str, Any]]:
        q = select(attempts).where(attempts.c.request_id == request_id).order_by(attempts.c.attempt)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def purge_before(self, ts: float) -> int:
        with self._engine.begin() as conn:
            old = select(calls.c.request_id).where(calls.c.ts < ts)
            conn.execute(delete(attempts).where(attempts.c.request_id.in_(old)))
            return conn.execute(delete(calls).where(calls.c.ts < ts)).rowcount or 0


class MemoryLedger:
    """The in-memory double, for fast unit tests."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []

    def record(
        self, call_rows: Sequence[Mapping[str, Any]], attempt_rows: Sequence[Mapping[str, Any]]
    ) -> None:
        ids = {c["request_id"] for c in self.calls}
        for r in call_rows:
            if r["request_id"] in ids:
                raise StoreError(f"ledger write failed: duplicate request_id {r['request_id']}")
        self.calls.extend(_complete(r, _CALL_DEFAULTS) for r in call_rows)
        self.attempts.extend(_complete(r, _ATTEMPT_DEFAULTS) for r in attempt_rows)

    def calls_between(
        self,
        since: float,
        until: float,
        *,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        rows = [
            c
            for c in self.calls
            if since <= c["ts"] < until and all(c.get(k) == v for k, v in (where or {}).items())
        ]
        rows.sort(key=lambda c: c["ts"], reverse=newest_first)
        if limit is not None:
            rows = rows[offset : offset + limit]
        cols = columns or CALL_COLUMNS
        return [{k: c.get(k) for k in cols} for c in rows]

    def get_call(self, request_id: str) -> dict[str, Any] | None:
        return next((dict(c) for c in self.calls if c["request_id"] == request_id), None)

    def attempts_for(self, request_id: str) -> list[dict[str, Any]]:
        return sorted(
            (dict(a) for a in self.attempts if a["request_id"] == request_id), key=lambda a: a["attempt"]
        )

    def purge_before(self, ts: float) -> int:
        old = {c["request_id"] for c in self.calls if c["ts"] < ts}
        self.calls = [c for c in self.calls if c["request_id"] not in old]
        self.attempts = [a for a in self.attempts if a["request_id"] not in old]
        return len(old)
