"""agent-facing APIs and true prices: `calls` records where its cost came from (`cost_source`:
config, catalogue, unknown) and the request fields a translation dropped (`dropped`); the rollups
count unpriced calls and can group by endpoint; `responses` keeps Responses API answers for
`previous_response_id`.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as b:
        b.add_column(sa.Column("cost_source", sa.String(16)))
        b.add_column(sa.Column("dropped", sa.Text))
    with op.batch_alter_table("metric_rollups") as b:
        b.add_column(sa.Column("endpoint", sa.String(32)))
        b.add_column(sa.Column("unpriced", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_responses_key_created", "responses", ["key_id", "created_at"])
    op.create_index("ix_responses_expires", "responses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_expires", "responses")
    op.drop_index("ix_responses_key_created", "responses")
    op.drop_table("responses")
    with op.batch_alter_table("metric_rollups") as b:
        b.drop_column("unpriced")
        b.drop_column("endpoint")
    with op.batch_alter_table("calls") as b:
        b.drop_column("dropped")
        b.drop_column("cost_source")
