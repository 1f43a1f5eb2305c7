"""responses: the index a key's stored responses are evicted by (`key_id`, `created_at`) also holds
each row's `size` and `expires_at`, so eviction's window over a key's rows (their running total of
bytes, newest first) and the key's byte count read the index alone, never the rows themselves (a
kilobyte or more each, so most of the table).

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_responses_key_created", "responses")
    op.create_index("ix_responses_key_created", "responses", ["key_id", "created_at", "size", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_key_created", "responses")
    op.create_index("ix_responses_key_created", "responses", ["key_id", "created_at"])
