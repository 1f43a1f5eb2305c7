"""Table of the audit log: who changed what, with the values before and after (JSON). Times are UNIX
seconds (float). Migration 0003 creates it; `store.audit` writes and reads it (and `store.budgets`
writes a budget's deletion in the same transaction)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, Table

from architect.store.schema import metadata
from architect.store.text import String, Text

__all__ = ["audit_log"]

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200)),
    Column("before", Text),
    Column("after", Text),
    Index("ix_audit_log_ts", "ts"),
)
