"""The in-memory SQLite database behind the memory store's SQL-backed doubles.

The repositories whose double is their own SQL implementation (keys, budgets, audit, alerts, rollups,
tasks) run it on one private in-memory SQLite database per memory store, holding every declared
table: the doubles cannot drift from the real semantics, and a transaction that spans two concerns
(a budget's deletion with its audit row) behaves as on a real database. Such a database is a single
connection (`StaticPool`) shared by all threads, so its users serialise on `lock`."""

from __future__ import annotations

import threading
from typing import Any

from architect.store.engine import make_engine

__all__ = ["SQLiteMemory", "Serialised"]


class SQLiteMemory:
    """A private in-memory SQLite database with every declared table, and the lock for its connection."""

    def __init__(self) -> None:
        from architect.store.schema import all_metadata

        self.engine = make_engine("sqlite://")
        all_metadata().create_all(self.engine)
        self.lock = threading.RLock()


class Serialised:
    """Mixin for a SQL repository on a `SQLiteMemory`: each public method runs holding `_lock` (the
    database's), so threads never share its one connection at the same time."""

    _lock: threading.RLock

    def __getattribute__(self, name: str) -> Any:
        attr = object.__getattribute__(self, name)
        if name.startswith("_") or not callable(attr):
            return attr
        lock = object.__getattribute__(self, "_lock")

        def locked(*a: Any, **kw: Any) -> Any:
            with lock:
                return attr(*a, **kw)

        return locked
