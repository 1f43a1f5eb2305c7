"""Tables of the alerts: the events (each firing and resolution) and the current state of each rule
and target. Times are UNIX seconds (float). Migration 0003 creates them; `store.alerts` reads and
writes them."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, Table

from architect.store.schema import metadata
from architect.store.text import String, Text

__all__ = ["alert_events", "alert_state"]

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("rule", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("target", String(200)),
    Column("value", Float),
    Column("message", Text, nullable=False),
    Index("ix_alert_events_ts", "ts"),
)

# The current state of each (rule, target): flipped with a conditional UPDATE so that of several
# processes evaluating the same rule exactly one records each firing and resolution.
alert_state = Table(
    "alert_state",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("since", Float, nullable=False),
)
