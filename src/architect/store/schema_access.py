"""Tables of the access and metrics domains: virtual keys, budgets and their spend windows, the audit
log, alert events and state, and the per-minute/per-hour metric rollups.

Times are UNIX seconds (float), money is USD (float). Migration 0003 creates these (0006 adds `api_keys.scopes`)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    UniqueConstraint,
)

from architect.store.schema import metadata
from architect.store.text import String, Text

__all__ = [
    "alert_events",
    "alert_state",
    "api_keys",
    "audit_log",
    "budget_spend",
    "budgets",
    "metric_rollups",
    "rollup_state",
]

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
    UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
)

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

# Partial aggregates of calls: res 60 (minute) or 3600 (hour), bucket = start of the interval.
# dimset 0 holds (model_group, deployment, provider), 1 adds key_id and project, 2 is (model_group,
# project), 3 is (model_group, key_id); the other columns are NULL. Rows are append-only partials (several per bucket); queries merge them. Latency and time to
# first token are DDSketch bins (mergeable).
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
    Column("attempts", Integer, nullable=False),
    Column("fallbacks", Integer, nullable=False),
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
