"""Cache tables: the L2 response cache in the store (SQLite by default, PostgreSQL when scaled out).

One row per cached answer, keyed by the exact request hash; `norm_key` is the normalised-exact hash of
the same request (looked up when the exact key misses). Both hashes include the tenant namespace, so a
row can only ever be found by the namespace that wrote it; `namespace` and `model` are kept in the
clear only for purging and statistics. Times are UNIX seconds (float).
Migration `0004_cache` creates exactly this table.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, LargeBinary, Table

from architect.store.schema import metadata
from architect.store.text import String

__all__ = ["cache_entries"]

cache_entries = Table(
    "cache_entries",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("norm_key", String(64)),
    Column("namespace", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_cache_entries_norm_key", "norm_key"),
    Index("ix_cache_entries_expires_at", "expires_at"),
    Index("ix_cache_entries_namespace_model", "namespace", "model"),
)
