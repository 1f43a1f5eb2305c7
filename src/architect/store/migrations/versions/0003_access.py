"""access: api keys, budgets and spend, audit log, alerts, metric rollups

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("expires_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("models", sa.Text),
        sa.Column("tags", sa.Text),
        sa.Column("bodies", sa.String(16)),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("limit_usd", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("scope", "target", "period", name="uq_budgets_scope_target_period"),
    )
    op.create_table(
        "budget_spend",
        sa.Column("budget_id", sa.Integer, nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("spent_usd", sa.Float, nullable=False),
        sa.Column("reserved_usd", sa.Float, nullable=False),
        sa.Column("alerted_pct", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("budget_id", "window_start", name="pk_budget_spend"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
    )
    op.create_index("ix_audit_log_ts", "audit_log", ["ts"])
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("value", sa.Float),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_alert_events_ts", "alert_events", ["ts"])
    op.create_table(
        "alert_state",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
    )
    op.create_table(
        "metric_rollups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("res", sa.Integer, nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("dimset", sa.SmallInteger, nullable=False),
        sa.Column("model_group", sa.String(200)),
        sa.Column("deployment", sa.String(200)),
        sa.Column("provider", sa.String(200)),
        sa.Column("key_id", sa.String(64)),
        sa.Column("project", sa.String(200)),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("errors_by_kind", sa.Text),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("baseline_cost_usd", sa.Float, nullable=False),
        sa.Column("baselined", sa.Integer, nullable=False),
        sa.Column("cost_baselined_usd", sa.Float, nullable=False),
        sa.Column("cache_hits", sa.Integer, nullable=False),
        sa.Column("cache_saved_usd", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("fallbacks", sa.Integer, nullable=False),
        sa.Column("latency_sketch", sa.LargeBinary),
        sa.Column("ttft_sketch", sa.LargeBinary),
    )
    op.create_index("ix_metric_rollups_lookup", "metric_rollups", ["dimset", "res", "bucket"])
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "rollup_state",
        "metric_rollups",
        "alert_state",
        "alert_events",
        "audit_log",
        "budget_spend",
        "budgets",
        "api_keys",
    ):
        op.drop_table(name)
