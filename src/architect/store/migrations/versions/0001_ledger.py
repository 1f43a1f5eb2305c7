"""ledger: calls and call attempts

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("project", sa.String(200)),
        sa.Column("feature", sa.String(200)),
        sa.Column("task", sa.String(200)),
        sa.Column("tags", sa.Text),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("model_group", sa.String(200)),
        sa.Column("deployment", sa.String(200)),
        sa.Column("provider", sa.String(200)),
        sa.Column("simulated", sa.Boolean, nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("fallbacks", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("error_kind", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("truncated", sa.Boolean, nullable=False),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("total_ms", sa.Float, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("tokens_estimated", sa.Boolean, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("baseline_cost_usd", sa.Float),
        sa.Column("cache", sa.String(32)),
        sa.Column("saved_cost_usd", sa.Float, nullable=False),
        sa.Column("saved_ms", sa.Float, nullable=False),
        sa.Column("route_reason", sa.String(200)),
        sa.Column("body_hash", sa.String(64)),
        sa.Column("request_body", sa.Text),
        sa.Column("response_body", sa.Text),
    )
    op.create_index("ix_calls_ts", "calls", ["ts"])
    op.create_index("ix_calls_group_ts", "calls", ["model_group", "ts"])
    op.create_index("ix_calls_key_ts", "calls", ["key_id", "ts"])
    op.create_index("ix_calls_project_ts", "calls", ["project", "ts"])
    op.create_table(
        "call_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("model_group", sa.String(200), nullable=False),
        sa.Column("deployment", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("error_kind", sa.String(64)),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("total_ms", sa.Float, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("route_reason", sa.String(200)),
    )
    op.create_index("ix_call_attempts_request", "call_attempts", ["request_id"])
    op.create_index("ix_call_attempts_deployment_ts", "call_attempts", ["deployment", "ts"])


def downgrade() -> None:
    op.drop_table("call_attempts")
    op.drop_table("calls")
