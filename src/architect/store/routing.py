"""The `auto` route's state (migration 0012): project settings, call outcomes, task-attempt key
outcomes, the prompt features of `auto` decisions, and what the quality figures are computed from.
`SQLRoutingRepo(engine)` on SQLite/PostgreSQL; `SQLiteMemoryRoutingRepo(db, ledger)` is the same SQL
on the memory store's in-memory SQLite database, reading calls from the memory ledger (whose calls are
not in a database).

- Outcomes (`call_outcomes`) are 0..1 per call, one per call: a new one for a call replaces the old
  (deleted and written again, so it gets a new `id` and readers following ids see it).
- Feedback names the call by request id and is scoped to the key that made it (`key_id`; None: any
  call, the admin's).
- A key outcome (`key_outcomes`, a task attempt's) is applied to every answered (`status` ok, not an
  embedding) call of the key that has no outcome yet: at once, and again by `sweep_key_outcomes` for
  the calls the ledger writes later.
- `outcomes_since` is how learners follow new outcomes: by id, with the call's features when the
  call was an `auto` decision."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, and_, case, delete, exists, func, insert, literal, select, update
from sqlalchemy.exc import SQLAlchemyError

from architect.store.engine import dialect_insert, store_error
from architect.store.ledger import LedgerRepo
from architect.store.request_ids import is_reuse, same_request
from architect.store.schema import calls
from architect.store.schema_routing import call_outcomes, key_outcomes, project_settings, route_features
from architect.store.sqlite_memory import Serialised, SQLiteMemory

__all__ = [
    "KEY_SWEEP_S",
    "OUTCOME_SOURCES",
    "RoutingRepo",
    "SQLRoutingRepo",
    "SQLiteMemoryRoutingRepo",
]

OUTCOME_SOURCES = ("feedback", "task", "escalation")
KEY_SWEEP_S = 600.0  # key outcomes younger than this are applied again to calls written since
_SETTINGS = ("quality_target", "cost_weight", "privacy")
_OUTCOME_COLUMNS = (
    "id",
    "request_id",
    "ts",
    "key_id",
    "project",
    "model_group",
    "task_type",
    "outcome",
    "source",
)
_FAR = 1e13  # a time after every call
Projects = str | Sequence[str] | None  # one project, any of several, or every project


class RoutingRepo(Protocol):
    # -- project settings
    def get_settings(self, project: str) -> dict[str, Any] | None:
        """A project's route settings (`project`, `quality_target`, `cost_weight`, `privacy`,
        `updated_at`, `updated_by`), None when it has none."""

    def list_settings(self) -> list[dict[str, Any]]: ...
    def put_settings(
        self, project: str, settings: Mapping[str, Any], *, actor: str, now: float | None = None
    ) -> dict[str, Any]:
        """Set a project's settings (the fields not given are cleared); returns the row."""

    def delete_settings(self, project: str) -> bool: ...

    # -- outcomes
    def record_feedback(
        self,
        request_id: str,
        key_id: str | None,
        outcome: float,
        comment: str | None = None,
        *,
        now: float | None = None,
    ) -> dict[str, Any] | None:
        """The outcome of one call, replacing any it had; None when no call with this request id was
        made with `key_id` (None: by any key). A request id the client reused names the newest of its
        calls. Returns the outcome row (its `request_id`: the id the call is recorded under)."""

    def set_key_outcome(
        self, key_id: str, outcome: float, source: str, *, replace: bool = True, now: float | None = None
    ) -> int:
        """A task attempt's outcome, by its key; applied to the key's calls without an outcome (with
        `replace`, also to those whose outcome came from an earlier key outcome). Without `replace`
        a key that already has an outcome keeps it. Returns the number of calls it was applied to."""

    def key_outcome(self, key_id: str) -> dict[str, Any] | None: ...
    def sweep_key_outcomes(self, *, window_s: float = KEY_SWEEP_S, now: float | None = None) -> int:
        """Apply the key outcomes younger than `window_s` to their keys' calls written since."""

    def outcomes_since(
        self, after_id: int, limit: int = 1000, ids: Sequence[int] = ()
    ) -> list[dict[str, Any]]:
        """Outcomes with id > after_id (and those whose id is in `ids`), by id, each with the
        `features` of its call (bytes, or None)."""

    def last_outcomes(self, n: int) -> list[dict[str, Any]]:
        """The newest `n` outcomes, oldest first, with their features (a learner's replay)."""

    def outcome_for(self, request_id: str) -> dict[str, Any] | None: ...
    def quality(self, *, project: Projects = None, by_project: bool = False) -> list[dict[str, Any]]:
        """Outcome counts: `model_group`, `task_type` (and `project` with `by_project`), `n`, `sum`;
        only the outcomes of `project` (a name, or any of a list of names) when given."""

    # -- features of auto decisions
    def put_features(self, rows: Sequence[tuple[str, float, bytes]]) -> None:
        """(request_id, ts, packed features) rows; a request id already stored is left as it is."""

    def prune_features(self, before: float) -> int: ...

    # -- what auto routes did (from the ledger)
    def auto_calls(
        self, since: float, *, routed_by: str | None = None, project: Projects = None
    ) -> list[dict[str, Any]]:
        """Calls an auto route decided since `since`, per (`routed_by`, `model_group`): `calls`,
        `explored`, `cost_usd`, `explored_cost_usd`, `baseline_cost_usd` (of the calls with a baseline)
        and `baselined_cost_usd` (their cost)."""

    def auto_outcomes(
        self, since: float, *, routed_by: str | None = None, project: Projects = None, limit: int = 50_000
    ) -> list[dict[str, Any]]:
        """The newest (at most `limit`) auto-routed calls since `since` that have an outcome:
        `routed_by`, `model_group`, `route_scores` (JSON text), `outcome`."""


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _answered() -> Any:
    """The calls an outcome judges: answered, not embeddings."""
    return and_(calls.c.status == "ok", calls.c.endpoint != "embeddings")


