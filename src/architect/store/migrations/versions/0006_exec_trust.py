"""exec trust: key scopes, and who last set each task's executable fields

`api_keys.scopes` is a JSON list of granted scopes (NULL: none). `tasks.exec_set_by` names who last
wrote a task's executable fields and `tasks.exec_trusted` whether that writer was allowed to (the
admin key, a key with scope `tasks:execute`, or the local CLI). Tasks that exist before this
revision have no such record: they stay untrusted (a worker blocks them until an admin approves).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as b:
        b.add_column(sa.Column("scopes", sa.Text))
    with op.batch_alter_table("tasks") as b:
        b.add_column(sa.Column("exec_set_by", sa.Text))
        b.add_column(sa.Column("exec_trusted", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as b:
        b.drop_column("exec_trusted")
        b.drop_column("exec_set_by")
    with op.batch_alter_table("api_keys") as b:
        b.drop_column("scopes")
