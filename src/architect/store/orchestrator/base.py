"""Shared pieces of the orchestrator store: the interface, value types, JSON and transaction helpers."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from architect.errors import NotFoundInStore, StateConflict, StoreError
from architect.store.engine import begin_immediate
from architect.store.orchestrator.readiness import blocked_reason, compute_readiness
from architect.store.schema import INT32_MAX
from architect.store.schema_orchestrator import features, task_deps, task_events, tasks
from architect.trust import Writer

__all__ = [
    "DEFAULT_AGENT",
    "FINAL",
    "ClaimOptions",
    "Claimed",
    "Outcome",
    "RepoBase",
    "Row",
    "TaskRepo",
    "agent_of",
    "dumps",
    "loads",
]

Row = dict[str, Any]
DEFAULT_AGENT = "builtin"  # the agent of an agent task that names none, in a feature that names none
JSON_TASK = ("deps", "params", "result", "validation", "route")
FINAL = ("succeeded", "failed", "cancelled")


def _wide(v: Any) -> Any:
    """`v` with integers beyond 64 bits (which orjson cannot write) as floats (as orjson reads
    them back), or as text when even a float cannot hold them."""
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**64:
        try:
            return float(v)
        except OverflowError:
            return str(v)
    if isinstance(v, dict):
        return {k: _wide(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_wide(x) for x in v]
    return v


def dumps(v: Any) -> str | None:
    """`v` as JSON text (None stays None); integers beyond 64 bits are written as floats."""
    if v is None:
        return None
    try:
        return orjson.dumps(v, default=str).decode()
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
        return orjson.dumps(_wide(v), default=str).decode()


def loads(v: str | None) -> Any:
    return None if v is None else orjson.loads(v)


def agent_of(default_agent: Any) -> Any:
    """SQL for the agent that does a task's attempts: the task's own `agent`, else its feature's, else
    `default_agent` (a value or a bound parameter). Meaningful for tasks whose executor is `agent`."""
    feature_agent = select(features.c.agent).where(features.c.id == tasks.c.feature_id).scalar_subquery()
    return func.coalesce(tasks.c.agent, feature_agent, default_agent)


def task_row(r: Any) -> Row:
    d = dict(r._mapping)
    for k in JSON_TASK:
        if k in d:
            d[k] = loads(d[k])
    return d


def feature_row(r: Any) -> Row:
    d = dict(r._mapping)
    d["acceptance"] = loads(d.get("acceptance")) or []
    return d


@dataclass(frozen=True, slots=True)
class ClaimOptions:
    """What a worker may claim and the shared limits that apply (None: unlimited).

    `exclude_agents`: agent tasks done by one of these agents are not claimed (their program is not
    installed on this worker: they wait). A task's agent is its own `agent`, else its feature's, else
    `default_agent` (the worker's configured default)."""

    feature_ids: tuple[int, ...] | None = None
    task_ids: tuple[int, ...] | None = None
    max_phase: int | None = None
    exclude_executors: tuple[str, ...] = ()
    exclude_agents: tuple[str, ...] = ()
    default_agent: str = DEFAULT_AGENT
    max_running: int | None = None
    role_limits: Mapping[str, int] = field(default_factory=dict)
    # at most `rate` starts per `rate_period` seconds across all workers, one every rate_period / rate
    rate: int | None = None
    rate_period: float = 1.0
    run_id: str | None = None


class Claimed(list[Row]):
    """The task rows a claim took, and when the shared rate limit allows the next start.

    `next_start_at` (UNIX time) is set when a rate limit applies and does not allow another start
    right now: a worker with free slots waits until then rather than polling.
    """

    __slots__ = ("next_start_at",)

    def __init__(self, rows: Iterable[Row] = (), next_start_at: float | None = None) -> None:
        super().__init__(rows)
        self.next_start_at = next_start_at


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt. `retry_at` set on a failure: requeue (ready) at that time."""

    status: str  # succeeded | failed
    result: Any = None
    validation: Any = None
    reason: str | None = None
    retry_at: float | None = None
    duration_s: float | None = None


class TaskRepo(Protocol):
    """The narrow storage interface of the orchestrator."""

    # plans and features
    def import_feature(self, plan: Mapping[str, Any], now: float, writer: Writer) -> Row: ...
    def get_feature(self, ref: str | int) -> Row: ...
    def list_features(self, projects: frozenset[str] | None = None) -> list[Row]: ...
    def update_feature(
        self, feature_id: int, fields: Mapping[str, Any], now: float, writer: Writer
    ) -> Row: ...
    def set_feature_status(self, feature_id: int, status: str, now: float, reason: str) -> int: ...
    def delete_feature(self, feature_id: int) -> None: ...
    def phases(self, feature_id: int) -> list[Row]: ...
    def tasks(self, feature_id: int, status: str | None = None) -> list[Row]: ...
    def get_task(self, feature_id: int, key: str) -> Row: ...
    def update_task(
        self, feature_id: int, key: str, fields: Mapping[str, Any], now: float, writer: Writer
    ) -> Row: ...
    def cancel_task(self, feature_id: int, key: str, now: float, reason: str) -> Row: ...
    def retry_task(self, feature_id: int, key: str, now: float) -> Row: ...
    def approve(self, feature_id: int, keys: Sequence[str] | None, now: float, actor: str) -> list[Row]: ...
    def status_counts(self, feature_id: int) -> list[Row]: ...
    # execution
    def claim(self, worker_id: str, n: int, now: float, lease_s: float, opts: ClaimOptions) -> Claimed: ...
    def ready_executors(self, feature_ids: Sequence[int] | None) -> set[str]: ...
    def note_waiting(
        self,
        waiting: Mapping[str, str],
        feature_ids: Sequence[int] | None,
        default_agent: str = DEFAULT_AGENT,
        now: float = 0.0,
    ) -> int: ...
    def ready_agents(
        self, feature_ids: Sequence[int] | None, default_agent: str = DEFAULT_AGENT
    ) -> set[str]: ...
    def heartbeat(self, worker_id: str, task_ids: Sequence[int], now: float, lease_s: float) -> set[int]: ...
    def set_process(self, task_id: int, attempt: int, host: str | None, pgid: int | None) -> bool: ...
    def block_claimed(
        self, task_id: int, attempt: int, reason: str, now: float, worker_id: str, detail: Mapping[str, Any]
    ) -> Row | None: ...
    def complete(self, task_id: int, attempt: int, now: float, outcome: Outcome, worker_id: str) -> bool: ...
    def complete_many(
        self, items: Sequence[tuple[int, int, Outcome]], now: float, worker_id: str
    ) -> list[bool]: ...
    def complete_and_claim(
        self,
        items: Sequence[tuple[int, int, Outcome]],
        worker_id: str,
        n: int,
        now: float,
        lease_s: float,
        opts: ClaimOptions,
    ) -> tuple[list[bool], Claimed]: ...
    def reap(self, now: float) -> list[Row]: ...
    def register_worker(self, worker_id: str, host: str, pid: int, now: float) -> None: ...
    def remove_worker(self, worker_id: str) -> None: ...
    def workers(self) -> list[Row]: ...
    def active_count(
        self,
        feature_ids: Sequence[int] | None,
        max_phase: int | None,
        exclude_executors: Sequence[str] = (),
        exclude_agents: Sequence[str] = (),
        default_agent: str = DEFAULT_AGENT,
    ) -> Row: ...
    # events, items, costs
    def add_event(
        self, feature_id: int, kind: str, now: float, data: Mapping[str, Any] | None = None
    ) -> None: ...
    def events(self, feature_id: int | None = None, after_id: int = 0, limit: int = 10_000) -> list[Row]: ...
    def items(self, feature_id: int, kind: str | None = None) -> list[Row]: ...
    def add_item(self, feature_id: int, fields: Mapping[str, Any], now: float) -> Row: ...
    def update_item(self, feature_id: int, item_id: int, fields: Mapping[str, Any], now: float) -> Row: ...
    def delete_item(self, feature_id: int, item_id: int) -> None: ...
    def call_costs(self, project: str, feature: str) -> list[Row]: ...
    # agent tasks: attempts, the recorded base, merge locks
    def start_attempt(self, row: Mapping[str, Any]) -> int: ...
    def update_attempt(self, attempt_id: int, fields: Mapping[str, Any]) -> bool: ...
    def finish_attempt(self, attempt_id: int, fields: Mapping[str, Any]) -> bool: ...
    def get_attempt(self, attempt_id: int) -> Row: ...
    def attempts(self, task_id: int | None = None, feature_id: int | None = None) -> list[Row]: ...
    def last_attempt(self, task_id: int) -> Row | None: ...
    def stale_attempts(self, task_id: int | None = None) -> list[Row]: ...
    def attempt_costs(self, feature_id: int) -> list[Row]: ...
    def set_base_sha(self, feature_id: int, sha: str) -> str: ...
    def acquire_merge_lock(self, feature_id: int, holder: str, ttl_s: float, now: float) -> bool: ...
    def release_merge_lock(self, feature_id: int, holder: str) -> bool: ...
    def merge_lock(self, feature_id: int) -> Row | None: ...


class RepoBase:
    """Connections, transactions, event rows and lookups shared by the repository mixins."""

    def __init__(self, engine: Engine, lock: threading.RLock | None = None) -> None:
        self._engine = engine
        self._pg = engine.dialect.name == "postgresql"
        self._lock = lock

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._guard(), self._engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (`BEGIN IMMEDIATE` on SQLite); driver errors become StoreError."""
        with self._guard(), self._engine.connect() as conn:
            try:
                with begin_immediate(conn):
                    yield conn
            except IntegrityError as exc:
                raise StateConflict("orchestrator store: the change conflicts with existing rows") from exc
            except SQLAlchemyError as exc:
                msg = exc.args[0] if exc.args else ""
                raise StoreError(f"orchestrator store: {exc.__class__.__name__}: {msg}") from exc

    @contextlib.contextmanager
    def _single(self) -> Iterator[Connection]:
        """One statement in autocommit mode (its own transaction: no BEGIN/COMMIT round trips)."""
        with self._guard(), self._engine.connect() as conn:
            try:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
            except IntegrityError as exc:
                raise StateConflict("orchestrator store: the change conflicts with existing rows") from exc
            except SQLAlchemyError as exc:
                msg = exc.args[0] if exc.args else ""
                raise StoreError(f"orchestrator store: {exc.__class__.__name__}: {msg}") from exc

    def _guard(self) -> contextlib.AbstractContextManager[Any]:
        return self._lock if self._lock is not None else contextlib.nullcontext()

    @staticmethod
    def _events(conn: Connection, rows: list[Row]) -> None:
        if rows:
            conn.execute(insert(task_events), rows)

    @staticmethod
    def _ev(t: Mapping[str, Any], kind: str, now: float, worker: str | None = None, **data: Any) -> Row:
        return {
            "ts": now,
            "feature_id": t["feature_id"],
            "task_id": t["id"],
            "task_key": t["key"],
            "kind": kind,
            "attempt": t.get("attempt"),
            "worker_id": worker,
            "data": dumps(data) if data else None,
        }

    @staticmethod
    def _feature_row(conn: Connection, ref: str | int) -> Row:
        q = select(features)
        digits = isinstance(ref, str) and ref.isascii() and ref.isdigit()
        fid = ref if isinstance(ref, int) else int(ref) if digits and len(ref) <= 10 else None
        if fid is not None or digits:
            if fid is None or not 0 < fid <= INT32_MAX:  # a larger id would overflow PostgreSQL's integer
                raise NotFoundInStore(f"feature {ref!r} not found")
            q = q.where(features.c.id == fid)
        else:
            q = q.where(features.c.slug == ref)
        r = conn.execute(q).first()
        if r is None:
            raise NotFoundInStore(f"feature {ref!r} not found")
        return feature_row(r)

    @staticmethod
    def _feature_name(conn: Connection, feature_id: int) -> str:
        """The feature's slug for messages (its id when there is no such feature)."""
        slug = conn.execute(select(features.c.slug).where(features.c.id == feature_id)).scalar()
        return str(slug) if slug is not None else str(feature_id)

    @classmethod
    def _task_row(cls, conn: Connection, feature_id: int, key: str) -> Row:
        r = conn.execute(select(tasks).where(tasks.c.feature_id == feature_id, tasks.c.key == key)).first()
        if r is None:
            raise NotFoundInStore(f"task {key!r} not found in feature {cls._feature_name(conn, feature_id)}")
        return task_row(r)

    def _recompute(self, conn: Connection, feature_id: int, now: float) -> None:
        """Recompute pending_deps, readiness and blocking for the unfinished tasks of a feature."""
        rows = [task_row(r) for r in conn.execute(select(tasks).where(tasks.c.feature_id == feature_id))]
        evs: list[Row] = []
        for t, ch in compute_readiness(rows, now):
            conn.execute(update(tasks).where(tasks.c.id == t["id"]).values(**ch, updated_at=now))
            if ch.get("status") in ("blocked", "ready"):
                evs.append(self._ev(t, ch["status"], now, reason=ch.get("reason")))
        self._events(conn, evs)

    def _block_dependents(self, conn: Connection, failed: list[Row], now: float) -> None:
        """Block, transitively, the unfinished dependents of finally failed or cancelled tasks."""
        frontier = [(t["id"], blocked_reason(t["key"], t["status"], t.get("reason"))) for t in failed]
        evs: list[Row] = []
        while frontier:
            nxt: list[tuple[int, str]] = []
            for dep_id, reason in frontier:
                sub = select(task_deps.c.task_id).where(task_deps.c.dep_id == dep_id)
                res = conn.execute(
                    update(tasks)
                    .where(tasks.c.id.in_(sub), tasks.c.status.in_(("pending", "ready")))
                    .values(status="blocked", reason=reason, updated_at=now)
                    .returning(tasks.c.id, tasks.c.key, tasks.c.feature_id, tasks.c.attempt)
                ).all()
                for r in res:
                    t = dict(r._mapping)
                    evs.append(self._ev(t, "blocked", now, reason=reason))
                    nxt.append((t["id"], blocked_reason(t["key"], "blocked", reason)))
            frontier = nxt
        self._events(conn, evs)
