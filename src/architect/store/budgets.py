"""Budgets and their spend windows, with atomic reserve/settle. `SQLBudgetRepo(engine)` on
SQLite/PostgreSQL; `SQLiteMemoryBudgetRepo(db)` is the same implementation on the memory store's
in-memory SQLite database.

Budget safety: `reserve` raises a budget window's `reserved_usd` with one conditional UPDATE
(`... WHERE spent + reserved + amount <= limit`) per budget, all budgets of a call in one transaction
(budget ids in ascending order, so PostgreSQL cannot deadlock; SQLite takes `BEGIN IMMEDIATE`). A
row-level conditional update is atomic across processes, so concurrent gateways never reserve past a
limit; only a call costing more than its worst-case estimate can overspend."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Float, and_, bindparam, case, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from architect.errors import NotFoundInStore
from architect.store.audit import audit_insert
from architect.store.engine import begin_immediate, dialect_insert, store_error
from architect.store.schema_budgets import budget_spend, budgets
from architect.store.sqlite_memory import Serialised, SQLiteMemory

__all__ = [
    "PERIODS",
    "STALE_RESERVATION_S",
    "BudgetItem",
    "BudgetRepo",
    "SQLBudgetRepo",
    "SQLiteMemoryBudgetRepo",
    "period_start",
]

PERIODS = ("day", "month", "total")
STALE_RESERVATION_S = 600.0  # a window with no reserve/settle for this long holds no live reservation

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


class BudgetRepo(Protocol):
    def upsert_budget(self, scope: str, target: str, period: str, limit_usd: float) -> dict[str, Any]: ...
    def delete_budget(self, budget_id: int, *, actor: str) -> dict[str, Any]:
        """Delete a budget and its spend windows and write its audit row, in one transaction."""

    def list_budgets(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every budget with its current window's spend, live reservations and what remains."""

    def budget_count(self) -> int: ...
    def reserve(self, items: Sequence[BudgetItem], amount: float, now: float) -> dict[str, Any] | None:
        """Hold `amount` on every item or on none; returns None, or the first budget that cannot."""

    def settle(
        self, items: Sequence[BudgetItem], reserved: float, actual: float, now: float
    ) -> list[dict[str, Any]]:
        """Release the reservation, add the actual cost; returns each window's new state."""

    def mark_alerted(self, budget_id: int, window_start: float, pct: int) -> bool:
        """Raise a window's alerted level to `pct`; True only for the caller that raised it."""


# The statements of the request path (reserve, settle), built once with bound parameters: building
# expressions per call costs CPU and leaves reference cycles for the garbage collector on every call.
_WINDOW = and_(
    budget_spend.c.budget_id == bindparam("bid"), budget_spend.c.window_start == bindparam("start")
)
_CLEAR_STALE = (
    update(budget_spend)
    .where(_WINDOW, budget_spend.c.updated_at < bindparam("stale_before", type_=Float))
    .values(reserved_usd=0.0)
)
_RESERVE = (
    update(budget_spend)
    .where(
        _WINDOW,
        budget_spend.c.spent_usd + budget_spend.c.reserved_usd + bindparam("amount", type_=Float)
        <= bindparam("cap", type_=Float),
    )
    .values(
        reserved_usd=budget_spend.c.reserved_usd + bindparam("amount", type_=Float),
        updated_at=bindparam("now"),
    )
)
_LEFT = budget_spend.c.reserved_usd - bindparam("reserved", type_=Float)
_SETTLE = (
    update(budget_spend)
    .where(_WINDOW)
    .values(
        reserved_usd=case((_LEFT < 1e-9, 0.0), else_=_LEFT),
        spent_usd=budget_spend.c.spent_usd + bindparam("actual", type_=Float),
        updated_at=bindparam("now"),
    )
)
_WINDOW_ROW = select(budget_spend).where(_WINDOW)


class SQLBudgetRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._new_window = dialect_insert(engine)(budget_spend).on_conflict_do_nothing()

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
                conn.execute(audit_insert(actor, "budget.delete", target, row, None))
        except SQLAlchemyError as exc:
            raise store_error("deleting a budget", exc) from exc
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

    def _ensure_windows(self, conn: Connection, items: Iterable[BudgetItem], now: float) -> None:
        rows = [
            {"budget_id": bid, "window_start": start, "spent_usd": 0.0, "reserved_usd": 0.0, "alerted_pct": 0,
             "updated_at": now}
            for bid, start, _ in items
        ]  # fmt: skip
        if rows:
            conn.execute(self._new_window, rows)

    def reserve(self, items: Sequence[BudgetItem], amount: float, now: float) -> dict[str, Any] | None:
        ordered = sorted(items)
        try:
            with self._engine.connect() as conn, begin_immediate(conn) as tx:
                self._ensure_windows(conn, ordered, now)
                for bid, start, limit in ordered:
                    window = {"bid": bid, "start": start}
                    conn.execute(_CLEAR_STALE, {**window, "stale_before": now - STALE_RESERVATION_S})
                    n = conn.execute(
                        _RESERVE, {**window, "amount": amount, "cap": limit + 1e-12, "now": now}
                    ).rowcount
                    if not n:
                        row = conn.execute(_WINDOW_ROW, window).one()
                        tx.rollback()
                        return {
                            "budget_id": bid,
                            "window_start": start,
                            "limit_usd": limit,
                            "spent_usd": row.spent_usd,
                            "reserved_usd": row.reserved_usd,
                        }
        except SQLAlchemyError as exc:
            raise store_error("budget reservation", exc) from exc
        return None

    def settle(
        self, items: Sequence[BudgetItem], reserved: float, actual: float, now: float
    ) -> list[dict[str, Any]]:
        out = []
        try:
            with self._engine.connect() as conn, begin_immediate(conn):
                self._ensure_windows(conn, sorted(items), now)
                for bid, start, limit in sorted(items):
                    window = {"bid": bid, "start": start}
                    conn.execute(_SETTLE, {**window, "reserved": reserved, "actual": actual, "now": now})
                    row = conn.execute(_WINDOW_ROW, window).one()
                    out.append({**row._mapping, "limit_usd": limit})
        except SQLAlchemyError as exc:
            raise store_error("budget settlement", exc) from exc
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


class SQLiteMemoryBudgetRepo(Serialised, SQLBudgetRepo):
    """The double: the SQL implementation on an in-memory SQLite database (a private one by default;
    the memory store shares its database with the audit log, which a deletion writes to)."""

    def __init__(self, db: SQLiteMemory | None = None) -> None:
        db = db or SQLiteMemory()
        super().__init__(db.engine)
        self._lock = db.lock
