"""Orchestrator tables: features, phases, tasks (with their dependency edges), task events,
feature items (bugs, decisions, risks, issues, blockers), workers, the shared limiter rows, the
attempts of agent tasks and the per-feature merge locks.

Times are UNIX seconds (float) as in the ledger; JSON payloads are stored as text.
Migration `0002_orchestrator` creates these tables; `0006_exec_trust` adds the tasks' exec trust
columns; `0008_rate_gcra` gives `task_limits` its `tat`; `0010_agent_tasks` adds the features' and
tasks' agent fields, `task_attempts` and `merge_locks`.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, Table, UniqueConstraint, false, text

from architect.store.schema import metadata
from architect.store.text import String, Text

__all__ = [
    "ATTEMPT_OUTCOMES",
    "TASK_STATUSES",
    "feature_items",
    "features",
    "merge_locks",
    "phases",
    "task_attempts",
    "task_deps",
    "task_events",
    "task_limits",
    "task_workers",
    "tasks",
]

TASK_STATUSES = ("pending", "ready", "running", "succeeded", "failed", "blocked", "cancelled")
# How an attempt of an agent task ended (`task_attempts.outcome`); `running` until it does.
ATTEMPT_OUTCOMES = (
    "running", "succeeded", "failed", "budget_exceeded", "timeout", "no_changes", "merge_conflict",
    "validation_failed", "repeated_failure", "crashed",
)  # fmt: skip

features = Table(
    "features",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("slug", String(200), nullable=False),
    Column("title", String(500), nullable=False),
    Column("spec", Text),
    Column("acceptance", Text),  # JSON list of strings
    Column("status", String(16), nullable=False),  # active | paused | cancelled | done
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # agent tasks (0010): the git repository (an absolute path), the branch or commit the feature
    # branch starts from and its SHA recorded at the first run, the default agent and validator,
    # the USD budget of each attempt and of the whole feature
    Column("repo", Text),
    Column("base", String(200)),
    Column("base_sha", String(64)),
    Column("agent", String(100)),
    Column("attempt_budget_usd", Float),
    Column("total_budget_usd", Float),
    Column("validator", Text),
    UniqueConstraint("slug", name="uq_features_slug"),
)

phases = Table(
    "phases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_id", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", String(500), nullable=False),
    UniqueConstraint("feature_id", "number", name="uq_phases_feature_number"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_id", Integer, nullable=False),
    Column("phase", Integer, nullable=False),
    Column("key", String(64), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text),
    Column("deps", Text, nullable=False),  # JSON list of task keys, as written in the plan
    Column("pending_deps", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("estimate_h", Float),
    Column("role", String(100)),
    Column("executor", String(32), nullable=False),
    Column("params", Text, nullable=False),  # JSON object
    Column("validator", Text),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("attempt", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("crashes", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("max_crashes", Integer, nullable=False),
    Column("run_after", Float, nullable=False),
    Column("lease_expires", Float),
    Column("worker_id", String(100)),
    Column("host", String(255)),
    Column("pgid", Integer),
    Column("result", Text),  # JSON
    Column("validation", Text),  # JSON
    Column("created_at", Float, nullable=False),
    Column("ready_at", Float),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("updated_at", Float, nullable=False),
    # who last wrote the task's executable fields (architect.trust) and whether that writer was
    # allowed to: a worker runs only trusted tasks (tasks older than migration 0006 are untrusted)
    Column("exec_set_by", Text),
    Column("exec_trusted", Boolean, nullable=False, server_default=false()),
    # agent tasks (0010): the agent (None: the feature's default) and the USD budget of each attempt
    Column("agent", String(100)),
    Column("budget_usd", Float),
    Column("route", Text),  # JSON object of the task's route settings for its calls (0012)
    UniqueConstraint("feature_id", "key", name="uq_tasks_feature_key"),
    Index("ix_tasks_claim", "status", "priority", "ready_at"),
    Index("ix_tasks_lease", "status", "lease_expires"),
    Index("ix_tasks_feature_status", "feature_id", "status"),
)

task_deps = Table(
    "task_deps",
    metadata,
    Column("task_id", Integer, primary_key=True),
    Column("dep_id", Integer, primary_key=True),
    Index("ix_task_deps_dep", "dep_id"),
)

task_events = Table(
    "task_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("feature_id", Integer, nullable=False),
    Column("task_id", Integer),
    Column("task_key", String(64)),
    Column("kind", String(32), nullable=False),
    Column("attempt", Integer),
    Column("worker_id", String(100)),
    Column("data", Text),  # JSON
    Index("ix_task_events_feature", "feature_id", "id"),
)

feature_items = Table(
    "feature_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # bug | decision | risk | issue | blocker
    Column("title", String(500), nullable=False),
    Column("body", Text),
    Column("severity", String(16)),
    Column("status", String(16), nullable=False),
    Column("task_key", String(64)),
    Column("date", String(32)),
    Column("rationale", Text),
    Column("impact", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_feature_items_feature", "feature_id", "kind"),
)

task_workers = Table(
    "task_workers",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

# One row per shared limiter, locked by every claim with shared limits; `tat` is the rate limit's
# theoretical arrival time (GCRA, `store.orchestrator.limits`): the earliest time a task may start.
task_limits = Table(
    "task_limits",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("tat", Float, nullable=False, server_default=text("0")),
)

# One row per attempt of an agent task: where it ran, what it changed and how it ended. Its model
# calls (models, deployments, tokens, cost) are the ledger's rows of its key (`key_id`).
task_attempts = Table(
    "task_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, nullable=False),
    Column("feature_id", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),  # the task's attempt number (tasks.attempt)
    Column("agent", String(100)),
    Column("runner", String(32)),
    Column("model", String(200)),
    Column("key_id", String(64)),  # the key minted for the attempt
    Column("worktree", Text),
    Column("branch", Text),
    Column("base_sha", String(64)),
    Column("head_sha", String(64)),
    Column("merged_sha", String(64)),  # the feature branch's commit of this attempt's change
    Column("files", Text),  # JSON list of the paths changed
    Column("files_changed", Integer),
    Column("lines_added", Integer),
    Column("lines_removed", Integer),
    Column("commits", Text),  # JSON list of {sha, subject}
    Column("validation", Text),  # JSON: the validator's exit code and counts
    Column("outcome", String(32), nullable=False),  # ATTEMPT_OUTCOMES
    Column("reason", Text),
    Column("output", Text),  # the tail fed to the next attempt
    Column("isolation", String(32)),  # bwrap | rlimits
    Column("worker_id", String(100)),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("duration_s", Float),
    Index("ix_task_attempts_task", "task_id", "attempt"),
    Index("ix_task_attempts_feature", "feature_id", "id"),
)

# One merge at a time per feature: the holder of the row merges until it releases it or `expires_at`
# (UNIX time) passes.
merge_locks = Table(
    "merge_locks",
    metadata,
    Column("feature_id", Integer, primary_key=True, autoincrement=False),
    Column("holder", String(100), nullable=False),
    Column("expires_at", Float, nullable=False),
)
