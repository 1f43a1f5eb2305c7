"""Attempts of agent tasks (`task_attempts`), the features' recorded base SHA, the per-feature merge
locks (`merge_locks`) and the ledger's spend per attempt.

An attempt row is written `running` when the attempt starts and finished once (`finish_attempt` is
fenced on `running`, so a worker that lost its claim cannot overwrite the `crashed` mark the next
one wrote). A `running` row whose task is no longer running that attempt was left by a dead worker
(`stale_attempts`): its key is revoked and the row marked `crashed` before the task runs again.

The merge lock is one row per feature taken by an atomic upsert: inserted when absent, taken over
when it expired or is already the holder's (a re-entrant extension), else refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from architect.errors import NotFoundInStore
from architect.store.orchestrator.base import RepoBase, Row, dumps, loads
from architect.store.schema import calls
from architect.store.schema_orchestrator import ATTEMPT_OUTCOMES, features, merge_locks, task_attempts, tasks

__all__ = ["AttemptsMixin", "attempt_row"]

_JSON = ("files", "commits", "validation")
_COLUMNS = frozenset(c.name for c in task_attempts.c) - {"id"}
_FIXED = frozenset({"task_id", "feature_id", "attempt", "started_at"})  # set when the attempt starts


def attempt_row(r: Any) -> Row:
    d = dict(r._mapping)
    for k in _JSON:
        if k in d:
            d[k] = loads(d[k])
    return d


def _values(fields: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """Column values of `fields` (JSON fields encoded); an unknown or fixed column or an unknown
    outcome is a programming error (ValueError)."""
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"task_attempts: cannot set {', '.join(unknown)}")
    outcome = fields.get("outcome")
    if outcome is not None and outcome not in ATTEMPT_OUTCOMES:
        raise ValueError(f"task_attempts: unknown outcome {outcome!r} (known: {', '.join(ATTEMPT_OUTCOMES)})")
    return {k: (dumps(v) if k in _JSON else v) for k, v in fields.items()}


class AttemptsMixin(RepoBase):
    # ---------------------------------------------------------------- attempts
    def start_attempt(self, row: Mapping[str, Any]) -> int:
        """Record an attempt that starts (`task_id`, `feature_id`, `attempt`, `started_at` required;
        `outcome` defaults to `running`); returns its id."""
        missing = sorted(_FIXED - set(row))
        if missing:
            raise ValueError(f"task_attempts: a new attempt needs {', '.join(missing)}")
        vals = _values({"outcome": "running", **row}, _COLUMNS)
        with self._write() as conn:
            return int(
                conn.execute(insert(task_attempts).values(**vals).returning(task_attempts.c.id)).scalar_one()
            )

    def update_attempt(self, attempt_id: int, fields: Mapping[str, Any]) -> bool:
        """Record what a running attempt learnt so far (its key, worktree, head SHA, ...); False when
        it is no longer running (finished, or marked crashed)."""
        vals = _values(fields, _COLUMNS - _FIXED - {"outcome"})
        if not vals:
            return bool(self.get_attempt(attempt_id)["outcome"] == "running")
        q = update(task_attempts).where(
            task_attempts.c.id == attempt_id, task_attempts.c.outcome == "running"
        )
        with self._write() as conn:
            return bool(conn.execute(q.values(**vals)).rowcount)

    def finish_attempt(self, attempt_id: int, fields: Mapping[str, Any]) -> bool:
        """Finish a running attempt: `outcome` (not `running`) and whatever else is known; `duration_s`
        defaults to `finished_at - started_at`. False when it was not running any more (fenced)."""
        if fields.get("outcome") in (None, "running"):
            raise ValueError("task_attempts: finishing an attempt needs its outcome")
        vals = _values(fields, _COLUMNS - _FIXED)
        running = and_(task_attempts.c.id == attempt_id, task_attempts.c.outcome == "running")
        with self._write() as conn:
            started = conn.execute(select(task_attempts.c.started_at).where(running)).scalar_one_or_none()
            if started is None:
                return False
            if vals.get("finished_at") is not None and "duration_s" not in vals:
                vals["duration_s"] = max(0.0, float(vals["finished_at"]) - float(started))
            return bool(conn.execute(update(task_attempts).where(running).values(**vals)).rowcount)

    def get_attempt(self, attempt_id: int) -> Row:
        with self._read() as conn:
            r = conn.execute(select(task_attempts).where(task_attempts.c.id == attempt_id)).first()
        if r is None:
            raise NotFoundInStore(f"attempt {attempt_id} not found")
        return attempt_row(r)

    def attempts(self, task_id: int | None = None, feature_id: int | None = None) -> list[Row]:
        """Attempt rows of a task or a feature (or all), oldest first."""
        q = select(task_attempts).order_by(task_attempts.c.id)
        if task_id is not None:
            q = q.where(task_attempts.c.task_id == task_id)
        if feature_id is not None:
            q = q.where(task_attempts.c.feature_id == feature_id)
        with self._read() as conn:
            return [attempt_row(r) for r in conn.execute(q)]

    def last_attempt(self, task_id: int) -> Row | None:
        """The task's latest attempt row (highest attempt number, then latest row), None if none."""
        q = (
            select(task_attempts)
            .where(task_attempts.c.task_id == task_id)
            .order_by(task_attempts.c.attempt.desc(), task_attempts.c.id.desc())
            .limit(1)
        )
        with self._read() as conn:
            r = conn.execute(q).first()
        return None if r is None else attempt_row(r)

    def stale_attempts(self, task_id: int | None = None) -> list[Row]:
        """`running` attempt rows whose task is not running that attempt any more (its worker died or
        lost its lease; the task was requeued, claimed again, or finished): of one task, or all."""
        live: ColumnElement[bool] = and_(
            tasks.c.status == "running", tasks.c.attempt == task_attempts.c.attempt
        )
        q = (
            select(task_attempts)
            .outerjoin(tasks, tasks.c.id == task_attempts.c.task_id)
            .where(task_attempts.c.outcome == "running", or_(tasks.c.id.is_(None), ~live))
            .order_by(task_attempts.c.id)
        )
        if task_id is not None:
            q = q.where(task_attempts.c.task_id == task_id)
        with self._read() as conn:
            return [attempt_row(r) for r in conn.execute(q)]

    def attempt_costs(self, feature_id: int) -> list[Row]:
        """The ledger's calls of each attempt's key, per attempt and model group: calls, tokens, cost
        (`unpriced` counts the calls whose price is unknown; the cost leaves them out)."""
        q = (
            select(
                task_attempts.c.id.label("attempt_id"),
                task_attempts.c.task_id,
                task_attempts.c.attempt,
                calls.c.model_group,
                func.count().label("calls"),
                func.coalesce(func.sum(calls.c.cost_usd), 0.0).label("cost_usd"),
                func.coalesce(func.sum(calls.c.prompt_tokens), 0).label("prompt_tokens"),
                func.coalesce(func.sum(calls.c.completion_tokens), 0).label("completion_tokens"),
                func.coalesce(func.sum(case((calls.c.cost_source == "unknown", 1), else_=0)), 0).label(
                    "unpriced"
                ),
            )
            .join(calls, calls.c.key_id == task_attempts.c.key_id)
            .where(task_attempts.c.feature_id == feature_id, task_attempts.c.key_id.is_not(None))
            .group_by(
                task_attempts.c.id, task_attempts.c.task_id, task_attempts.c.attempt, calls.c.model_group
            )
            .order_by(task_attempts.c.id, calls.c.model_group)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # ---------------------------------------------------------------- base SHA
    def set_base_sha(self, feature_id: int, sha: str) -> str:
        """Record the SHA the feature's base resolved to at its first run; the first one recorded
        stays (two workers racing agree on it). Returns the recorded SHA."""
        with self._write() as conn:
            self._feature_row(conn, feature_id)
            conn.execute(
                update(features)
                .where(features.c.id == feature_id, features.c.base_sha.is_(None))
                .values(base_sha=sha)
            )
            return str(
                conn.execute(select(features.c.base_sha).where(features.c.id == feature_id)).scalar_one()
            )

    # ---------------------------------------------------------------- merge locks
    def acquire_merge_lock(self, feature_id: int, holder: str, ttl_s: float, now: float) -> bool:
        """Take (or extend, for its holder) the feature's merge lock until `now + ttl_s`; False when
        another holder has it and it has not expired. One atomic statement."""
        vals = {"feature_id": feature_id, "holder": holder, "expires_at": now + ttl_s}
        ins = (postgresql.insert if self._pg else sqlite.insert)(merge_locks).values(**vals)
        free = or_(merge_locks.c.expires_at <= now, merge_locks.c.holder == holder)
        q = ins.on_conflict_do_update(
            index_elements=[merge_locks.c.feature_id],
            set_={"holder": ins.excluded.holder, "expires_at": ins.excluded.expires_at},
            where=free,
        ).returning(merge_locks.c.feature_id)
        with self._write() as conn:
            return conn.execute(q).first() is not None

    def release_merge_lock(self, feature_id: int, holder: str) -> bool:
        """Release the feature's merge lock if `holder` has it; False when it did not (expired and
        taken by another, or never held)."""
        q = delete(merge_locks).where(merge_locks.c.feature_id == feature_id, merge_locks.c.holder == holder)
        with self._write() as conn:
            return bool(conn.execute(q).rowcount)

    def merge_lock(self, feature_id: int) -> Row | None:
        """The feature's merge lock row (holder, expires_at), None when nobody holds one."""
        with self._read() as conn:
            r = conn.execute(select(merge_locks).where(merge_locks.c.feature_id == feature_id)).first()
        return None if r is None else dict(r._mapping)
