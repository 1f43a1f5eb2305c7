"""The table of stored Responses API answers (`previous_response_id`): one row per response a key
asked to keep, namespaced by the key, with an expiry. Migration 0009 creates it; 0011 makes the index
by key and creation time cover what eviction reads (`size`, `expires_at`)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, Table

from architect.store.schema import metadata
from architect.store.text import String, Text

__all__ = ["responses"]

# `body` is the JSON the next turn needs (the input items and the output items, after the ledger's
# redaction rules); `size` its length in bytes, summed per key for the size cap. The index by key and
# creation time carries `size` and `expires_at`: a key's byte count and its eviction read the index only.
responses = Table(
    "responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("size", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_responses_key_created", "key_id", "created_at", "size", "expires_at"),
    Index("ix_responses_expires", "expires_at"),
)
