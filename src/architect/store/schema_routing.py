"""Tables of the `auto` route's state (migration 0012): project settings (the route knobs of a
project), the outcomes calls are judged by, the outcomes of task-attempt keys (applied to every call
made with the key) and the prompt features each `auto` decision was made on. `store.routing` reads and
writes them."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, LargeBinary, Table, UniqueConstraint

from architect.store.schema import metadata
from architect.store.text import String, Text

__all__ = ["call_outcomes", "key_outcomes", "project_settings", "route_features"]

# A project's route knobs (None = not set at this level), set by the API and CLI.
project_settings = Table(
    "project_settings",
    metadata,
    Column("project", String(200), primary_key=True),
    Column("quality_target", Float),
    Column("cost_weight", Float),
    Column("privacy", String(16)),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(200)),
)

# One outcome per call (0 = not acceptable .. 1 = acceptable), the latest one given: from feedback
# (`POST /v1/feedback`), a task attempt's validation (`task`) or a later attempt's success
# (`escalation`). `id` grows with every write, so a reader can follow new outcomes (a changed
# outcome is deleted and written again; on SQLite the table is AUTOINCREMENT, so the id of a deleted
# row is never given again, as PostgreSQL's sequence never does). The call's group, project and task type are copied from its
# ledger row so the quality table is one GROUP BY here.
call_outcomes = Table(
    "call_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("key_id", String(64)),
    Column("project", String(200)),
    Column("model_group", String(200)),
    Column("task_type", String(100)),
    Column("outcome", Float, nullable=False),
    Column("source", String(16), nullable=False),
    Column("comment", Text),
    UniqueConstraint("request_id", name="uq_call_outcomes_request"),
    Index("ix_call_outcomes_group_type", "model_group", "task_type"),
    sqlite_autoincrement=True,
)

# The outcome of a task attempt, by the temporary key it ran with: every call of that key (also ones
# the ledger writes later) gets it as its `call_outcomes` row.
key_outcomes = Table(
    "key_outcomes",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("outcome", Float, nullable=False),
    Column("source", String(16), nullable=False),
)

# The features an `auto` decision was made on (hashed n-gram indices and values, packed), by call: the
# router learns from them when the call's outcome arrives. Pruned by age.
route_features = Table(
    "route_features",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("features", LargeBinary, nullable=False),
    Index("ix_route_features_ts", "ts"),
)
