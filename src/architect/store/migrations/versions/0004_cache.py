"""cache: the L2 response cache (cache_entries)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("norm_key", sa.String(64)),
        sa.Column("namespace", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_cache_entries_norm_key", "cache_entries", ["norm_key"])
    op.create_index("ix_cache_entries_expires_at", "cache_entries", ["expires_at"])
    op.create_index("ix_cache_entries_namespace_model", "cache_entries", ["namespace", "model"])


def downgrade() -> None:
    op.drop_table("cache_entries")
