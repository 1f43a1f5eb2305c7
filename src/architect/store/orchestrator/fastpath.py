"""PostgreSQL's one-statement hot path: record plain successes, count down their dependents, claim the
freed slots and record the events, in a single autocommit statement (one round trip per batch).

Used when the claim has no shared limits (those need the `task_limits` row lock) and every outcome
in the batch is a plain success (failures, results and validations take the general path).
Guarantees are those of the general path:

* completion is fenced by `(id, attempt)` and `status = 'running'`;
* the claim is a `MATERIALIZED` CTE with `FOR UPDATE SKIP LOCKED` (it picks exactly n rows once);
* the data-modifying CTEs touch disjoint rows (running, pending and ready tasks of the same snapshot),
  so a task made ready by this statement is claimed by the next claim, not this one;
* one statement is one transaction: all of it happens or none of it.
* a deadlock abort (two batches counting down shared dependents in opposite orders) changed
  nothing, so the statement is run again (up to 3 times).

The statement is built once per shape (with or without completions, and which claim filters are
set) with named parameters, so neither building nor compiling it is paid per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError

from architect.store.orchestrator.base import ClaimOptions, Row, agent_of, dumps, task_row
from architect.store.schema_orchestrator import features, task_deps, task_events, tasks

__all__ = ["FastPath"]

_EV_COLS = ["ts", "feature_id", "task_id", "task_key", "kind", "attempt", "worker_id", "data"]
_DEADLOCK_RETRIES = 3
Shape = tuple[bool, bool, bool, bool, bool, bool]


def _p(name: str, type_: Any) -> Any:
    return bindparam(name, type_=type_)


def _claimable(shape: Shape) -> Any:
    _, feats, task_ids, phase, exclude, agents = shape
    inactive = select(features.c.id).where(features.c.status != "active")
    conds = [
        tasks.c.status == "ready",
        tasks.c.run_after <= _p("now", Float),
        tasks.c.feature_id.not_in(inactive),
    ]
    if feats:
        conds.append(tasks.c.feature_id == func.any(_p("feature_ids", ARRAY(Integer))))
    if task_ids:
        conds.append(tasks.c.id == func.any(_p("task_ids", ARRAY(Integer))))
    if phase:
        conds.append(tasks.c.phase <= _p("max_phase", Integer))
    if exclude:
        conds.append(tasks.c.executor != func.all(_p("exclude", ARRAY(Text))))
    if agents:  # not an agent task done by an excluded agent
        agent = agent_of(_p("default_agent", String))
        conds.append(or_(tasks.c.executor != "agent", agent != func.all(_p("exclude_agents", ARRAY(Text)))))
    return and_(*conds)


def _build(shape: Shape) -> Any:
    now = _p("now", Float)
    worker = _p("worker_id", String)
    ev_parts: list[Any] = []
    extra: list[Any] = []
    done: Any = None
    if shape[0]:
        # arrays bound as parameters, zipped by unnest: one statement whatever the batch size
        arr = (("vid", ARRAY(Integer)), ("vattempt", ARRAY(Integer)), ("vdata", ARRAY(Text)))
        v = select(*(func.unnest(_p(k, t)).label(k) for k, t in arr)).subquery("v")
        done = (
            update(tasks)
            .where(tasks.c.id == v.c.vid, tasks.c.attempt == v.c.vattempt, tasks.c.status == "running")
            .values(
                status="succeeded",
                reason=null(),
                lease_expires=null(),
                pgid=null(),
                finished_at=now,
                updated_at=now,
            )
            .returning(tasks.c.id, tasks.c.key, tasks.c.feature_id, tasks.c.attempt, v.c.vdata)
            .cte("done")
        )
        met = (
            select(task_deps.c.task_id, func.count().label("n_met"))
            .where(task_deps.c.dep_id.in_(select(done.c.id)))
            .group_by(task_deps.c.task_id)
            .subquery("met")
        )
        left = tasks.c.pending_deps - met.c.n_met
        now_ready = left <= 0
        deps = (
            update(tasks)
            .where(tasks.c.id == met.c.task_id, tasks.c.status == "pending")
            .values(
                pending_deps=left,
                status=case((now_ready, "ready"), else_=tasks.c.status),
                ready_at=case((now_ready, now), else_=tasks.c.ready_at),
                run_after=case((now_ready, now), else_=tasks.c.run_after),
            )
            .returning(tasks.c.id)
            .cte("deps")
        )
        extra.append(deps)
        ev_parts.append(
            select(
                now,
                done.c.feature_id,
                done.c.id,
                done.c.key,
                literal("succeeded", String),
                done.c.attempt,
                worker,
                done.c.vdata,
                literal(0, Integer).label("grp"),
                done.c.id.label("ord"),
            )
        )
    order = (tasks.c.priority.desc(), tasks.c.ready_at, tasks.c.id)
    pick = select(tasks.c.id).where(_claimable(shape)).order_by(*order).limit(_p("n", Integer))
    picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    claimed = (
        update(tasks)
        .where(tasks.c.id.in_(select(picked.c.id)), tasks.c.status == "ready")
        .values(
            status="running",
            attempt=tasks.c.attempt + 1,
            worker_id=worker,
            lease_expires=_p("lease_expires", Float),
            started_at=now,
            reason=null(),
            updated_at=now,
        )
        .returning(*tasks.c)
        .cte("claimed")
    )
    ev_parts.append(
        select(
            now,
            claimed.c.feature_id,
            claimed.c.id,
            claimed.c.key,
            literal("claimed", String),
            claimed.c.attempt,
            worker,
            _p("claim_data", Text),
            literal(1, Integer).label("grp"),
            claimed.c.id.label("ord"),
        )
    )
    union = ev_parts[0].union_all(*ev_parts[1:]).subquery("evs")
    ev_rows = select(*(union.c[k] for k in list(union.c.keys())[:8])).order_by(union.c.grp, union.c.ord)
    extra.append(insert(task_events).from_select(_EV_COLS, ev_rows).cte("ev"))
    if done is not None:
        agg = select(func.array_agg(done.c.id).label("done_ids")).subquery("agg")
        stmt = select(agg.c.done_ids, claimed).select_from(agg.outerjoin(claimed, true()))
    else:
        stmt = select(null().label("done_ids"), claimed)
    return stmt.add_cte(*extra)


class FastPath:
    """The cached statements of one repository."""

    def __init__(self) -> None:
        self._stmts: dict[Shape, tuple[str, dict[str, Any]]] = {}

    def run(
        self,
        conn: Connection,
        done_items: Sequence[tuple[int, int, float | None]],
        worker_id: str,
        n: int,
        now: float,
        lease_s: float,
        opts: ClaimOptions,
    ) -> tuple[set[int], list[Row]]:
        """(ids of the recorded attempts, claimed task rows). done_items: (task id, attempt, duration)."""
        shape: Shape = (
            bool(done_items),
            opts.feature_ids is not None,
            opts.task_ids is not None,
            opts.max_phase is not None,
            bool(opts.exclude_executors),
            bool(opts.exclude_agents),
        )
        stmt = self._stmts.get(shape)
        if stmt is None:
            compiled = _build(shape).compile(dialect=conn.dialect)
            stmt = self._stmts[shape] = (compiled.string, dict(compiled.params))
        params: dict[str, Any] = {
            "now": now, "worker_id": worker_id, "n": max(n, 0), "lease_expires": now + lease_s,
            "claim_data": dumps({"batch": f"{worker_id}@{now:.6f}", "run": opts.run_id}),
            "feature_ids": list(opts.feature_ids or ()), "task_ids": list(opts.task_ids or ()),
            "max_phase": opts.max_phase, "exclude": list(opts.exclude_executors),
            "exclude_agents": list(opts.exclude_agents), "default_agent": opts.default_agent,
        }  # fmt: skip
        if done_items:
            params["vid"] = [i for i, _, _ in done_items]
            params["vattempt"] = [a for _, a, _ in done_items]
            params["vdata"] = [dumps({"duration_s": d}) for _, _, d in done_items]
        sql, fixed = stmt
        for attempt in range(_DEADLOCK_RETRIES + 1):
            try:
                res = conn.exec_driver_sql(sql, {**fixed, **params}).all()
                break
            except DBAPIError as exc:
                # two batches counting down shared dependents in opposite orders: PostgreSQL aborts one
                # statement, which changed nothing (it is its own transaction), so running it again is safe
                if getattr(exc.orig, "sqlstate", None) != "40P01" or attempt == _DEADLOCK_RETRIES:
                    raise
        done_ids: set[int] = set()
        rows: list[Row] = []
        for r in res:
            m = dict(r._mapping)
            done_ids.update(m.pop("done_ids") or ())
            if m.get("id") is not None:
                rows.append(task_row(_Row(m)))
        rows.sort(key=lambda t: (-t["priority"], t["ready_at"] or 0, t["id"]))
        return done_ids, rows


class _Row:
    __slots__ = ("_mapping",)

    def __init__(self, m: Row) -> None:
        self._mapping = m
