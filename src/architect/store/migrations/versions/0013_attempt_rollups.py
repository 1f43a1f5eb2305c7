"""rollups count attempts per deployment tried: `failed_attempts` and `attempt_errors_by_kind` (from
the calls' attempt logs), and `failovers` (calls answered by another deployment than the first tried).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metric_rollups") as b:
        b.add_column(sa.Column("failed_attempts", sa.Integer, nullable=False, server_default=sa.text("0")))
        b.add_column(sa.Column("attempt_errors_by_kind", sa.Text))
        b.add_column(sa.Column("failovers", sa.Integer, nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("metric_rollups") as b:
        b.drop_column("failovers")
        b.drop_column("attempt_errors_by_kind")
        b.drop_column("failed_attempts")
