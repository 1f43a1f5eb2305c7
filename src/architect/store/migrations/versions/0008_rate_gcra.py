"""orchestrator: the shared rate limit becomes GCRA; task_limits keeps a theoretical arrival time
(`tat`, the earliest time the next task may start) instead of a JSON log of start times (`window`).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_limits") as b:
        b.add_column(sa.Column("tat", sa.Float, nullable=False, server_default=sa.text("0")))
        b.drop_column("window")


def downgrade() -> None:
    with op.batch_alter_table("task_limits") as b:
        b.add_column(sa.Column("window", sa.Text, nullable=False, server_default="[]"))
        b.drop_column("tat")
