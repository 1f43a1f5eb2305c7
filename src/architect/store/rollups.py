"""Metric rollups: per-minute partial aggregates of the calls, merged into hour rows by a compactor.
`SQLRollupRepo(engine)` on SQLite/PostgreSQL; `SQLiteMemoryRollupRepo(db)` is the same implementation
on the memory store's in-memory SQLite database. What the rows hold and how they are merged is
`metrics.rollups`'s business; this module stores, selects, sums and purges them.

The compactor's watermark (`rollup_state` "hour_watermark": hours before it are compacted) is
advanced with a conditional UPDATE, so of several processes exactly one compacts each hour; minute
rows written later for an hour already compacted also go straight to its hour rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, Select, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from architect.store.engine import begin_immediate, dialect_insert, store_error
from architect.store.schema_rollups import metric_rollups, rollup_state
from architect.store.sqlite_memory import Serialised, SQLiteMemory

__all__ = ["RollupRepo", "SQLRollupRepo", "SQLiteMemoryRollupRepo"]

_S = TypeVar("_S", bound=Select[Any])
Merge = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class RollupRepo(Protocol):
    def insert_rollups(self, rows: Sequence[Mapping[str, Any]]) -> None: ...
    def rollup_rows(
        self,
        dimset: int,
        res: int,
        lo: int,
        hi: int,
        where: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Rollup rows of one resolution."""

    def rollup_sums(
        self,
        dimset: int,
        res: int,
        lo: int,
        hi: int,
        where: Mapping[str, Any] | None,
        group_by: Sequence[str],
        sums: Sequence[str],
    ) -> list[dict[str, Any]]:
        """SUM of the `sums` columns per `group_by` combination, computed by the database."""

    def hour_watermark(self) -> float | None: ...
    def compact_next_hour(self, merge: Merge, not_after: float) -> float | None:
        """Merge the minute rows of the oldest uncompacted hour ending before `not_after` into hour
        rows and advance the watermark; returns the hour compacted, or None."""

    def purge_rollups(self, res: int, before: float) -> int: ...


def _window(q: _S, dimset: int, res: int, lo: int, hi: int, where: Mapping[str, Any] | None) -> _S:
    """Restrict a query on metric_rollups to one dimension set, resolution, bucket range and filters."""
    t = metric_rollups
    q = q.where(t.c.dimset == dimset, t.c.res == res, t.c.bucket >= lo, t.c.bucket < hi)
    for k, v in (where or {}).items():
        if isinstance(v, list | tuple | set | frozenset):
            q = q.where(t.c[k].in_(list(v)))
        else:
            q = q.where(t.c[k].is_(None) if v is None else t.c[k] == v)
    return q


def _watermark(conn: Connection) -> Any:
    return conn.execute(select(rollup_state.c.value).where(rollup_state.c.name == "hour_watermark")).scalar()


class SQLRollupRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def insert_rollups(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        try:
            with self._engine.connect() as conn, begin_immediate(conn):
                w = _watermark(conn)
                out = [dict(r) for r in rows]
                if w is not None:  # minutes of hours already compacted also go straight to the hour
                    out += [
                        {**r, "res": 3600, "bucket": r["bucket"] - r["bucket"] % 3600}
                        for r in rows
                        if r["res"] == 60 and r["bucket"] < w
                    ]
                conn.execute(insert(metric_rollups), out)
        except SQLAlchemyError as exc:
            raise store_error("rollup write", exc) from exc

    def rollup_rows(
        self,
        dimset: int,
        res: int,
        lo: int,
        hi: int,
        where: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        q = _window(select(metric_rollups), dimset, res, lo, hi, where)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def rollup_sums(
        self,
        dimset: int,
        res: int,
        lo: int,
        hi: int,
        where: Mapping[str, Any] | None,
        group_by: Sequence[str],
        sums: Sequence[str],
    ) -> list[dict[str, Any]]:
        t = metric_rollups
        groups = [t.c[g] for g in group_by]
        q = _window(select(*groups, *(func.sum(t.c[s]).label(s) for s in sums)), dimset, res, lo, hi, where)
        if groups:
            q = q.group_by(*groups)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q) if r._mapping[sums[0]] is not None]

    def hour_watermark(self) -> float | None:
        with self._engine.connect() as conn:
            v = _watermark(conn)
        return None if v is None else float(v)

    def compact_next_hour(self, merge: Merge, not_after: float) -> float | None:
        t = metric_rollups
        try:
            with self._engine.connect() as conn, begin_immediate(conn) as tx:
                w = _watermark(conn)
                if w is None:
                    first = conn.execute(select(func.min(t.c.bucket)).where(t.c.res == 60)).scalar()
                    start = float(first - first % 3600) if first is not None else not_after - not_after % 3600
                    conn.execute(
                        dialect_insert(self._engine)(rollup_state)
                        .values(name="hour_watermark", value=start)
                        .on_conflict_do_nothing()
                    )
                    return None
                hour = float(w)
                if hour + 3600 > not_after:
                    return None
                rows = [
                    dict(r._mapping)
                    for r in conn.execute(
                        select(t).where(t.c.res == 60, t.c.bucket >= hour, t.c.bucket < hour + 3600)
                    )
                ]
                merged = merge(rows)
                for r in merged:
                    r.pop("id", None)
                    r["res"], r["bucket"] = 3600, int(hour)
                if merged:
                    conn.execute(insert(t), merged)
                n = conn.execute(
                    update(rollup_state)
                    .where(rollup_state.c.name == "hour_watermark", rollup_state.c.value == hour)
                    .values(value=hour + 3600)
                ).rowcount
                if not n:  # another process compacted it first
                    tx.rollback()
                    return None
                return hour
        except SQLAlchemyError as exc:
            raise store_error("rollup compaction", exc) from exc

    def purge_rollups(self, res: int, before: float) -> int:
        with self._engine.begin() as conn:
            return int(
                conn.execute(
                    delete(metric_rollups).where(
                        metric_rollups.c.res == res, metric_rollups.c.bucket < before
                    )
                ).rowcount
                or 0
            )


class SQLiteMemoryRollupRepo(Serialised, SQLRollupRepo):
    """The double: the SQL implementation on an in-memory SQLite database (a private one by default)."""

    def __init__(self, db: SQLiteMemory | None = None) -> None:
        db = db or SQLiteMemory()
        super().__init__(db.engine)
        self._lock = db.lock
