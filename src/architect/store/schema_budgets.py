"""Tables of the budgets and their spend windows. Times are UNIX seconds (float), money is USD (float).
Migration 0003 creates them; `store.budgets` reads and writes them."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, PrimaryKeyConstraint, Table, UniqueConstraint

from architect.store.schema import metadata
from architect.store.text import String

__all__ = ["budget_spend", "budgets"]

# A budget: scope "key" (target = key id) or "project" (target = project tag); period day|month|total.
budgets = Table(
    "budgets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(16), nullable=False),
    Column("target", String(200), nullable=False),
    Column("period", String(16), nullable=False),
    Column("limit_usd", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("scope", "target", "period", name="uq_budgets_scope_target_period"),
)

# Spend of one budget in one period window (window_start 0 for "total"). reserve/settle update these
# rows with single conditional UPDATE statements, so concurrent processes cannot overspend.
budget_spend = Table(
    "budget_spend",
    metadata,
    Column("budget_id", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
    Column("spent_usd", Float, nullable=False, default=0.0),
    Column("reserved_usd", Float, nullable=False, default=0.0),
    Column("alerted_pct", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("budget_id", "window_start", name="pk_budget_spend"),
)
