"""Table definitions (SQLAlchemy Core). The migrations in `migrations/versions` create exactly these;
`tests/integration/store/test_migrations.py` checks that they agree.

Each concern keeps its tables in its own module on this one `metadata`: `schema` (the ledger's
`calls`), `schema_orchestrator`, `schema_keys`, `schema_budgets`, `schema_audit`, `schema_alerts`,
`schema_rollups`, `schema_cache`, `schema_responses`, `schema_routing`. A repository module imports the tables it uses; `all_metadata()`
imports them all so the declared schema is complete. Every text column is declared with `store.text`'s
`String` or `Text`, which escape what a database cannot hold (NUL, lone surrogates) the same way on
SQLite and PostgreSQL; `tests/integration/store/test_text.py` checks that none is left out.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, Table, false

from architect.store.text import String, Text

__all__ = ["INT32_MAX", "INT64_MAX", "all_metadata", "calls", "metadata"]

metadata = MetaData()

# The largest value an `Integer` (ids, counts) and a `BigInteger` column holds on PostgreSQL (SQLite's
# integers are 64-bit); values from outside are checked against these before they reach a query.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# One row per client call (chat completion, embedding). Times are UNIX seconds (float) so the same
# arithmetic works on SQLite and PostgreSQL; durations are milliseconds. The call's upstream attempts
# (retries and fallbacks each add one) are kept with it as a JSON array in `attempt_log`: they are
# only ever read with their call, and one row per call keeps the ledger write cheap (migration 0005).
calls = Table(
    "calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("ts", Float, nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("key_id", String(64)),
    Column("project", String(200)),
    Column("feature", String(200)),
    Column("task", String(200)),
    Column("tags", Text),
    Column("model", String(200), nullable=False),
    Column("model_group", String(200)),
    Column("deployment", String(200)),
    Column("provider", String(200)),
    Column("simulated", Boolean, nullable=False, default=False),
    Column("stream", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("fallbacks", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("error_kind", String(64)),
    Column("error_message", Text),
    Column("truncated", Boolean, nullable=False, default=False),
    Column("ttft_ms", Float),
    Column("total_ms", Float, nullable=False),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("tokens_estimated", Boolean, nullable=False, default=False),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("baseline_cost_usd", Float),
    Column("cache", String(32)),
    Column("saved_cost_usd", Float, nullable=False, default=0.0),
    Column("saved_ms", Float, nullable=False, default=0.0),
    Column("route_reason", String(200)),
    Column("body_hash", String(64)),
    Column("request_body", Text),
    Column("response_body", Text),
    Column("attempt_log", Text),
    Column("cost_source", String(16)),
    Column("dropped", Text),
    # what an `auto` route decided (migration 0012): the auto group asked for (the group served is
    # `model_group`), P(acceptable) per candidate as JSON, the call's task type, and whether the choice
    # was an exploration
    Column("routed_by", String(200)),
    Column("route_scores", Text),
    Column("task_type", String(100)),
    Column("explored", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_calls_ts", "ts"),
    Index("ix_calls_group_ts", "model_group", "ts"),
    Index("ix_calls_key_ts", "key_id", "ts"),
    Index("ix_calls_project_ts", "project", "ts"),
)


def all_metadata() -> MetaData:
    """The metadata with every table registered (a schema module registers its tables when imported;
    they are imported here, not above, because each of them imports this module's `metadata`)."""
    from architect.store import (  # noqa: F401  (imported for the tables they register)
        schema_alerts,
        schema_audit,
        schema_budgets,
        schema_cache,
        schema_keys,
        schema_orchestrator,
        schema_responses,
        schema_rollups,
        schema_routing,
    )

    return metadata
