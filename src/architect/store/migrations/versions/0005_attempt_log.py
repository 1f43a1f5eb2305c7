"""ledger: a call's attempts move onto its row (calls.attempt_log, a JSON array); call_attempts goes

One row per call instead of one per call plus one per attempt roughly halves the cost of the ledger
write (measured in bench/RESULTS.md); attempts were only ever read with their call.

Revision ID: 0005
Revises: 0004
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FIELDS = (
    "attempt",
    "ts",
    "model_group",
    "deployment",
    "provider",
    "status",
    "http_status",
    "error_kind",
    "ttft_ms",
    "total_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "route_reason",
)
_CHUNK = 5000


def upgrade() -> None:
    op.add_column("calls", sa.Column("attempt_log", sa.Text))
    conn = op.get_bind()
    calls = sa.table("calls", sa.column("request_id", sa.String), sa.column("attempt_log", sa.Text))
    att = sa.table("call_attempts", sa.column("request_id", sa.String), *(sa.column(f) for f in _FIELDS))
    update = (
        calls.update()
        .where(calls.c.request_id == sa.bindparam("rid"))
        .values(attempt_log=sa.bindparam("log"))
    )
    # Copy the existing attempts onto their calls: keyset pages by request id (indexed), a page's
    # last call held back when the page may have cut its attempts short; one UPDATE per call.
    after = ""
    while True:
        rows = (
            conn.execute(
                sa.select(att)
                .where(att.c.request_id > after)
                .order_by(att.c.request_id, att.c.attempt)
                .limit(_CHUNK)
            )
            .mappings()
            .all()
        )
        if not rows:
            break
        by_call: dict[str, list[dict[str, object]]] = {}
        for r in rows:
            by_call.setdefault(r["request_id"], []).append({f: r[f] for f in _FIELDS})
        if len(rows) == _CHUNK and len(by_call) > 1:
            by_call.pop(rows[-1]["request_id"])
        conn.execute(update, [{"rid": rid, "log": json.dumps(items)} for rid, items in by_call.items()])
        after = max(by_call)
    op.drop_index("ix_call_attempts_deployment_ts", table_name="call_attempts")
    op.drop_index("ix_call_attempts_request", table_name="call_attempts")
    op.drop_table("call_attempts")


def downgrade() -> None:
    op.create_table(
        "call_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("model_group", sa.String(200), nullable=False),
        sa.Column("deployment", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("error_kind", sa.String(64)),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("total_ms", sa.Float, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("route_reason", sa.String(200)),
    )
    op.create_index("ix_call_attempts_request", "call_attempts", ["request_id"])
    op.create_index("ix_call_attempts_deployment_ts", "call_attempts", ["deployment", "ts"])
    conn = op.get_bind()
    calls = sa.table("calls", sa.column("request_id", sa.String), sa.column("attempt_log", sa.Text))
    att = sa.table("call_attempts", sa.column("request_id", sa.String), *(sa.column(f) for f in _FIELDS))
    rows = conn.execute(sa.select(calls).where(calls.c.attempt_log.is_not(None)))
    batch: list[dict[str, object]] = []
    for rid, log in rows:
        for a in json.loads(log):
            item = {"request_id": rid, **{f: a.get(f) for f in _FIELDS}}
            for f in ("prompt_tokens", "completion_tokens", "cost_usd"):
                item[f] = item[f] or 0
            batch.append(item)
        if len(batch) >= _CHUNK:
            conn.execute(att.insert(), batch)
            batch = []
    if batch:
        conn.execute(att.insert(), batch)
    with op.batch_alter_table("calls") as b:
        b.drop_column("attempt_log")
