"""The shared limiter row and the rate limit of task starts (GCRA), shared by every worker.

A claim with shared limits (concurrency, role limits, rate) first locks the `task_limits` row
(`SELECT ... FOR UPDATE` on PostgreSQL; the claim's `BEGIN IMMEDIATE` on SQLite), so the limit checks
and the claim are serialised across processes and machines.

The rate limit is GCRA (the generic cell rate algorithm) without burst tolerance. A rate of N starts
per period P has the emission interval T = P / N; the row holds the theoretical arrival time (TAT),
the earliest time the next task may start. A claim at `now` may start one task once `now >= TAT`,
and the TAT then moves to `max(TAT, now) + T`. So consecutive starts are at least T apart: every
window of length P holds at most N starts, spread one every T seconds instead of bunched, and the
TAT tells a worker held back exactly when to try again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from architect.store.schema_orchestrator import task_limits

__all__ = ["GLOBAL", "Gcra", "lock_limiter", "save_tat"]

GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class Gcra:
    """GCRA with no burst beyond one start: starts at least `interval` seconds apart."""

    interval: float

    @classmethod
    def of(cls, rate: int, period: float) -> Gcra:
        """N starts per `period` seconds: one every period / N seconds."""
        return cls(period / rate)

    @staticmethod
    def allowed(tat: float, now: float) -> int:
        """How many tasks may start at `now`: one once `now` reached the TAT, else none."""
        return 1 if now >= tat else 0

    def advance(self, tat: float, now: float, started: int) -> float:
        """The TAT after `started` starts at `now` (unchanged when nothing started)."""
        return max(tat, now) + started * self.interval if started else tat


def lock_limiter(conn: Connection, pg: bool, name: str = GLOBAL) -> float:
    """Lock the limiter row (created on first use) for this transaction; returns its TAT."""
    ins = (pg_insert if pg else sqlite_insert)(task_limits).values(name=name, tat=0.0)
    conn.execute(ins.on_conflict_do_nothing(index_elements=["name"]))
    q = select(task_limits.c.tat).where(task_limits.c.name == name).with_for_update()
    return float(conn.execute(q).scalar_one())


def save_tat(conn: Connection, tat: float, name: str = GLOBAL) -> None:
    """Store the limiter's new TAT (inside the transaction that locked it)."""
    conn.execute(update(task_limits).where(task_limits.c.name == name).values(tat=tat))
