"""agent tasks: the features' repository, base, default agent, budgets and validator; the tasks'
agent and budget; `api_keys.temporary` (keys minted for one task attempt); `task_attempts` (one row per attempt of an agent task) and `merge_locks` (one
merge at a time per feature).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("features") as b:
        b.add_column(sa.Column("repo", sa.Text))
        b.add_column(sa.Column("base", sa.String(200)))
        b.add_column(sa.Column("base_sha", sa.String(64)))
        b.add_column(sa.Column("agent", sa.String(100)))
        b.add_column(sa.Column("attempt_budget_usd", sa.Float))
        b.add_column(sa.Column("total_budget_usd", sa.Float))
        b.add_column(sa.Column("validator", sa.Text))
    with op.batch_alter_table("tasks") as b:
        b.add_column(sa.Column("agent", sa.String(100)))
        b.add_column(sa.Column("budget_usd", sa.Float))
    op.create_table(
        "task_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.Integer, nullable=False),
        sa.Column("feature_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("agent", sa.String(100)),
        sa.Column("runner", sa.String(32)),
        sa.Column("model", sa.String(200)),
        sa.Column("key_id", sa.String(64)),
        sa.Column("worktree", sa.Text),
        sa.Column("branch", sa.Text),
        sa.Column("base_sha", sa.String(64)),
        sa.Column("head_sha", sa.String(64)),
        sa.Column("merged_sha", sa.String(64)),
        sa.Column("files", sa.Text),
        sa.Column("files_changed", sa.Integer),
        sa.Column("lines_added", sa.Integer),
        sa.Column("lines_removed", sa.Integer),
        sa.Column("commits", sa.Text),
        sa.Column("validation", sa.Text),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("output", sa.Text),
        sa.Column("isolation", sa.String(32)),
        sa.Column("worker_id", sa.String(100)),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("duration_s", sa.Float),
    )
    op.create_index("ix_task_attempts_task", "task_attempts", ["task_id", "attempt"])
    op.create_index("ix_task_attempts_feature", "task_attempts", ["feature_id", "id"])
    op.create_table(
        "merge_locks",
        sa.Column("feature_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("api_keys") as b:
        b.add_column(sa.Column("temporary", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as b:
        b.drop_column("temporary")
    op.drop_table("merge_locks")
    op.drop_index("ix_task_attempts_feature", "task_attempts")
    op.drop_index("ix_task_attempts_task", "task_attempts")
    op.drop_table("task_attempts")
    with op.batch_alter_table("tasks") as b:
        b.drop_column("budget_usd")
        b.drop_column("agent")
    with op.batch_alter_table("features") as b:
        b.drop_column("validator")
        b.drop_column("total_budget_usd")
        b.drop_column("attempt_budget_usd")
        b.drop_column("agent")
        b.drop_column("base_sha")
        b.drop_column("base")
        b.drop_column("repo")