_NO_OUTCOME = ~exists().where(call_outcomes.c.request_id == calls.c.request_id)


class SQLRoutingRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = dialect_insert(engine)

    # ------------------------------------------------------------------ project settings
    def get_settings(self, project: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(project_settings).where(project_settings.c.project == project)).first()
        return dict(row._mapping) if row else None

    def list_settings(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(project_settings).order_by(project_settings.c.project))
            return [dict(r._mapping) for r in rows]

    def put_settings(
        self, project: str, settings: Mapping[str, Any], *, actor: str, now: float | None = None
    ) -> dict[str, Any]:
        vals = {k: settings.get(k) for k in _SETTINGS}
        vals.update(updated_at=_now(now), updated_by=actor)
        try:
            with self._engine.begin() as conn:
                n = conn.execute(
                    update(project_settings).where(project_settings.c.project == project).values(**vals)
                ).rowcount
                if not n:
                    conn.execute(insert(project_settings).values(project=project, **vals))
        except SQLAlchemyError as exc:
            raise store_error("writing project settings", exc) from exc
        return {"project": project, **vals}

    def delete_settings(self, project: str) -> bool:
        with self._engine.begin() as conn:
            n = conn.execute(delete(project_settings).where(project_settings.c.project == project)).rowcount
        return bool(n)

    # ------------------------------------------------------------------ reading calls (the memory double overrides)
    def _call(self, conn: Connection, request_id: str, key_id: str | None) -> dict[str, Any] | None:
        """The newest call its client sent as `request_id` (a reused id names several), made with
        `key_id` (None: any key)."""
        q = select(
            calls.c.request_id, calls.c.key_id, calls.c.project, calls.c.model_group, calls.c.task_type
        ).where(same_request(calls.c.request_id, request_id))
        if key_id is not None:
            q = q.where(calls.c.key_id == key_id)
        row = conn.execute(q.order_by(calls.c.ts.desc(), calls.c.id.desc()).limit(1)).first()
        return dict(row._mapping) if row else None

    def _apply_keys(self, conn: Connection, key_ids: Sequence[str] | None, since: float, now: float) -> int:
        """Write each key's outcome (keys `key_ids`, or those set at or after `since`) to its answered
        calls that have none."""
        k = key_outcomes
        src = (
            select(
                calls.c.request_id, literal(now).label("ts"), calls.c.key_id, calls.c.project,
                calls.c.model_group, calls.c.task_type, k.c.outcome, k.c.source,
            )
            .select_from(calls.join(k, k.c.key_id == calls.c.key_id))
            .where(_answered(), _NO_OUTCOME)
        )  # fmt: skip
        src = src.where(k.c.key_id.in_(list(key_ids))) if key_ids is not None else src.where(k.c.ts >= since)
        cols = ["request_id", "ts", "key_id", "project", "model_group", "task_type", "outcome", "source"]
        # a call another process judged meanwhile keeps its outcome (no unique-key error)
        stmt = (
            self._insert(call_outcomes)
            .from_select(cols, src)
            .on_conflict_do_nothing()
            .returning(call_outcomes.c.id)
        )
        return len(conn.execute(stmt).all())

    # ------------------------------------------------------------------ outcomes
    def record_feedback(
        self,
        request_id: str,
        key_id: str | None,
        outcome: float,
        comment: str | None = None,
        *,
        now: float | None = None,
    ) -> dict[str, Any] | None:
        try:
            with self._engine.begin() as conn:
                call = self._call(conn, request_id, key_id)
                if call is None:
                    return None
                request_id = call["request_id"]  # the id it is recorded under
                row = {
                    "request_id": request_id, "ts": _now(now), "key_id": call["key_id"],
                    "project": call["project"], "model_group": call["model_group"],
                    "task_type": call["task_type"], "outcome": float(outcome), "source": "feedback",
                    "comment": comment,
                }  # fmt: skip
                conn.execute(delete(call_outcomes).where(call_outcomes.c.request_id == request_id))
                conn.execute(insert(call_outcomes).values(**row))
        except SQLAlchemyError as exc:
            raise store_error("recording feedback", exc) from exc
        return row

    def set_key_outcome(
        self, key_id: str, outcome: float, source: str, *, replace: bool = True, now: float | None = None
    ) -> int:
        t = _now(now)
        row = {"key_id": key_id, "ts": t, "outcome": float(outcome), "source": source}
        try:
            with self._engine.begin() as conn:
                if replace:
                    conn.execute(delete(key_outcomes).where(key_outcomes.c.key_id == key_id))
                    conn.execute(
                        delete(call_outcomes).where(
                            call_outcomes.c.key_id == key_id,
                            call_outcomes.c.source.in_(("task", "escalation")),
                        )
                    )
                    conn.execute(insert(key_outcomes).values(**row))
                else:
                    conn.execute(self._insert(key_outcomes).values(**row).on_conflict_do_nothing())
                return self._apply_keys(conn, [key_id], 0.0, t)
        except SQLAlchemyError as exc:
            raise store_error("recording a key outcome", exc) from exc

    def key_outcome(self, key_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(key_outcomes).where(key_outcomes.c.key_id == key_id)).first()
        return dict(row._mapping) if row else None

    def sweep_key_outcomes(self, *, window_s: float = KEY_SWEEP_S, now: float | None = None) -> int:
        t = _now(now)
        try:
            with self._engine.begin() as conn:
                return self._apply_keys(conn, None, t - window_s, t)
        except SQLAlchemyError as exc:
            raise store_error("applying key outcomes", exc) from exc

    def _outcome_select(self) -> Any:
        o, f = call_outcomes, route_features
        return select(*(o.c[c] for c in _OUTCOME_COLUMNS), f.c.features).select_from(
            o.outerjoin(f, f.c.request_id == o.c.request_id)
        )

    def outcomes_since(
        self, after_id: int, limit: int = 1000, ids: Sequence[int] = ()
    ) -> list[dict[str, Any]]:
        o = call_outcomes
        with self._engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    self._outcome_select().where(o.c.id > after_id).order_by(o.c.id).limit(limit)
                )
            ]
            if ids:
                extra = conn.execute(self._outcome_select().where(o.c.id.in_(list(ids))).order_by(o.c.id))
                rows = sorted([dict(r._mapping) for r in extra] + rows, key=lambda r: r["id"])
        return rows

    def last_outcomes(self, n: int) -> list[dict[str, Any]]:
        o = call_outcomes
        with self._engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(self._outcome_select().order_by(o.c.id.desc()).limit(n))
            ]
        return rows[::-1]

    def outcome_for(self, request_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(call_outcomes).where(call_outcomes.c.request_id == request_id)).first()
        return dict(row._mapping) if row else None

    def quality(self, *, project: Projects = None, by_project: bool = False) -> list[dict[str, Any]]:
        o = call_outcomes
        keys = [o.c.model_group, o.c.task_type] + ([o.c.project] if by_project else [])
        q = select(*keys, func.count().label("n"), func.sum(o.c.outcome).label("sum")).group_by(*keys)
        if project is not None:
            q = q.where(_in(o.c.project, project))
        with self._engine.connect() as conn:
            return [
                {**r._mapping, "n": int(r.n), "sum": float(r.sum or 0.0)}
                for r in conn.execute(q.order_by(*keys))
            ]

    # ------------------------------------------------------------------ features
    def put_features(self, rows: Sequence[tuple[str, float, bytes]]) -> None:
        if not rows:
            return
        values = [{"request_id": r, "ts": ts, "features": b} for r, ts, b in rows]
        try:
            with self._engine.begin() as conn:
                conn.execute(self._insert(route_features).on_conflict_do_nothing(), values)
        except SQLAlchemyError as exc:
            raise store_error("writing route features", exc) from exc

    def prune_features(self, before: float) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(delete(route_features).where(route_features.c.ts < before)).rowcount or 0)

    # ------------------------------------------------------------------ auto routes' calls
    def auto_calls(
        self, since: float, *, routed_by: str | None = None, project: Projects = None
    ) -> list[dict[str, Any]]:
        c = calls
        explored = case((c.c.explored, 1), else_=0)
        has_base = c.c.baseline_cost_usd.is_not(None)
        q = (
            select(
                c.c.routed_by, c.c.model_group, func.count().label("calls"),
                func.coalesce(func.sum(explored), 0).label("explored"),
                func.coalesce(func.sum(c.c.cost_usd), 0.0).label("cost_usd"),
                func.coalesce(func.sum(case((c.c.explored, c.c.cost_usd), else_=0.0)), 0.0).label("explored_cost_usd"),
                func.coalesce(func.sum(c.c.baseline_cost_usd), 0.0).label("baseline_cost_usd"),
                func.coalesce(func.sum(case((has_base, c.c.cost_usd), else_=0.0)), 0.0).label("baselined_cost_usd"),
            )
            .where(c.c.routed_by.is_not(None), c.c.ts >= since)
            .group_by(c.c.routed_by, c.c.model_group)
            .order_by(c.c.routed_by, c.c.model_group)
        )  # fmt: skip
        q = _filtered(q, routed_by, project)
        with self._engine.connect() as conn:
            return [_numbers(dict(r._mapping)) for r in conn.execute(q)]

    def auto_outcomes(
        self, since: float, *, routed_by: str | None = None, project: Projects = None, limit: int = 50_000
    ) -> list[dict[str, Any]]:
        c, o = calls, call_outcomes
        q = (
            select(c.c.routed_by, c.c.model_group, c.c.route_scores, o.c.outcome)
            .select_from(c.join(o, o.c.request_id == c.c.request_id))
            .where(c.c.routed_by.is_not(None), c.c.ts >= since)
            .order_by(c.c.ts.desc())
            .limit(limit)
        )
        q = _filtered(q, routed_by, project)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


