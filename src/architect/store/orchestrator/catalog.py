"""Features, phases, tasks, plan import, feature items, events and ledger costs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, case, delete, func, insert, or_, select, update

from architect.errors import NotFoundInStore, StateConflict
from architect.store.orchestrator.base import (
    FINAL,
    JSON_TASK,
    RepoBase,
    Row,
    dumps,
    feature_row,
    loads,
    task_row,
)
from architect.store.schema import calls
from architect.store.schema_orchestrator import (
    feature_items,
    features,
    merge_locks,
    phases,
    task_attempts,
    task_deps,
    task_events,
    tasks,
)
from architect.trust import (
    AGENT_FEATURE_FIELDS,
    HOLD_REASONS,
    PROMPT_EXECUTORS,
    PROMPT_FEATURE_FIELDS,
    UNTRUSTED,
    Writer,
    changed_feature_exec_fields,
    changed_prompt_fields,
    task_patch_fields,
)

__all__ = ["CatalogMixin"]

_TASK_FIELDS = (
    "phase", "title", "description", "deps", "priority", "estimate_h", "role",
    "executor", "params", "validator", "max_attempts", "max_crashes", "agent", "budget_usd", "route",
)  # fmt: skip
_FEATURE_FIELDS = ("project", "title", "spec", *AGENT_FEATURE_FIELDS)
_CANCELLED_IN_PLAN = "cancelled in the plan"
# Changing where a feature's agents work forgets the base SHA its first run recorded.
_REBASE_FIELDS = ("repo", "base")
_ITEM_FIELDS = ("body", "severity", "status", "task_key", "date", "rationale", "impact")


class CatalogMixin(RepoBase):
    # ---------------------------------------------------------------- plan import
    def import_feature(self, plan: Mapping[str, Any], now: float, writer: Writer) -> Row:
        """Create or update a feature from a validated plan, by slug and task key; idempotent.

        `writer` is recorded as the writer of the executable fields of every task in the plan (the
        plan sets them all); a trusted writer also releases the plan's tasks a worker had blocked as
        untrusted. An untrusted writer that changes the feature's prompt fields makes its other
        prompt tasks untrusted too, as does one that changes its executable fields (`trust`). A
        changed `repo` or `base` forgets the recorded base SHA."""
        with self._write() as conn:
            return self._apply(conn, plan, now, writer)

    def _apply(self, conn: Connection, plan: Mapping[str, Any], now: float, writer: Writer) -> Row:
        head = {k: plan.get(k) for k in _FEATURE_FIELDS}
        head["acceptance"] = dumps(list(plan.get("acceptance") or []))
        found = conn.execute(
            select(features.c.id, features.c.project).where(features.c.slug == plan["slug"])
        ).first()
        if found is not None and found.project != plan["project"]:
            # a slug names one feature across all projects: a plan never moves a feature to another
            # project (nor learns which project holds it)
            raise StateConflict(
                f"feature slug {plan['slug']!r} is already used by a feature outside project "
                f"{plan['project']!r}; give the plan another slug"
            )
        existing = found.id if found is not None else None
        old_feature = self._feature_row(conn, int(existing)) if existing is not None else None
        distrust = old_feature is not None and bool(
            changed_prompt_fields(old_feature, plan) or changed_feature_exec_fields(old_feature, plan)
        )
        if old_feature is not None and any(old_feature.get(k) != head.get(k) for k in _REBASE_FIELDS):
            head["base_sha"] = None
        trust = {"exec_set_by": writer.actor, "exec_trusted": writer.trusted}
        if existing is None:
            fid = int(
                conn.execute(
                    insert(features)
                    .values(**head, slug=plan["slug"], status="active", created_at=now, updated_at=now)
                    .returning(features.c.id)
                ).scalar_one()
            )
        else:
            fid = int(existing)
            conn.execute(update(features).where(features.c.id == fid).values(**head, updated_at=now))
        have_phases = {
            r.number: r.title for r in conn.execute(select(phases).where(phases.c.feature_id == fid))
        }
        for ph in plan.get("phases", []):
            if ph["number"] not in have_phases:
                conn.execute(insert(phases).values(feature_id=fid, number=ph["number"], title=ph["title"]))
            elif have_phases[ph["number"]] != ph["title"]:
                conn.execute(
                    update(phases)
                    .where(phases.c.feature_id == fid, phases.c.number == ph["number"])
                    .values(title=ph["title"])
                )
        have = {
            t["key"]: t
            for t in (task_row(r) for r in conn.execute(select(tasks).where(tasks.c.feature_id == fid)))
        }
        counts = {"created": 0, "updated": 0, "unchanged": 0, "kept_finished": 0, "removed": 0}
        evs: list[Row] = []
        for spec in plan.get("tasks", []):
            fields = {k: spec.get(k) for k in _TASK_FIELDS}
            old = have.get(spec["key"])
            if old is None:
                vals = {k: (dumps(v) if k in JSON_TASK else v) for k, v in fields.items()}
                done, cancelled = bool(spec.get("done")), bool(spec.get("cancelled"))
                row = conn.execute(
                    insert(tasks)
                    .values(
                        **vals,
                        **trust,
                        feature_id=fid,
                        key=spec["key"],
                        pending_deps=len(spec.get("deps") or []),
                        status="succeeded" if done else "cancelled" if cancelled else "pending",
                        reason=_CANCELLED_IN_PLAN if cancelled else None,
                        attempt=0,
                        failures=0,
                        crashes=0,
                        run_after=now,
                        created_at=now,
                        updated_at=now,
                        finished_at=now if done or cancelled else None,
                    )
                    .returning(tasks.c.id, tasks.c.key, tasks.c.feature_id, tasks.c.attempt)
                ).one()
                counts["created"] += 1
                if done:
                    evs.append(self._ev(dict(row._mapping), "succeeded", now, imported=True))
                elif cancelled:
                    evs.append(self._ev(dict(row._mapping), "cancelled", now, reason=_CANCELLED_IN_PLAN))
                continue
            changed = {k: v for k, v in fields.items() if old.get(k) != v}
            if old["status"] in FINAL:
                counts["kept_finished"] += 1
            if spec.get("done") and old["status"] not in (*FINAL, "running"):
                changed.update(status="succeeded", finished_at=now, reason=None)
                evs.append(self._ev(old, "succeeded", now, imported=True))
            elif spec.get("cancelled") and old["status"] not in (*FINAL, "running"):
                changed.update(status="cancelled", finished_at=now, reason=_CANCELLED_IN_PLAN)
                evs.append(self._ev(old, "cancelled", now, reason=_CANCELLED_IN_PLAN))
            if changed:
                vals = {k: (dumps(v) if k in JSON_TASK else v) for k, v in changed.items()}
                conn.execute(update(tasks).where(tasks.c.id == old["id"]).values(**vals, updated_at=now))
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
            self._set_trust(conn, old, writer, now, release=not spec.get("done"))
        keys = {s["key"] for s in plan.get("tasks", [])}
        if distrust and not writer.trusted:
            self._distrust_prompt_tasks(conn, fid, writer, exclude=keys)
        for key, old in have.items():
            if key not in keys and old["status"] not in (*FINAL, "running"):
                reason = "removed from the plan"
                conn.execute(
                    update(tasks)
                    .where(tasks.c.id == old["id"])
                    .values(status="cancelled", reason=reason, finished_at=now)
                )
                evs.append(self._ev(old, "cancelled", now, reason=reason))
                counts["removed"] += 1
        ids = {
            r.key: int(r.id)
            for r in conn.execute(select(tasks.c.id, tasks.c.key).where(tasks.c.feature_id == fid))
        }
        conn.execute(delete(task_deps).where(task_deps.c.task_id.in_(list(ids.values()))))
        edges = [
            {"task_id": ids[s["key"]], "dep_id": ids[d]}
            for s in plan.get("tasks", [])
            for d in s.get("deps") or []
        ]
        if edges:
            conn.execute(insert(task_deps), edges)
        self._upsert_items(conn, fid, plan.get("items", []), now)
        self._events(conn, evs)
        self._recompute(conn, fid, now)
        conn.execute(insert(task_events).values(ts=now, feature_id=fid, kind="imported", data=dumps(counts)))
        return {"feature": self._feature_row(conn, fid), **counts}

    @staticmethod
    def _set_trust(conn: Connection, old: Row, writer: Writer, now: float, *, release: bool) -> None:
        """Record `writer` as the writer of all of a task's executable fields (a plan sets them all);
        `release`: a trusted writer puts the task back if a worker blocked it as untrusted."""
        vals: dict[str, Any] = {}
        if (old.get("exec_set_by"), bool(old.get("exec_trusted"))) != (writer.actor, writer.trusted):
            vals.update(exec_set_by=writer.actor, exec_trusted=writer.trusted)
        if release and writer.trusted and old["status"] == "blocked" and old.get("reason") == UNTRUSTED:
            vals.update(status="pending", reason=None)  # the readiness pass below decides the rest
        if vals:
            conn.execute(update(tasks).where(tasks.c.id == old["id"]).values(**vals, updated_at=now))

    @staticmethod
    def _distrust_prompt_tasks(
        conn: Connection, fid: int, writer: Writer, exclude: Sequence[str] | set[str] = ()
    ) -> None:
        """A feature's prompt fields were written: its prompt tasks keep their trust only if `writer`
        was allowed to write them (a trusted writer vouches for what it wrote, not for the rest)."""
        vals: dict[str, Any] = {"exec_set_by": writer.actor}
        if not writer.trusted:
            vals["exec_trusted"] = False
        q = update(tasks).where(tasks.c.feature_id == fid, tasks.c.executor.in_(sorted(PROMPT_EXECUTORS)))
        if exclude:
            q = q.where(tasks.c.key.not_in(list(exclude)))
        conn.execute(q.values(**vals))

    @staticmethod
    def _upsert_items(conn: Connection, fid: int, items: list[Mapping[str, Any]], now: float) -> None:
        have = {
            (r.kind, r.title): int(r.id)
            for r in conn.execute(select(feature_items).where(feature_items.c.feature_id == fid))
        }
        for it in items:
            vals = {k: it.get(k) for k in _ITEM_FIELDS if it.get(k) is not None}
            vals.setdefault("status", "open")
            iid = have.get((it["kind"], it["title"]))
            if iid is None:
                conn.execute(
                    insert(feature_items).values(
                        **vals,
                        feature_id=fid,
                        kind=it["kind"],
                        title=it["title"],
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    update(feature_items).where(feature_items.c.id == iid).values(**vals, updated_at=now)
                )

    # ---------------------------------------------------------------- features
    def get_feature(self, ref: str | int) -> Row:
        with self._read() as conn:
            return self._feature_row(conn, ref)

    def list_features(self, projects: frozenset[str] | None = None) -> list[Row]:
        q = select(features).order_by(features.c.id)
        if projects is not None:
            q = q.where(features.c.project.in_(sorted(projects)))
        with self._read() as conn:
            return [feature_row(r) for r in conn.execute(q)]

    def update_feature(self, feature_id: int, fields: Mapping[str, Any], now: float, writer: Writer) -> Row:
        """Change a feature; writing its prompt or executable fields records `writer` on its prompt
        tasks; a changed `repo` or `base` forgets the recorded base SHA."""
        vals = dict(fields)
        if "acceptance" in vals:
            vals["acceptance"] = dumps(vals["acceptance"])
        with self._write() as conn:
            old = self._feature_row(conn, feature_id)
            if any(k in vals and vals[k] != old.get(k) for k in _REBASE_FIELDS):
                vals["base_sha"] = None
            conn.execute(update(features).where(features.c.id == feature_id).values(**vals, updated_at=now))
            if any(k in fields for k in (*PROMPT_FEATURE_FIELDS, *AGENT_FEATURE_FIELDS)):
                self._distrust_prompt_tasks(conn, feature_id, writer)
            return self._feature_row(conn, feature_id)

    def set_feature_status(self, feature_id: int, status: str, now: float, reason: str) -> int:
        """active (resume) | paused | cancelled; cancelling cancels every unfinished task."""
        with self._write() as conn:
            self._feature_row(conn, feature_id)
            conn.execute(
                update(features).where(features.c.id == feature_id).values(status=status, updated_at=now)
            )
            conn.execute(
                insert(task_events).values(
                    ts=now, feature_id=feature_id, kind=f"feature_{status}", data=dumps({"reason": reason})
                )
            )
            if status != "cancelled":
                return 0
            res = conn.execute(
                update(tasks)
                .where(tasks.c.feature_id == feature_id, tasks.c.status.not_in(FINAL))
                .values(
                    status="cancelled", reason=reason, finished_at=now, lease_expires=None, updated_at=now
                )
                .returning(tasks.c.id, tasks.c.key, tasks.c.feature_id, tasks.c.attempt)
            ).all()
            self._events(conn, [self._ev(dict(r._mapping), "cancelled", now, reason=reason) for r in res])
            return len(res)

    def delete_feature(self, feature_id: int) -> None:
        with self._write() as conn:
            self._feature_row(conn, feature_id)
            ids = select(tasks.c.id).where(tasks.c.feature_id == feature_id)
            conn.execute(delete(task_deps).where(task_deps.c.task_id.in_(ids)))
            for t in (tasks, phases, task_events, feature_items, task_attempts, merge_locks):
                conn.execute(delete(t).where(t.c.feature_id == feature_id))
            conn.execute(delete(features).where(features.c.id == feature_id))

    def phases(self, feature_id: int) -> list[Row]:
        q = select(phases).where(phases.c.feature_id == feature_id).order_by(phases.c.number)
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # ---------------------------------------------------------------- tasks
    def tasks(self, feature_id: int, status: str | None = None) -> list[Row]:
        q = select(tasks).where(tasks.c.feature_id == feature_id).order_by(tasks.c.phase, tasks.c.id)
        if status is not None:
            q = q.where(tasks.c.status == status)
        with self._read() as conn:
            return [task_row(r) for r in conn.execute(q)]

    def get_task(self, feature_id: int, key: str) -> Row:
        with self._read() as conn:
            return self._task_row(conn, feature_id, key)

    def update_task(
        self, feature_id: int, key: str, fields: Mapping[str, Any], now: float, writer: Writer
    ) -> Row:
        """Change a task; writing an executable field records `writer`, and the task stays trusted
        only if it was and `writer` may write such fields."""
        vals = {k: (dumps(v) if k in JSON_TASK else v) for k, v in fields.items()}
        with self._write() as conn:
            old = self._task_row(conn, feature_id, key)
            if task_patch_fields(old["executor"], fields, fields.get("params")):
                vals.update(
                    exec_set_by=writer.actor, exec_trusted=bool(old["exec_trusted"]) and writer.trusted
                )
            q = update(tasks).where(tasks.c.feature_id == feature_id, tasks.c.key == key)
            conn.execute(q.values(**vals, updated_at=now))
            return self._task_row(conn, feature_id, key)

    def cancel_task(self, feature_id: int, key: str, now: float, reason: str) -> Row:
        with self._write() as conn:
            t = self._task_row(conn, feature_id, key)
            if t["status"] in FINAL:
                raise StateConflict(f"task {key} is already {t['status']}")
            conn.execute(
                update(tasks)
                .where(tasks.c.id == t["id"])
                .values(
                    status="cancelled", reason=reason, finished_at=now, lease_expires=None, updated_at=now
                )
            )
            t.update(status="cancelled", reason=reason)
            self._events(conn, [self._ev(t, "cancelled", now, reason=reason)])
            self._block_dependents(conn, [t], now)
            return self._task_row(conn, feature_id, key)

    def retry_task(self, feature_id: int, key: str, now: float) -> Row:
        with self._write() as conn:
            t = self._task_row(conn, feature_id, key)
            if t["status"] not in ("failed", "cancelled", "blocked"):
                raise StateConflict(
                    f"task {key} is {t['status']}; only failed, cancelled or blocked tasks can be retried"
                )
            conn.execute(
                update(tasks)
                .where(tasks.c.id == t["id"])
                .values(status="pending", reason=None, failures=0, crashes=0, finished_at=None, run_after=now)
            )
            self._events(conn, [self._ev(t, "retry_requested", now)])
            conn.execute(
                update(tasks)
                .where(
                    tasks.c.feature_id == feature_id,
                    tasks.c.status == "blocked",
                    or_(tasks.c.reason.is_(None), tasks.c.reason.not_in(sorted(HOLD_REASONS))),
                )
                .values(status="pending", reason=None)
            )
            self._recompute(conn, feature_id, now)
            return self._task_row(conn, feature_id, key)

    def approve(self, feature_id: int, keys: Sequence[str] | None, now: float, actor: str) -> list[Row]:
        """Mark tasks trusted as set by `actor` (the given keys, default every untrusted task of the
        feature); those blocked as untrusted go back to ready, or pending while dependencies run."""
        with self._write() as conn:
            self._feature_row(conn, feature_id)
            rows = [task_row(r) for r in conn.execute(select(tasks).where(tasks.c.feature_id == feature_id))]
            by_key = {t["key"]: t for t in rows}
            if keys:
                missing = [k for k in keys if k not in by_key]
                if missing:
                    raise NotFoundInStore(
                        f"task {missing[0]!r} not found in feature {self._feature_name(conn, feature_id)}"
                    )
                targets = [by_key[k] for k in dict.fromkeys(keys)]
            else:
                targets = [t for t in rows if not t["exec_trusted"]]
            ids = [t["id"] for t in targets]
            if not ids:
                return []
            conn.execute(
                update(tasks)
                .where(tasks.c.id.in_(ids))
                .values(exec_trusted=True, exec_set_by=actor, updated_at=now)
            )
            conn.execute(
                update(tasks)
                .where(tasks.c.id.in_(ids), tasks.c.status == "blocked", tasks.c.reason == UNTRUSTED)
                .values(status="pending", reason=None)
            )
            self._events(conn, [self._ev(t, "approved", now, by=actor) for t in targets])
            self._recompute(conn, feature_id, now)
            got = conn.execute(select(tasks).where(tasks.c.id.in_(ids)).order_by(tasks.c.phase, tasks.c.id))
            return [task_row(r) for r in got]

    def status_counts(self, feature_id: int) -> list[Row]:
        q = (
            select(tasks.c.phase, tasks.c.status, func.count().label("n"))
            .where(tasks.c.feature_id == feature_id)
            .group_by(tasks.c.phase, tasks.c.status)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # ---------------------------------------------------------------- events, items, costs
    def add_event(
        self, feature_id: int, kind: str, now: float, data: Mapping[str, Any] | None = None
    ) -> None:
        with self._write() as conn:
            conn.execute(
                insert(task_events).values(ts=now, feature_id=feature_id, kind=kind, data=dumps(data))
            )

    def events(self, feature_id: int | None = None, after_id: int = 0, limit: int = 10_000) -> list[Row]:
        q = select(task_events).where(task_events.c.id > after_id).order_by(task_events.c.id).limit(limit)
        if feature_id is not None:
            q = q.where(task_events.c.feature_id == feature_id)
        out = []
        with self._read() as conn:
            for r in conn.execute(q):
                d = dict(r._mapping)
                d["data"] = loads(d["data"]) or {}
                out.append(d)
        return out

    def items(self, feature_id: int, kind: str | None = None) -> list[Row]:
        q = select(feature_items).where(feature_items.c.feature_id == feature_id).order_by(feature_items.c.id)
        if kind is not None:
            q = q.where(feature_items.c.kind == kind)
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def add_item(self, feature_id: int, fields: Mapping[str, Any], now: float) -> Row:
        with self._write() as conn:
            self._feature_row(conn, feature_id)
            vals = {
                "status": "open",
                **fields,
                "feature_id": feature_id,
                "created_at": now,
                "updated_at": now,
            }
            return dict(
                conn.execute(insert(feature_items).values(**vals).returning(*feature_items.c)).one()._mapping
            )

    def update_item(self, feature_id: int, item_id: int, fields: Mapping[str, Any], now: float) -> Row:
        with self._write() as conn:
            res = conn.execute(
                update(feature_items)
                .where(feature_items.c.id == item_id, feature_items.c.feature_id == feature_id)
                .values(**fields, updated_at=now)
                .returning(*feature_items.c)
            ).first()
            if res is None:
                raise NotFoundInStore(
                    f"item {item_id} not found in feature {self._feature_name(conn, feature_id)}"
                )
            return dict(res._mapping)

    def delete_item(self, feature_id: int, item_id: int) -> None:
        with self._write() as conn:
            q = delete(feature_items).where(
                feature_items.c.id == item_id, feature_items.c.feature_id == feature_id
            )
            if not conn.execute(q).rowcount:
                raise NotFoundInStore(
                    f"item {item_id} not found in feature {self._feature_name(conn, feature_id)}"
                )

    def call_costs(self, project: str, feature: str) -> list[Row]:
        """Model calls, tokens and cost per task, from the ledger's `calls` tags; `unpriced` counts the
        calls whose price is unknown (the cost leaves them out)."""
        q = (
            select(
                calls.c.task,
                func.count().label("calls"),
                func.coalesce(func.sum(calls.c.cost_usd), 0.0).label("cost_usd"),
                func.coalesce(func.sum(calls.c.prompt_tokens), 0).label("prompt_tokens"),
                func.coalesce(func.sum(calls.c.completion_tokens), 0).label("completion_tokens"),
                func.coalesce(func.sum(case((calls.c.cost_source == "unknown", 1), else_=0)), 0).label(
                    "unpriced"
                ),
            )
            .where(calls.c.project == project, calls.c.feature == feature)
            .group_by(calls.c.task)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
