"""Access and metrics storage: virtual keys, budgets with atomic reserve/settle, the audit log, alert
events/state and metric rollups. `SQLAccessRepo(engine)` on SQLite/PostgreSQL; `MemoryAccessRepo()` is
the same implementation on a private in-memory SQLite database (so the double cannot drift).

Budget safety: `reserve` raises a budget window's `reserved_usd` with one conditional UPDATE
(`... WHERE spent + reserved + amount <= limit`) per budget, all budgets of a call in one transaction
(budget ids in ascending order, so PostgreSQL cannot deadlock; SQLite takes `BEGIN IMMEDIATE`). A
row-level conditional update is atomic across processes, so concurrent gateways never reserve past a
limit; only a call costing more than its worst-case estimate can overspend."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine, and_, case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from architect.errors import NotFoundInStore, StoreError
from architect.store.engine import begin_immediate, make_engine
from architect.store.schema import calls, metadata
from architect.store.schema_access import (
    alert_events,
    alert_state,
    api_keys,
    audit_log,
    budget_spend,
    budgets,
    metric_rollups,
    rollup_state,
)

__all__ = [
    "PERIODS",
    "AccessRepo",
    "BudgetItem",
    "MemoryAccessRepo",
    "SQLAccessRepo",
    "period_start",
]

PERIODS = ("day", "month", "total")
STALE_RESERVATION_S = 600.0  # a window with no reserve/settle for this long holds no live reservation
_JSON_KEY_FIELDS = ("models", "tags", "projects", "scopes")

BudgetItem = tuple[int, float, float]  # (budget id, window start, limit in USD)


def period_start(period: str, now: float) -> float:
    """Start of the budget window containing `now` (UTC days and months; 0 for "total")."""
    if period == "total":
        return 0.0
    d = datetime.fromtimestamp(now, UTC)
    if period == "day":
        return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
    if period == "month":
        return datetime(d.year, d.month, 1, tzinfo=UTC).timestamp()
    raise ValueError(f"unknown budget period {period!r}; use day, month or total")


def _key_out(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = dict(row)
    for f in _JSON_KEY_FIELDS:
        out[f] = orjson.loads(out[f]) if out.get(f) else None
    return out


def _key_in(fields: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for f in _JSON_KEY_FIELDS:
        if f in out:
            out[f] = orjson.dumps(out[f]).decode() if out[f] is not None else None
    return out


class AccessRepo(Protocol):
    # keys
    def create_key(self, row: Mapping[str, Any]) -> None: ...
    def get_key(self, key_id: str) -> dict[str, Any] | None: ...
    def key_by_hash(self, secret_hash: str) -> dict[str, Any] | None: ...
    def list_keys(self, ids: Sequence[str] | None = None) -> list[dict[str, Any]]: ...
    def has_keys(self) -> bool:
        """Whether any virtual key was ever created (revoked and expired ones count)."""

    def update_key(self, key_id: str, fields: Mapping[str, Any]) -> dict[str, Any]: ...

    # budgets
    def upsert_budget(self, scope: str, target: str, period: str, limit_usd: float) -> dict[str, Any]: ...
    def delete_budget(self, budget_id: int, *, actor: str) -> dict[str, Any]:
        """Delete a budget and its spend windows and write its audit row, in one transaction."""

    def list_budgets(self, now: float | None = None) -> list[dict[str, Any]]: ...
    def budget_count(self) -> int: ...
    def reserve(self, items: Sequence[BudgetItem], amount: float, now: float) -> dict[str, Any] | None:
        """Hold `amount` on every item or on none; returns None, or the first budget that cannot."""

    def settle(
        self, items: Sequence[BudgetItem], reserved: float, actual: float, now: float
    ) -> list[dict[str, Any]]:
        """Release the reservation, add the actual cost; returns each window's new state."""

    def mark_alerted(self, budget_id: int, window_start: float, pct: int) -> bool: ...

    # audit, alerts
    def add_audit(
        self, actor: str, action: str, target: str | None, before: Any = None, after: Any = None
    ) -> None: ...
    def list_audit(
        self, *, since: float = 0.0, limit: int = 100, actor: str | None = None, action: str | None = None
    ) -> list[dict[str, Any]]: ...
    def add_alert_event(self, event: Mapping[str, Any]) -> int: ...
    def list_alert_events(self, *, since: float = 0.0, limit: int = 100) -> list[dict[str, Any]]: ...
    def flip_alert_state(self, key: str, state: str, now: float) -> bool:
        """Set (rule, target) `key` to `state`; True only for the caller that changed it."""

    def alert_states(self) -> dict[str, dict[str, Any]]: ...

    # rollups
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
    def compact_next_hour(
        self, merge: Callable[[list[dict[str, Any]]], list[dict[str, Any]]], not_after: float
    ) -> float | None:
        """Merge the minute rows of the oldest uncompacted hour ending before `not_after` into hour
        rows and advance the watermark; returns the hour compacted, or None."""

    def purge_rollups(self, res: int, before: float) -> int: ...

    # spend from the ledger (exact, SQL GROUP BY)
    def spend(
        self, since: float, until: float, by: str, where: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...


def _err(what: str, exc: SQLAlchemyError) -> StoreError:
    return StoreError(f"{what} failed: {exc.__class__.__name__}: {str(exc.args[0]) if exc.args else ''}")


def _rollup_window(q: Any, dimset: int, res: int, lo: int, hi: int, where: Mapping[str, Any] | None) -> Any:
    """Restrict a query on metric_rollups to one dimension set, resolution, bucket range and filters."""
    t = metric_rollups
    q = q.where(t.c.dimset == dimset, t.c.res == res, t.c.bucket >= lo, t.c.bucket < hi)
    for k, v in (where or {}).items():
        if isinstance(v, list | tuple | set | frozenset):
            q = q.where(t.c[k].in_(list(v)))
        else:
            q = q.where(t.c[k].is_(None) if v is None else t.c[k] == v)
    return q


def _cut(value: str | None, n: int) -> str | None:
    return None if value is None else value[:n]


def _audit_row(actor: str, action: str, target: str | None, before: Any, after: Any) -> Any:
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


class SQLAccessRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _insert(self) -> Any:
        return postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert

    # -- keys ----------------------------------------------------------------------------------------
    def create_key(self, row: Mapping[str, Any]) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(api_keys).values(**_key_in(row)))
        except IntegrityError as exc:
            raise StoreError("a key with this id or secret already exists") from exc
        except SQLAlchemyError as exc:
            raise _err("creating a key", exc) from exc

    def get_key(self, key_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        return _key_out(row._mapping) if row else None

    def key_by_hash(self, secret_hash: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.secret_hash == secret_hash)).first()
        return _key_out(row._mapping) if row else None

    def list_keys(self, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if ids is not None:
            q = q.where(api_keys.c.id.in_(list(ids)))
        with self._engine.connect() as conn:
            return [_key_out(r._mapping) for r in conn.execute(q)]

    def has_keys(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(api_keys.c.id).limit(1)).first() is not None

    def update_key(self, key_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        with self._engine.begin() as conn:
            n = conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(**_key_in(fields))
            ).rowcount
        if not n:
            raise NotFoundInStore(f"no key with id {key_id!r}")
        out = self.get_key(key_id)
        assert out is not None
        return out

    # -- budgets -------------------------------------------------------------------------------------
    def upsert_budget(self, scope: str, target: str, period: str, limit_usd: float) -> dict[str, Any]:
        now = time.time()
        with self._engine.begin() as conn:
            cond = and_(budgets.c.scope == scope, budgets.c.target == target, budgets.c.period == period)
            n = conn.execute(update(budgets).where(cond).values(limit_usd=limit_usd)).rowcount
            if not n:
                conn.execute(
                    insert(budgets).values(
                        scope=scope, target=target, period=period, limit_usd=limit_usd, created_at=now
                    )
                )
            row = conn.execute(select(budgets).where(cond)).one()
        return dict(row._mapping)

    def delete_budget(self, budget_id: int, *, actor: str) -> dict[str, Any]:
        try:
            with self._engine.begin() as conn:
                found = conn.execute(select(budgets).where(budgets.c.id == budget_id)).first()
                if found is None:
                    raise NotFoundInStore(f"no budget with id {budget_id}")
                row = {str(k): v for k, v in found._mapping.items()}
                target = f"{row['scope']}:{row['target']}:{row['period']}"
                conn.execute(delete(budget_spend).where(budget_spend.c.budget_id == budget_id))
                conn.execute(delete(budgets).where(budgets.c.id == budget_id))
                conn.execute(_audit_row(actor, "budget.delete", target, row, None))
        except SQLAlchemyError as exc:
            raise _err("deleting a budget", exc) from exc
        return row

    def list_budgets(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(budgets).order_by(budgets.c.id))]
            spend = {
                (r.budget_id, r.window_start): r
                for r in conn.execute(select(budget_spend).where(budget_spend.c.window_start >= 0))
            }
        for b in rows:
            start = period_start(b["period"], now)
            s = spend.get((b["id"], start))
            stale = s is None or s.updated_at < now - STALE_RESERVATION_S
            b["window_start"] = start
            b["spent_usd"] = s.spent_usd if s is not None else 0.0
            b["reserved_usd"] = 0.0 if stale or s is None else max(0.0, s.reserved_usd)
            b["remaining_usd"] = max(0.0, b["limit_usd"] - b["spent_usd"] - b["reserved_usd"])
        return rows

    def budget_count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(budgets)).scalar_one())

    def _ensure_windows(self, conn: Any, items: Iterable[BudgetItem], now: float) -> None:
        ins = self._insert()
        for bid, start, _ in items:
            conn.execute(
                ins(budget_spend)
                .values(
                    budget_id=bid,
                    window_start=start,
                    spent_usd=0.0,
                    reserved_usd=0.0,
                    alerted_pct=0,
                    updated_at=now,
                )
                .on_conflict_do_nothing()
            )

    def reserve(self, items: Sequence[BudgetItem], amount: float, now: float) -> dict[str, Any] | None:
        ordered = sorted(items)
        try:
            with self._engine.connect() as conn, begin_immediate(conn) as tx:
                self._ensure_windows(conn, ordered, now)
                for bid, start, limit in ordered:
                    key = and_(budget_spend.c.budget_id == bid, budget_spend.c.window_start == start)
                    conn.execute(
                        update(budget_spend)
                        .where(key, budget_spend.c.updated_at < now - STALE_RESERVATION_S)
                        .values(reserved_usd=0.0)
                    )
                    n = conn.execute(
                        update(budget_spend)
                        .where(
                            key,
                            budget_spend.c.spent_usd + budget_spend.c.reserved_usd + amount <= limit + 1e-12,
                        )
                        .values(reserved_usd=budget_spend.c.reserved_usd + amount, updated_at=now)
                    ).rowcount
                    if not n:
                        row = conn.execute(select(budget_spend).where(key)).one()
                        tx.rollback()
                        return {
                            "budget_id": bid,
                            "window_start": start,
                            "limit_usd": limit,
                            "spent_usd": row.spent_usd,
                            "reserved_usd": row.reserved_usd,
                        }
        except SQLAlchemyError as exc:
            raise _err("budget reservation", exc) from exc
        return None

    def settle(
        self, items: Sequence[BudgetItem], reserved: float, actual: float, now: float
    ) -> list[dict[str, Any]]:
        out = []
        try:
            with self._engine.connect() as conn, begin_immediate(conn):
                self._ensure_windows(conn, sorted(items), now)
                for bid, start, limit in sorted(items):
                    key = and_(budget_spend.c.budget_id == bid, budget_spend.c.window_start == start)
                    left = budget_spend.c.reserved_usd - reserved
                    conn.execute(
                        update(budget_spend)
                        .where(key)
                        .values(
                            reserved_usd=case((left < 1e-9, 0.0), else_=left),
                            spent_usd=budget_spend.c.spent_usd + actual,
                            updated_at=now,
                        )
                    )
                    row = conn.execute(select(budget_spend).where(key)).one()
                    out.append({**row._mapping, "limit_usd": limit})
        except SQLAlchemyError as exc:
            raise _err("budget settlement", exc) from exc
        return out

    def mark_alerted(self, budget_id: int, window_start: float, pct: int) -> bool:
        with self._engine.begin() as conn:
            n = conn.execute(
                update(budget_spend)
                .where(
                    budget_spend.c.budget_id == budget_id,
                    budget_spend.c.window_start == window_start,
                    budget_spend.c.alerted_pct < pct,
                )
                .values(alerted_pct=pct)
            ).rowcount
        return bool(n)

    # -- audit and alerts ----------------------------------------------------------------------------
    def add_audit(
        self, actor: str, action: str, target: str | None, before: Any = None, after: Any = None
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(_audit_row(actor, action, target, before, after))

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
                self._insert()(alert_state)
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

    # -- rollups -------------------------------------------------------------------------------------
    def insert_rollups(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        try:
            with self._engine.connect() as conn, begin_immediate(conn):
                w = conn.execute(
                    select(rollup_state.c.value).where(rollup_state.c.name == "hour_watermark")
                ).scalar()
                out = [dict(r) for r in rows]
                if w is not None:  # minutes of hours already compacted also go straight to the hour
                    out += [
                        {**r, "res": 3600, "bucket": r["bucket"] - r["bucket"] % 3600}
                        for r in rows
                        if r["res"] == 60 and r["bucket"] < w
                    ]
                conn.execute(insert(metric_rollups), out)
        except SQLAlchemyError as exc:
            raise _err("rollup write", exc) from exc

    def rollup_rows(
        self,
        dimset: int,
        res: int,
        lo: int,
        hi: int,
        where: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        t = metric_rollups
        q = _rollup_window(select(t), dimset, res, lo, hi, where)
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
        q = _rollup_window(
            select(*groups, *(func.sum(t.c[s]).label(s) for s in sums)), dimset, res, lo, hi, where
        )
        if groups:
            q = q.group_by(*groups)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q) if r._mapping[sums[0]] is not None]

    def hour_watermark(self) -> float | None:
        with self._engine.connect() as conn:
            v = conn.execute(
                select(rollup_state.c.value).where(rollup_state.c.name == "hour_watermark")
            ).scalar()
        return None if v is None else float(v)

    def compact_next_hour(
        self, merge: Callable[[list[dict[str, Any]]], list[dict[str, Any]]], not_after: float
    ) -> float | None:
        t = metric_rollups
        try:
            with self._engine.connect() as conn, begin_immediate(conn) as tx:
                w = conn.execute(
                    select(rollup_state.c.value).where(rollup_state.c.name == "hour_watermark")
                ).scalar()
                if w is None:
                    first = conn.execute(select(func.min(t.c.bucket)).where(t.c.res == 60)).scalar()
                    start = float(first - first % 3600) if first is not None else not_after - not_after % 3600
                    conn.execute(
                        self._insert()(rollup_state)
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
            raise _err("rollup compaction", exc) from exc

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

    # -- spend ---------------------------------------------------------------------------------------
    def spend(
        self, since: float, until: float, by: str, where: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        col = calls.c[by]
        q = (
            select(
                col.label(by),
                func.count().label("requests"),
                func.coalesce(func.sum(calls.c.cost_usd), 0.0).label("cost_usd"),
                func.coalesce(func.sum(calls.c.prompt_tokens), 0).label("prompt_tokens"),
                func.coalesce(func.sum(calls.c.completion_tokens), 0).label("completion_tokens"),
                func.coalesce(func.sum(calls.c.saved_cost_usd), 0.0).label("cache_saved_usd"),
            )
            .where(calls.c.ts >= since, calls.c.ts < until)
            .group_by(col)
            .order_by(func.sum(calls.c.cost_usd).desc())
        )
        for k, v in (where or {}).items():
            q = q.where(calls.c[k].is_(None) if v is None else calls.c[k] == v)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


class MemoryAccessRepo(SQLAccessRepo):
    """The in-memory double: the SQL implementation on a private in-memory SQLite database.

    Its `spend` sees only calls recorded through `ledger_rows` (an in-memory store's ledger is separate);
    the metrics domain reads spend from rollups, which live here."""

    def __init__(self) -> None:
        engine = make_engine("sqlite://")  # one shared connection (StaticPool): serialise its use
        metadata.create_all(engine, tables=[metadata.tables[n] for n in _TABLES])
        super().__init__(engine)
        self._lock = threading.RLock()

    def __getattribute__(self, name: str) -> Any:
        attr = object.__getattribute__(self, name)
        if name.startswith("_") or not callable(attr):
            return attr
        lock = object.__getattribute__(self, "_lock")

        def locked(*a: Any, **kw: Any) -> Any:
            with lock:
                return attr(*a, **kw)

        return locked


_TABLES = (
    "api_keys",
    "budgets",
    "budget_spend",
    "audit_log",
    "alert_events",
    "alert_state",
    "metric_rollups",
    "rollup_state",
    "calls",
)
