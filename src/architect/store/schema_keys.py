"""Table of the virtual API keys. Times are UNIX seconds (float). Migration 0003 creates it (0006 adds
`scopes`, 0007 `projects`); `store.keys` reads and writes it."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, Table, UniqueConstraint, false

from architect.store.schema import metadata
from architect.store.text import String, Text

__all__ = ["api_keys"]

# A virtual API key: only the SHA-256 of the secret is stored, plus a short visible prefix.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("created_by", String(200)),
    Column("expires_at", Float),
    Column("revoked_at", Float),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("models", Text),  # JSON list of allowed model groups, NULL = all
    Column("tags", Text),  # JSON object of default tags
    Column("bodies", String(16)),  # per-key override of ledger.bodies
    Column("projects", Text),  # JSON list of granted projects, "*" = all, NULL = none beyond tags.project
    Column("scopes", Text),  # JSON list of granted scopes (access.auth.SCOPES), NULL = none
    # minted for one task attempt (orchestrator agents): hidden from `keys list` unless asked (0010)
    Column("temporary", Boolean, nullable=False, server_default=false()),
    Column("route", Text),  # JSON object of route settings (quality_target, cost_weight, privacy) (0012)
    UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
)
