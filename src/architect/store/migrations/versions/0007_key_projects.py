"""access: the projects a virtual key is granted (api_keys.projects)

NULL grants none beyond the project of the key's default tags; a JSON list names projects; the JSON
string "*" grants every project.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("projects", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as b:
        b.drop_column("projects")
