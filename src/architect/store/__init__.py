"""Storage: one narrow interface per concern, each with a SQL (SQLite/PostgreSQL) implementation and
an in-memory double. No other package writes SQL.

    store = open_store(url)            # SQL, migrated or checked
    store = Store.memory()             # the in-memory doubles, for unit tests
    store.ledger.record(...)           # calls (with their attempts)
    store.keys / store.budgets / store.audit       # virtual keys, budgets and their spend, the audit log
    store.alerts / store.rollups / store.spend     # alert events and state, metric rollups, ledger spend
    store.tasks / store.cache                      # the orchestrator and the response cache
    store.responses                                # stored Responses API answers (previous_response_id)
    store.routing                                  # the auto route: project settings, outcomes, features

Each repository is built, and its module imported, when its attribute is first read. On a memory
store, the repositories whose double is their own SQL (keys, budgets, audit, alerts, rollups, tasks,
responses, routing) share one in-memory SQLite database (`store.sqlite_memory`); the ledger, its spend
and the cache are pure Python (the routing double reads its calls from the memory ledger).
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Engine

from architect.errors import StoreError
from architect.store.engine import check_connection, is_sqlite, make_engine, normalise_url, redact_url
from architect.store.ledger import LedgerRepo, MemoryLedger, SQLLedger

if TYPE_CHECKING:
    from architect.store.alerts import AlertRepo
    from architect.store.audit import AuditRepo
    from architect.store.budgets import BudgetRepo
    from architect.store.cache import CacheRepo
    from architect.store.keys import KeyRepo
    from architect.store.orchestrator import TaskRepo
    from architect.store.responses import ResponseRepo
    from architect.store.rollups import RollupRepo
    from architect.store.routing import RoutingRepo
    from architect.store.spend import SpendRepo
    from architect.store.sqlite_memory import SQLiteMemory

__all__ = ["Store", "open_store"]


class Store:
    """The storage entry point: one typed repository attribute per concern, all on one database."""

    def __init__(self, engine: Engine | None, url: str) -> None:
        self.engine = engine
        self.url = url
        self.ledger: LedgerRepo = SQLLedger(engine) if engine is not None else MemoryLedger()
        self._memory_db: SQLiteMemory | None = None
        self._memory_db_lock = threading.Lock()

    @classmethod
    def memory(cls) -> Store:
        return cls(None, "memory://")

    @property
    def is_memory(self) -> bool:
        return self.engine is None

    @property
    def dialect(self) -> str:
        return "memory" if self.engine is None else self.engine.dialect.name

    def _sqlite_memory(self) -> SQLiteMemory:
        """The memory store's in-memory SQLite database, made on first use (once, whatever the thread)."""
        with self._memory_db_lock:
            if self._memory_db is None:
                from architect.store.sqlite_memory import SQLiteMemory

                self._memory_db = SQLiteMemory()
            return self._memory_db

    @functools.cached_property
    def keys(self) -> KeyRepo:
        from architect.store import keys

        if self.engine is None:
            return keys.SQLiteMemoryKeyRepo(self._sqlite_memory())
        return keys.SQLKeyRepo(self.engine)

    @functools.cached_property
    def budgets(self) -> BudgetRepo:
        from architect.store import budgets

        if self.engine is None:
            return budgets.SQLiteMemoryBudgetRepo(self._sqlite_memory())
        return budgets.SQLBudgetRepo(self.engine)

    @functools.cached_property
    def audit(self) -> AuditRepo:
        from architect.store import audit

        if self.engine is None:
            return audit.SQLiteMemoryAuditRepo(self._sqlite_memory())
        return audit.SQLAuditRepo(self.engine)

    @functools.cached_property
    def alerts(self) -> AlertRepo:
        from architect.store import alerts

        if self.engine is None:
            return alerts.SQLiteMemoryAlertRepo(self._sqlite_memory())
        return alerts.SQLAlertRepo(self.engine)

    @functools.cached_property
    def rollups(self) -> RollupRepo:
        from architect.store import rollups

        if self.engine is None:
            return rollups.SQLiteMemoryRollupRepo(self._sqlite_memory())
        return rollups.SQLRollupRepo(self.engine)

    @functools.cached_property
    def spend(self) -> SpendRepo:
        from architect.store import spend

        if self.engine is None:
            return spend.MemorySpendRepo(self.ledger)
        return spend.SQLSpendRepo(self.engine)

    @functools.cached_property
    def tasks(self) -> TaskRepo:
        from architect.store import orchestrator

        if self.engine is None:
            return orchestrator.SQLiteMemoryTaskRepo(self._sqlite_memory())
        return orchestrator.SQLTaskRepo(self.engine)

    @functools.cached_property
    def cache(self) -> CacheRepo:
        from architect.store import cache

        if self.engine is None:
            return cache.MemoryCacheRepo()
        return cache.SQLCacheRepo(self.engine)

    @functools.cached_property
    def responses(self) -> ResponseRepo:
        from architect.store import responses

        if self.engine is None:
            return responses.SQLiteMemoryResponseRepo(self._sqlite_memory())
        return responses.SQLResponseRepo(self.engine)

    @functools.cached_property
    def routing(self) -> RoutingRepo:
        from architect.store import routing

        if self.engine is None:
            return routing.SQLiteMemoryRoutingRepo(self._sqlite_memory(), self.ledger)
        return routing.SQLRoutingRepo(self.engine)

    @functools.cached_property
    def redacted_url(self) -> str:
        return redact_url(self.url) if self.engine is not None else self.url

    def close(self) -> None:
        self.ledger.close()
        if self.engine is not None:
            self.engine.dispose()
        if self._memory_db is not None:
            self._memory_db.engine.dispose()


def open_store(url: str, *, migrate: Literal["auto", "check", "upgrade", "none"] = "auto") -> Store:
    """Open the store at `url`.

    migrate="auto": SQLite is upgraded in place, PostgreSQL is checked (MigrationRequired when behind);
    "upgrade": always upgrade; "check": always check; "none": neither (tools that only read).
    A URL that is invalid, unsupported or unreachable is a StoreError naming it (password redacted).
    """
    from architect.store import migrate as m

    engine = make_engine(url)
    try:
        check_connection(engine, url)
        url = normalise_url(url)
        if migrate == "upgrade":
            m.upgrade(engine)
        elif migrate == "auto" and is_sqlite(url):
            m.upgrade_if_behind(engine)  # imports Alembic only when there is something to do
        elif migrate in ("check", "auto"):
            m.check_current(engine)
    except StoreError:
        engine.dispose()
        raise
    return Store(engine, url)
