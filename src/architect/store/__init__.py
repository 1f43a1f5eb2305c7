"""Storage: one narrow interface per domain, each with a SQL (SQLite/PostgreSQL) and an in-memory
implementation. No other package writes SQL.

    store = open_store(url)            # SQL, migrated or checked
    store = Store.memory()             # the in-memory double for unit tests
    store.ledger.record(...)           # calls (with their attempts)
    store.tasks / store.access / store.cache   # the orchestrator, keys/budgets and cache domains
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine

from architect.errors import MigrationRequired
from architect.store.engine import is_sqlite, make_engine, normalise_url, redact_url
from architect.store.ledger import LedgerRepo, MemoryLedger, SQLLedger

if TYPE_CHECKING:
    from architect.store.access import AccessRepo
    from architect.store.cache import CacheRepo
    from architect.store.orchestrator import TaskRepo

__all__ = ["Store", "open_store"]

# domain attribute -> (module, SQL class, memory class)
_DOMAINS: dict[str, tuple[str, str, str]] = {
    "tasks": ("architect.store.orchestrator", "SQLTaskRepo", "MemoryTaskRepo"),
    "access": ("architect.store.access", "SQLAccessRepo", "MemoryAccessRepo"),
    "cache": ("architect.store.cache", "SQLCacheRepo", "MemoryCacheRepo"),
}


class Store:
    """The storage entry point: `ledger`, `tasks`, `access`, `cache` repositories on one database."""

    def __init__(self, engine: Engine | None, url: str) -> None:
        self.engine = engine
        self.url = url
        self.ledger: LedgerRepo = SQLLedger(engine) if engine is not None else MemoryLedger()
        self._repos: dict[str, Any] = {}

    @classmethod
    def memory(cls) -> Store:
        return cls(None, "memory://")

    @property
    def is_memory(self) -> bool:
        return self.engine is None

    @property
    def dialect(self) -> str:
        return "memory" if self.engine is None else self.engine.dialect.name

    def _repo(self, name: str) -> Any:
        if name not in self._repos:
            module, sql_cls, mem_cls = _DOMAINS[name]
            mod = importlib.import_module(module)
            self._repos[name] = (
                getattr(mod, mem_cls)() if self.engine is None else getattr(mod, sql_cls)(self.engine)
            )
        return self._repos[name]

    @property
    def tasks(self) -> TaskRepo:
        return self._repo("tasks")  # type: ignore[no-any-return,unused-ignore]

    @property
    def access(self) -> AccessRepo:
        return self._repo("access")  # type: ignore[no-any-return,unused-ignore]

    @property
    def cache(self) -> CacheRepo:
        return self._repo("cache")  # type: ignore[no-any-return,unused-ignore]

    @functools.cached_property
    def redacted_url(self) -> str:
        return redact_url(self.url) if self.engine is not None else self.url

    def close(self) -> None:
        self.ledger.close()
        if self.engine is not None:
            self.engine.dispose()


def open_store(url: str, *, migrate: Literal["auto", "check", "upgrade", "none"] = "auto") -> Store:
    """Open the store at `url`.

    migrate="auto": SQLite is upgraded in place, PostgreSQL is checked (MigrationRequired when behind);
    "upgrade": always upgrade; "check": always check; "none": neither (tools that only read).
    """
    from architect.store import migrate as m

    url = normalise_url(url)
    engine = make_engine(url)
    try:
        if migrate == "upgrade":
            m.upgrade(engine)
        elif migrate == "auto" and is_sqlite(url):
            m.upgrade_if_behind(engine)  # imports Alembic only when there is something to do
        elif migrate in ("check", "auto"):
            m.check_current(engine)
    except MigrationRequired:
        engine.dispose()
        raise
    return Store(engine, url)
