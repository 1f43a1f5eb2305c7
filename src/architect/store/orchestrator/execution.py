"""Claims, leases, heartbeats, fenced completion and the reaper (the hot path of the orchestrator)."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, insert, or_, select, tuple_, update

from architect.store.orchestrator.base import (
    DEFAULT_AGENT,
    Claimed,
    ClaimOptions,
    Outcome,
    RepoBase,
    Row,
    agent_of,
    dumps,
    task_row,
)
from architect.store.orchestrator.fastpath import FastPath
from architect.store.orchestrator.limits import Gcra, lock_limiter, save_tat
from architect.store.schema_orchestrator import features, task_deps, task_workers, tasks

__all__ = ["ExecutionMixin"]


def _not_agents(agents: Sequence[str], default_agent: str) -> Any:
    """Not an agent task done by one of `agents` (see `agent_of`)."""
    return or_(tasks.c.executor != "agent", agent_of(default_agent).not_in(list(agents)))


class ExecutionMixin(RepoBase):
    @staticmethod
    def _claimable(now: float, opts: ClaimOptions) -> Any:
        inactive = select(features.c.id).where(features.c.status != "active")
        conds = [tasks.c.status == "ready", tasks.c.run_after <= now, tasks.c.feature_id.not_in(inactive)]
        if opts.feature_ids is not None:
            conds.append(tasks.c.feature_id.in_(opts.feature_ids))
        if opts.task_ids is not None:
            conds.append(tasks.c.id.in_(opts.task_ids))
        if opts.max_phase is not None:
            conds.append(tasks.c.phase <= opts.max_phase)
        if opts.exclude_executors:
            conds.append(tasks.c.executor.not_in(opts.exclude_executors))
        if opts.exclude_agents:
            conds.append(_not_agents(opts.exclude_agents, opts.default_agent))
        return and_(*conds)

    def claim(self, worker_id: str, n: int, now: float, lease_s: float, opts: ClaimOptions) -> Claimed:
        """Claim up to n ready tasks (priority, then age) for worker_id, within the shared limits."""
        if n <= 0:
            return Claimed()
        if self._fast(opts):
            with self._single() as conn:
                return Claimed(self._fastpath.run(conn, (), worker_id, n, now, lease_s, opts)[1])
        with self._write() as conn:
            return self._claim_in(conn, worker_id, n, now, lease_s, opts)

    @functools.cached_property
    def _fastpath(self) -> FastPath:
        return FastPath()

    def _fast(self, opts: ClaimOptions) -> bool:
        """PostgreSQL and no shared limits: the one-statement path (`fastpath`) applies."""
        return self._pg and opts.max_running is None and not opts.role_limits and opts.rate is None

    def _claim_in(
        self,
        conn: Connection,
        worker_id: str,
        n: int,
        now: float,
        lease_s: float,
        opts: ClaimOptions,
        events: list[Row] | None = None,
    ) -> Claimed:
        if n <= 0:
            return Claimed()
        limited = opts.max_running is not None or bool(opts.role_limits) or opts.rate is not None
        gcra = Gcra.of(opts.rate, opts.rate_period) if opts.rate is not None else None
        tat = 0.0
        if limited:
            tat = lock_limiter(conn, self._pg)
            # serialised from here on: read the clock again, so that the start times recorded by
            # different workers follow the order in which the limits were checked
            now = max(now, time.time())
            if opts.max_running is not None:
                running = conn.execute(select(func.count()).where(tasks.c.status == "running")).scalar_one()
                n = min(n, opts.max_running - int(running))
            if gcra is not None:
                n = min(n, gcra.allowed(tat, now))
            if n <= 0:
                return Claimed(next_start_at=tat if gcra is not None and tat > now else None)
        order = (tasks.c.priority.desc(), tasks.c.ready_at, tasks.c.id)
        ids: Any
        if opts.role_limits:
            ids = self._pick_by_role(conn, n, now, opts, order)
        else:
            # a materialised CTE: PostgreSQL may otherwise re-run an `IN (... LIMIT n SKIP LOCKED)`
            # subquery per row and claim more than n tasks
            pick = select(tasks.c.id).where(self._claimable(now, opts)).order_by(*order).limit(n)
            picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            ids = select(picked.c.id)
        res = conn.execute(
            update(tasks)
            .where(tasks.c.id.in_(ids), tasks.c.status == "ready")
            .values(
                status="running",
                attempt=tasks.c.attempt + 1,
                worker_id=worker_id,
                lease_expires=now + lease_s,
                started_at=now,
                reason=None,
                updated_at=now,
            )
            .returning(*tasks.c)
        ).all()
        claimed = sorted(
            (task_row(r) for r in res), key=lambda t: (-t["priority"], t["ready_at"] or 0, t["id"])
        )
        if gcra is not None and claimed:
            tat = gcra.advance(tat, now, len(claimed))
            save_tat(conn, tat)
        batch = f"{worker_id}@{now:.6f}"
        evs = [self._ev(t, "claimed", now, worker_id, batch=batch, run=opts.run_id) for t in claimed]
        if events is None:
            self._events(conn, evs)
        else:
            events.extend(evs)
        return Claimed(claimed, next_start_at=tat if gcra is not None and tat > now else None)

    def _pick_by_role(
        self, conn: Connection, n: int, now: float, opts: ClaimOptions, order: Any
    ) -> list[int]:
        q = select(tasks.c.role, func.count()).where(tasks.c.status == "running").group_by(tasks.c.role)
        running: dict[str | None, int] = {r: int(c) for r, c in conn.execute(q)}
        cand = select(tasks.c.id, tasks.c.role).where(self._claimable(now, opts)).order_by(*order)
        cand = cand.limit(max(n * 8, 64)).with_for_update(skip_locked=True)
        out: list[int] = []
        for tid, role in conn.execute(cand):
            cap = opts.role_limits.get(role) if role is not None else None
            if cap is not None and running.get(role, 0) >= cap:
                continue
            running[role] = running.get(role, 0) + 1
            out.append(int(tid))
            if len(out) >= n:
                break
        return out

    def ready_executors(self, feature_ids: Sequence[int] | None) -> set[str]:
        """The executors of the tasks that are ready now (to health-check only what is needed)."""
        q = select(tasks.c.executor).where(tasks.c.status == "ready").distinct()
        if feature_ids is not None:
            q = q.where(tasks.c.feature_id.in_(feature_ids))
        with self._read() as conn:
            return {str(r[0]) for r in conn.execute(q)}

    def ready_agents(self, feature_ids: Sequence[int] | None, default_agent: str = DEFAULT_AGENT) -> set[str]:
        """The agents of the agent tasks that are ready now (see `agent_of`)."""
        agent = agent_of(default_agent)
        q = select(agent).where(tasks.c.status == "ready", tasks.c.executor == "agent").distinct()
        if feature_ids is not None:
            q = q.where(tasks.c.feature_id.in_(feature_ids))
        with self._read() as conn:
            return {str(r[0]) for r in conn.execute(q)}

    def note_waiting(
        self,
        waiting: Mapping[str, str],
        feature_ids: Sequence[int] | None,
        default_agent: str = DEFAULT_AGENT,
        now: float = 0.0,
    ) -> int:
        """Write why ready agent tasks wait on them (`reason`: "waiting: agent A: why", for each agent
        in `waiting`), so the board and the API say it; a claim clears it. Returns the rows changed."""
        agent = agent_of(default_agent)
        n = 0
        with self._write() as conn:
            for name, why in waiting.items():
                text = f"waiting: agent {name}: {why}"
                ids = select(tasks.c.id).where(
                    tasks.c.status == "ready", tasks.c.executor == "agent", agent == name,
                    or_(tasks.c.reason.is_(None), tasks.c.reason != text),
                )  # fmt: skip
                if feature_ids is not None:
                    ids = ids.where(tasks.c.feature_id.in_(list(feature_ids)))
                found = [int(r[0]) for r in conn.execute(ids)]
                if found:
                    conn.execute(
                        update(tasks).where(tasks.c.id.in_(found)).values(reason=text, updated_at=now)
                    )
                    n += len(found)
        return n

    def heartbeat(self, worker_id: str, task_ids: Sequence[int], now: float, lease_s: float) -> set[int]:
        """Extend the leases this worker still holds; returns the ids it still owns."""
        with self._write() as conn:
            conn.execute(update(task_workers).where(task_workers.c.id == worker_id).values(last_seen=now))
            if not task_ids:
                return set()
            res = conn.execute(
                update(tasks)
                .where(
                    tasks.c.id.in_(list(task_ids)),
                    tasks.c.worker_id == worker_id,
                    tasks.c.status == "running",
                )
                .values(lease_expires=now + lease_s)
                .returning(tasks.c.id)
            )
            return {int(r[0]) for r in res}

    def set_process(self, task_id: int, attempt: int, host: str | None, pgid: int | None) -> bool:
        """Record (or clear) the process group running this attempt; fenced like completion."""
        with self._write() as conn:
            res = conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.attempt == attempt, tasks.c.status == "running")
                .values(host=host, pgid=pgid)
            )
            return (res.rowcount or 0) == 1

    def block_claimed(
        self, task_id: int, attempt: int, reason: str, now: float, worker_id: str, detail: Mapping[str, Any]
    ) -> Row | None:
        """Block a task this worker claimed but must not run (fenced like completion), and its
        dependents; it stays blocked until a person acts. None if the attempt lost its claim."""
        with self._write() as conn:
            r = conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.attempt == attempt, tasks.c.status == "running")
                .values(status="blocked", reason=reason, lease_expires=None, pgid=None, updated_at=now)
                .returning(tasks.c.id, tasks.c.key, tasks.c.feature_id, tasks.c.attempt)
            ).first()
            if r is None:
                return None
            t = {**r._mapping, "status": "blocked", "reason": reason}
            self._events(conn, [self._ev(t, "blocked", now, worker_id, reason=reason, **detail)])
            self._block_dependents(conn, [t], now)
            return t

    def complete(self, task_id: int, attempt: int, now: float, outcome: Outcome, worker_id: str) -> bool:
        """Record an attempt's outcome, fenced by attempt and status; False if the attempt lost its claim."""
        return self.complete_many([(task_id, attempt, outcome)], now, worker_id)[0]

    def complete_many(
        self, items: Sequence[tuple[int, int, Outcome]], now: float, worker_id: str
    ) -> list[bool]:
        """`complete` for several attempts in one transaction (a worker flushes its finished tasks)."""
        if items and self._pg and all(self._plain(o) for _, _, o in items):  # claims nothing (n = 0)
            return self.complete_and_claim(items, worker_id, 0, now, 0.0, ClaimOptions())[0]
        with self._write() as conn:
            return self._complete_in(conn, items, now, worker_id)

    def complete_and_claim(
        self,
        items: Sequence[tuple[int, int, Outcome]],
        worker_id: str,
        n: int,
        now: float,
        lease_s: float,
        opts: ClaimOptions,
    ) -> tuple[list[bool], Claimed]:
        """Record finished attempts and claim up to n ready tasks, in one transaction."""
        if self._fast(opts) and all(self._plain(o) for _, _, o in items):
            with self._single() as conn:
                items3 = [(i, a, o.duration_s) for i, a, o in items]
                got, claimed = self._fastpath.run(conn, items3, worker_id, n, now, lease_s, opts)
            return [i in got for i, _, _ in items], Claimed(claimed)
        evs: list[Row] = []
        with self._write() as conn:
            done = self._complete_in(conn, items, now, worker_id, evs)
            claimed = self._claim_in(conn, worker_id, n, now, lease_s, opts, evs)
            self._events(conn, evs)  # one insert for both
            return done, claimed

    def _complete_in(
        self,
        conn: Connection,
        items: Sequence[tuple[int, int, Outcome]],
        now: float,
        worker_id: str,
        events: list[Row] | None = None,
    ) -> list[bool]:
        cols = (tasks.c.id, tasks.c.key, tasks.c.feature_id, tasks.c.attempt, tasks.c.status, tasks.c.reason)
        done: dict[tuple[int, int], Row] = {}
        plain = [(i, a) for i, a, o in items if self._plain(o)]
        if plain:  # the common no-result success: one fenced statement for all of them
            res = conn.execute(
                update(tasks)
                .where(tuple_(tasks.c.id, tasks.c.attempt).in_(plain), tasks.c.status == "running")
                .values(
                    status="succeeded",
                    reason=None,
                    lease_expires=None,
                    pgid=None,
                    finished_at=now,
                    updated_at=now,
                )
                .returning(*cols)
            ).all()
            done.update({(r.id, r.attempt): dict(r._mapping) for r in res})
        plain_set = set(plain)
        for task_id, attempt, o in items:
            if (task_id, attempt) in plain_set:
                continue
            row = conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.attempt == attempt, tasks.c.status == "running")
                .values(**self._outcome_values(o, now))
                .returning(*cols)
            ).first()
            if row is not None:
                done[(task_id, attempt)] = dict(row._mapping)
        evs = []
        for task_id, attempt, o in items:
            t = done.get((task_id, attempt))
            if t is None:
                continue
            data: dict[str, Any] = {"duration_s": o.duration_s}
            if o.validation is not None:
                data["validation"] = o.validation
            if o.status == "failed":
                data.update(reason=o.reason, retry_at=o.retry_at)
            evs.append(self._ev(t, o.status, now, worker_id, **data))
        if events is None:
            self._events(conn, evs)
        else:
            events.extend(evs)
        ok_ids = [t["id"] for t in done.values() if t["status"] == "succeeded"]
        if ok_ids:
            sub = select(task_deps.c.task_id).where(task_deps.c.dep_id.in_(ok_ids))
            n_met = (
                select(func.count())
                .where(task_deps.c.task_id == tasks.c.id, task_deps.c.dep_id.in_(ok_ids))
                .scalar_subquery()
            )
            left = tasks.c.pending_deps - n_met
            now_ready = left <= 0
            conn.execute(  # one statement: count down, and make ready what has nothing left to wait for
                update(tasks)
                .where(tasks.c.id.in_(sub), tasks.c.status == "pending")
                .values(
                    pending_deps=left,
                    status=case((now_ready, "ready"), else_=tasks.c.status),
                    ready_at=case((now_ready, now), else_=tasks.c.ready_at),
                    run_after=case((now_ready, now), else_=tasks.c.run_after),
                )
            )
        failed = [t for t in done.values() if t["status"] == "failed"]
        if failed:
            self._block_dependents(conn, failed, now)
        return [(i, a) in done for i, a, _ in items]

    @staticmethod
    def _plain(o: Outcome) -> bool:
        return o.status == "succeeded" and o.result is None and o.validation is None

    @staticmethod
    def _outcome_values(o: Outcome, now: float) -> dict[str, Any]:
        retry = o.status == "failed" and o.retry_at is not None
        vals: dict[str, Any] = {
            "status": "ready" if retry else o.status,
            "result": dumps(o.result),
            "validation": dumps(o.validation),
            "reason": o.reason,
            "lease_expires": None,
            "pgid": None,
            "updated_at": now,
        }
        if o.status == "failed":
            vals["failures"] = tasks.c.failures + 1
        if retry:
            vals.update(run_after=o.retry_at, ready_at=now)
        else:
            vals["finished_at"] = now
        return vals

    def reap(self, now: float) -> list[Row]:
        """Requeue running tasks whose lease expired (or fail them past their crash cap)."""
        expired = and_(tasks.c.status == "running", tasks.c.lease_expires < now)
        cols = [
            tasks.c[n]
            for n in ("id", "key", "feature_id", "attempt", "status", "reason", "worker_id", "crashes")
        ]
        with self._write() as conn:
            over = conn.execute(
                update(tasks)
                .where(expired, tasks.c.crashes + 1 > tasks.c.max_crashes)
                .values(
                    status="failed",
                    crashes=tasks.c.crashes + 1,
                    reason="lease expired too many times (worker lost)",
                    finished_at=now,
                    lease_expires=None,
                    updated_at=now,
                )
                .returning(*cols)
            ).all()
            back = conn.execute(
                update(tasks)
                .where(expired)
                .values(
                    status="ready",
                    crashes=tasks.c.crashes + 1,
                    run_after=now,
                    ready_at=now,
                    lease_expires=None,
                )
                .returning(*cols)
            ).all()
            failed = [dict(r._mapping) for r in over]
            requeued = [dict(r._mapping) for r in back]
            evs = [self._ev(t, "failed", now, lost_worker=t["worker_id"], reason=t["reason"]) for t in failed]
            evs += [self._ev(t, "requeued", now, lost_worker=t["worker_id"]) for t in requeued]
            self._events(conn, evs)
            if failed:
                self._block_dependents(conn, failed, now)
            return failed + requeued

    def register_worker(self, worker_id: str, host: str, pid: int, now: float) -> None:
        with self._write() as conn:
            conn.execute(delete(task_workers).where(task_workers.c.id == worker_id))
            conn.execute(
                insert(task_workers).values(id=worker_id, host=host, pid=pid, started_at=now, last_seen=now)
            )

    def remove_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(delete(task_workers).where(task_workers.c.id == worker_id))

    def workers(self) -> list[Row]:
        with self._read() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(select(task_workers).order_by(task_workers.c.started_at))
            ]

    def active_count(
        self,
        feature_ids: Sequence[int] | None,
        max_phase: int | None,
        exclude_executors: Sequence[str] = (),
        exclude_agents: Sequence[str] = (),
        default_agent: str = DEFAULT_AGENT,
    ) -> Row:
        """Task counts by status in scope (leaving out the tasks of `exclude_executors` and the agent
        tasks of `exclude_agents`, as a claim does), and how many of the scoped features are not active."""
        q = select(tasks.c.status, func.count()).group_by(tasks.c.status)
        if exclude_executors:
            q = q.where(tasks.c.executor.not_in(list(exclude_executors)))
        if exclude_agents:
            q = q.where(_not_agents(exclude_agents, default_agent))
        fq = select(func.count()).where(features.c.status != "active")
        if feature_ids is not None:
            q = q.where(tasks.c.feature_id.in_(feature_ids))
            fq = fq.where(features.c.id.in_(feature_ids))
        if max_phase is not None:
            q = q.where(tasks.c.phase <= max_phase)
        with self._read() as conn:
            counts = {str(s): int(c) for s, c in conn.execute(q)}
            inactive = conn.execute(fq).scalar_one()
        return {"counts": counts, "inactive_features": int(inactive)}
