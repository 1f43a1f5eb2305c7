"""Orchestrator storage: features, tasks, claims, leases, events, attempts. All orchestrator SQL lives
in this package (`catalog`: plans, features, items, events; `execution`: claims, leases, completion,
reaper; `attempts`: the attempts of agent tasks, the recorded base SHA, merge locks).

`TaskRepo` is the narrow interface the manager and worker use; `SQLTaskRepo` implements it on
SQLite and PostgreSQL; `SQLiteMemoryTaskRepo` is the double for unit tests: the same code on an
in-memory SQLite database (`store.sqlite_memory`, serialised by its lock), so the double cannot drift
from the real semantics.

Concurrency design:
  * claims: PostgreSQL `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`;
    SQLite `BEGIN IMMEDIATE` + the same `UPDATE ... RETURNING`;
  * shared limits (global and per-role concurrency, the rate): the claim first locks the
    `task_limits` row (`SELECT ... FOR UPDATE`), so limit checks and claims are serialised; the rate
    is GCRA (`limits`): starts spaced by period / N, and the claim says when the next may start;
  * completion is fenced: `WHERE id = :id AND attempt = :a AND status = 'running'`; so is the end of
    an agent task's attempt row (`WHERE outcome = 'running'`);
  * merge locks: one row per feature, taken by `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired
    OR same holder RETURNING` (one atomic statement on both databases);
  * the reaper requeues `running` tasks whose lease expired, keyed on the lease alone;
  * PostgreSQL hot path (`fastpath`): without shared limits, a batch of plain successes, their
    dependents' count-down, the claim of the freed slots and all the events are one autocommit
    statement of data-modifying CTEs (one round trip per batch).
"""

from __future__ import annotations

from sqlalchemy import Engine

from architect.store.orchestrator.attempts import AttemptsMixin
from architect.store.orchestrator.base import DEFAULT_AGENT, Claimed, ClaimOptions, Outcome, Row, TaskRepo
from architect.store.orchestrator.catalog import CatalogMixin
from architect.store.orchestrator.execution import ExecutionMixin
from architect.store.sqlite_memory import SQLiteMemory

__all__ = [
    "DEFAULT_AGENT",
    "ClaimOptions",
    "Claimed",
    "Outcome",
    "Row",
    "SQLTaskRepo",
    "SQLiteMemoryTaskRepo",
    "TaskRepo",
]


class SQLTaskRepo(CatalogMixin, ExecutionMixin, AttemptsMixin):
    """The orchestrator store on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)


class SQLiteMemoryTaskRepo(CatalogMixin, ExecutionMixin, AttemptsMixin):
    """The unit-test double: the same implementation on an in-memory SQLite database (a private one by
    default), each use of its connection holding the database's lock."""

    def __init__(self, db: SQLiteMemory | None = None) -> None:
        db = db or SQLiteMemory()
        super().__init__(db.engine, db.lock)
