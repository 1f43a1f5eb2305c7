"""Spend from the ledger, exact: cost, requests, tokens and cache savings of the calls in a window,
grouped by one column. `SQLSpendRepo(engine)` groups on SQLite/PostgreSQL (`GROUP BY` over `calls`);
`MemorySpendRepo(ledger)` groups the calls of any ledger in Python (the memory store's, whose calls
are not in a database)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Engine, case, func, select

from architect.store.ledger import LedgerRepo
from architect.store.schema import calls

__all__ = ["MemorySpendRepo", "SQLSpendRepo", "SpendRepo"]


class SpendRepo(Protocol):
    def between(
        self, since: float, until: float, by: str, where: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """One row per value of the `calls` column `by` over since <= ts < until (optionally only the
        calls whose columns equal `where`'s values): `by`, `requests`, `cost_usd`, `prompt_tokens`,
        `completion_tokens`, `cache_saved_usd`, `unpriced` (calls whose price is unknown: `cost_usd`
        leaves them out); the dearest first."""


class SQLSpendRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def between(
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
                func.coalesce(func.sum(case((calls.c.cost_source == "unknown", 1), else_=0)), 0).label(
                    "unpriced"
                ),
            )
            .where(calls.c.ts >= since, calls.c.ts < until)
            .group_by(col)
            .order_by(func.sum(calls.c.cost_usd).desc())
        )
        for k, v in (where or {}).items():
            q = q.where(calls.c[k].is_(None) if v is None else calls.c[k] == v)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


class MemorySpendRepo:
    """The double: the same grouping, in Python, over the calls `ledger` returns for the window."""

    def __init__(self, ledger: LedgerRepo) -> None:
        self._ledger = ledger

    def between(
        self, since: float, until: float, by: str, where: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        columns = [by, "cost_usd", "prompt_tokens", "completion_tokens", "saved_cost_usd", "cost_source"]
        out: dict[Any, dict[str, Any]] = {}
        for c in self._ledger.calls_between(since, until, columns=columns, where=where):
            r = out.setdefault(
                c[by],
                {
                    by: c[by],
                    "requests": 0,
                    "cost_usd": 0.0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "cache_saved_usd": 0.0,
                    "unpriced": 0,
                },
            )
            r["requests"] += 1
            r["cost_usd"] += c["cost_usd"] or 0.0
            r["prompt_tokens"] += c["prompt_tokens"] or 0
            r["completion_tokens"] += c["completion_tokens"] or 0
            r["cache_saved_usd"] += c["saved_cost_usd"] or 0.0
            r["unpriced"] += int(c.get("cost_source") == "unknown")
        return sorted(out.values(), key=lambda r: -r["cost_usd"])
