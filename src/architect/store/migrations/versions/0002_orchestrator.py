"""orchestrator: features, phases, tasks, dependencies, events, items, workers, limits

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "features",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("spec", sa.Text),
        sa.Column("acceptance", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("slug", name="uq_features_slug"),
    )
    op.create_table(
        "phases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feature_id", sa.Integer, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.UniqueConstraint("feature_id", "number", name="uq_phases_feature_number"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feature_id", sa.Integer, nullable=False),
        sa.Column("phase", sa.Integer, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("deps", sa.Text, nullable=False),
        sa.Column("pending_deps", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("estimate_h", sa.Float),
        sa.Column("role", sa.String(100)),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("validator", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("crashes", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("max_crashes", sa.Integer, nullable=False),
        sa.Column("run_after", sa.Float, nullable=False),
        sa.Column("lease_expires", sa.Float),
        sa.Column("worker_id", sa.String(100)),
        sa.Column("host", sa.String(255)),
        sa.Column("pgid", sa.Integer),
        sa.Column("result", sa.Text),
        sa.Column("validation", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ready_at", sa.Float),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("feature_id", "key", name="uq_tasks_feature_key"),
    )
    op.create_index("ix_tasks_claim", "tasks", ["status", "priority", "ready_at"])
    op.create_index("ix_tasks_lease", "tasks", ["status", "lease_expires"])
    op.create_index("ix_tasks_feature_status", "tasks", ["feature_id", "status"])
    op.create_table(
        "task_deps",
        sa.Column("task_id", sa.Integer, primary_key=True),
        sa.Column("dep_id", sa.Integer, primary_key=True),
    )
    op.create_index("ix_task_deps_dep", "task_deps", ["dep_id"])
    op.create_table(
        "task_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("feature_id", sa.Integer, nullable=False),
        sa.Column("task_id", sa.Integer),
        sa.Column("task_key", sa.String(64)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer),
        sa.Column("worker_id", sa.String(100)),
        sa.Column("data", sa.Text),
    )
    op.create_index("ix_task_events_feature", "task_events", ["feature_id", "id"])
    op.create_table(
        "feature_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feature_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("severity", sa.String(16)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("task_key", sa.String(64)),
        sa.Column("date", sa.String(32)),
        sa.Column("rationale", sa.Text),
        sa.Column("impact", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_feature_items_feature", "feature_items", ["feature_id", "kind"])
    op.create_table(
        "task_workers",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )
    op.create_table(
        "task_limits",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("window", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "task_limits",
        "task_workers",
        "feature_items",
        "task_events",
        "task_deps",
        "tasks",
        "phases",
    ):
        op.drop_table(name)
    op.drop_table("features")