def _filtered(q: Any, routed_by: str | None, project: Projects) -> Any:
    if routed_by is not None:
        q = q.where(calls.c.routed_by == routed_by)
    if project is not None:
        q = q.where(_in(calls.c.project, project))
    return q


def _in(col: Any, project: str | Sequence[str]) -> Any:
    return col == project if isinstance(project, str) else col.in_(list(project))


def _has(project: Projects, value: str | None) -> bool:
    if project is None:
        return True
    return value == project if isinstance(project, str) else value in project


def _numbers(r: dict[str, Any]) -> dict[str, Any]:
    for k in ("calls", "explored"):
        r[k] = int(r[k])
    for k in ("cost_usd", "explored_cost_usd", "baseline_cost_usd", "baselined_cost_usd"):
        r[k] = float(r[k])
    return r


_CALL_FIELDS = [
    "request_id", "ts", "endpoint", "status", "key_id", "project", "model_group", "task_type", "routed_by",
    "route_scores", "explored", "cost_usd", "baseline_cost_usd",
]  # fmt: skip


class SQLiteMemoryRoutingRepo(Serialised, SQLRoutingRepo):
    """The double: the SQL implementation on the memory store's in-memory SQLite database for the
    routing tables, with the calls read from the memory ledger (`ledger`)."""

    def __init__(self, db: SQLiteMemory, ledger: LedgerRepo) -> None:
        super().__init__(db.engine)
        self._lock = db.lock
        self._ledger = ledger

    def _calls(self, where: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self._ledger.calls_between(0.0, _FAR, columns=_CALL_FIELDS, where=where)

    def _call(self, conn: Connection, request_id: str, key_id: str | None) -> dict[str, Any] | None:
        found = [
            c
            for c in self._calls(None if key_id is None else {"key_id": key_id})
            if is_reuse(c["request_id"], request_id)
        ]
        return max(found, key=lambda c: c["ts"]) if found else None

    def _apply_keys(self, conn: Connection, key_ids: Sequence[str] | None, since: float, now: float) -> int:
        k = key_outcomes
        q = select(k) if key_ids is None else select(k).where(k.c.key_id.in_(list(key_ids)))
        if key_ids is None:
            q = q.where(k.c.ts >= since)
        outcomes = {r.key_id: r for r in conn.execute(q)}
        have = set(conn.execute(select(call_outcomes.c.request_id)).scalars())
        rows = [
            {"request_id": c["request_id"], "ts": now, "key_id": c["key_id"], "project": c["project"],
             "model_group": c["model_group"], "task_type": c["task_type"],
             "outcome": outcomes[c["key_id"]].outcome, "source": outcomes[c["key_id"]].source}
            for key in outcomes
            for c in self._calls({"key_id": key})
            if c["status"] == "ok" and c["endpoint"] != "embeddings" and c["request_id"] not in have
        ]  # fmt: skip
        if rows:
            conn.execute(insert(call_outcomes), rows)
        return len(rows)

    def _auto(self, since: float, routed_by: str | None, project: Projects) -> list[dict[str, Any]]:
        return [
            c
            for c in self._calls()
            if c["routed_by"] is not None
            and c["ts"] >= since
            and (routed_by is None or c["routed_by"] == routed_by)
            and _has(project, c["project"])
        ]

    def auto_calls(
        self, since: float, *, routed_by: str | None = None, project: Projects = None
    ) -> list[dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for c in self._auto(since, routed_by, project):
            r = out.setdefault(
                (c["routed_by"], c["model_group"]),
                {"routed_by": c["routed_by"], "model_group": c["model_group"], "calls": 0, "explored": 0,
                 "cost_usd": 0.0, "explored_cost_usd": 0.0, "baseline_cost_usd": 0.0, "baselined_cost_usd": 0.0},
            )  # fmt: skip
            cost = float(c["cost_usd"] or 0.0)
            r["calls"] += 1
            r["cost_usd"] += cost
            if c["explored"]:
                r["explored"] += 1
                r["explored_cost_usd"] += cost
            if c["baseline_cost_usd"] is not None:
                r["baseline_cost_usd"] += float(c["baseline_cost_usd"])
                r["baselined_cost_usd"] += cost
        return [out[k] for k in sorted(out, key=lambda k: (k[0], k[1] or ""))]

    def auto_outcomes(
        self, since: float, *, routed_by: str | None = None, project: Projects = None, limit: int = 50_000
    ) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            outcome = {r.request_id: r.outcome for r in conn.execute(select(call_outcomes))}
        rows = sorted(
            (c for c in self._auto(since, routed_by, project) if c["request_id"] in outcome),
            key=lambda c: -c["ts"],
        )[:limit]
        return [
            {"routed_by": c["routed_by"], "model_group": c["model_group"], "route_scores": c["route_scores"],
             "outcome": outcome[c["request_id"]]}
            for c in rows
        ]  # fmt: skip
