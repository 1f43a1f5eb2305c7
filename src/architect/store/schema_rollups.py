"""Tables of the metric rollups: per-minute and per-hour partial aggregates of the calls, and the
compactor's state. Migration 0003 creates them; `store.rollups` reads and writes them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, LargeBinary, SmallInteger, Table

from architect.store.schema import metadata
from architect.store.text import String, Text

__all__ = ["metric_rollups", "rollup_state"]

# Partial aggregates of calls: res 60 (minute) or 3600 (hour), bucket = start of the interval.
# dimset 0 holds (model_group, deployment, provider), 1 adds key_id and project, 2 is (model_group,
# project), 3 is (model_group, key_id); the other columns are NULL. Rows are append-only partials
# (several per bucket); queries merge them. Latency and time to first token are DDSketch bins
# (mergeable). Call figures (requests, errors, latency, tokens, cost, `failovers`) belong to the row of
# the deployment that answered; `attempts`, `failed_attempts` and `attempt_errors_by_kind` to the row
# of the deployment each attempt tried (from the calls' attempt logs).
metric_rollups = Table(
    "metric_rollups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("res", Integer, nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("dimset", SmallInteger, nullable=False),
    Column("model_group", String(200)),
    Column("deployment", String(200)),
    Column("provider", String(200)),
    Column("key_id", String(64)),
    Column("project", String(200)),
    Column("endpoint", String(32)),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("errors_by_kind", Text),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("baseline_cost_usd", Float, nullable=False),
    Column("baselined", Integer, nullable=False),
    Column("cost_baselined_usd", Float, nullable=False),
    Column("cache_hits", Integer, nullable=False),
    Column("cache_saved_usd", Float, nullable=False),
    Column("unpriced", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False),
    Column("fallbacks", Integer, nullable=False),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("attempt_errors_by_kind", Text),
    Column("failovers", Integer, nullable=False, default=0),
    Column("latency_sketch", LargeBinary),
    Column("ttft_sketch", LargeBinary),
    Index("ix_metric_rollups_lookup", "dimset", "res", "bucket"),
)

# Named scalar state of the rollup compactor (e.g. "hour_watermark": hours before it are compacted).
rollup_state = Table(
    "rollup_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Float, nullable=False),
)
