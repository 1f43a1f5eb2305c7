"""auto routing: what an `auto` route decided on each call (`calls.routed_by`, `route_scores`,
`task_type`, `explored`), the route settings of keys (`api_keys.route`), tasks (`tasks.route`) and
projects (`project_settings`), the outcomes calls are judged by (`call_outcomes`: feedback and task
validation; `key_outcomes`: a task attempt's outcome, applied to every call made with its key) and the
prompt features an `auto` decision was made on (`route_features`), which the router learns from.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as b:
        b.add_column(sa.Column("routed_by", sa.String(200)))
        b.add_column(sa.Column("route_scores", sa.Text))
        b.add_column(sa.Column("task_type", sa.String(100)))
        b.add_column(sa.Column("explored", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("api_keys") as b:
        b.add_column(sa.Column("route", sa.Text))
    with op.batch_alter_table("tasks") as b:
        b.add_column(sa.Column("route", sa.Text))
    op.create_table(
        "project_settings",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("quality_target", sa.Float),
        sa.Column("cost_weight", sa.Float),
        sa.Column("privacy", sa.String(16)),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(200)),
    )
    op.create_table(
        "call_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("project", sa.String(200)),
        sa.Column("model_group", sa.String(200)),
        sa.Column("task_type", sa.String(100)),
        sa.Column("outcome", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text),
        sa.UniqueConstraint("request_id", name="uq_call_outcomes_request"),
        sqlite_autoincrement=True,  # a deleted (changed) outcome's id is never given again
    )
    op.create_index("ix_call_outcomes_group_type", "call_outcomes", ["model_group", "task_type"])
    op.create_table(
        "key_outcomes",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("outcome", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_table(
        "route_features",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("features", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_route_features_ts", "route_features", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_route_features_ts", "route_features")
    op.drop_table("route_features")
    op.drop_table("key_outcomes")
    op.drop_index("ix_call_outcomes_group_type", "call_outcomes")
    op.drop_table("call_outcomes")
    op.drop_table("project_settings")
    with op.batch_alter_table("tasks") as b:
        b.drop_column("route")
    with op.batch_alter_table("api_keys") as b:
        b.drop_column("route")
    with op.batch_alter_table("calls") as b:
        b.drop_column("explored")
        b.drop_column("task_type")
        b.drop_column("route_scores")
        b.drop_column("routed_by")
