"""The manager: the orchestrator's domain operations over a `TaskRepo` (procrastinate's `manager`).

Claims take a lease; heartbeats extend it; `reap` requeues tasks whose lease expired; `complete`
is fenced by the attempt number and decides retries with exponential backoff kept in the store
(`run_after`). Readiness and blocking propagate inside the store's transactions. Every state change
is also handed to `publish` (the API wires it to the event bus, topic "task"); approvals and tasks
blocked as untrusted are written to the audit log through `audit` (the access store's `add_audit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from architect.errors import NotFoundInStore, StateConflict
from architect.orchestrator.metrics import MANUAL_WORKER
from architect.orchestrator.repo_check import check_plan_repos
from architect.store.orchestrator import Claimed, ClaimOptions, Outcome, Row, TaskRepo
from architect.trust import LOCAL, NOT_ALLOWED, UNTRUSTED, Writer

__all__ = ["Audit", "Finished", "Manager"]

Publish = Callable[[dict[str, Any]], None]
# (actor, action, target, before, after): the signature of the access store's `add_audit`
Audit = Callable[[str, str, "str | None", Any, Any], None]
_BLOCK_ACTIONS = {UNTRUSTED: "task.blocked_untrusted", NOT_ALLOWED: "task.blocked_command_not_allowed"}
# (task, ok, result, validation, reason, duration_s)
Finished = tuple[Mapping[str, Any], bool, Any, Any, "str | None", "float | None"]
# Refuses plans whose repository or base is not usable (PlanError), before any of them is stored.
CheckRepos = Callable[[Sequence[Mapping[str, Any]]], None]


class Manager:
    def __init__(
        self,
        repo: TaskRepo,
        *,
        publish: Publish | None = None,
        audit: Audit | None = None,
        clock: Callable[[], float] = time.time,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 300.0,
        check_repos: CheckRepos = check_plan_repos,
    ) -> None:
        self.repo = repo
        self._check_repos = check_repos
        self._publish = publish
        self._audit = audit
        self.clock = clock
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s

    def _emit(self, kind: str, **data: Any) -> None:
        """Publish a task event; every event carries its feature's `project` (subscribers are shown
        only the projects they are granted), looked up when the caller did not give it."""
        if self._publish is None:
            return
        if "project" not in data:
            ref = data.get("feature_id") or data.get("feature")
            try:
                data["project"] = self.repo.get_feature(ref)["project"] if ref is not None else None
            except NotFoundInStore:  # the feature is gone: nobody's project, so the admin's only
                data["project"] = None
        self._publish({"kind": kind, "ts": self.clock(), **data})

    # ---------------------------------------------------------------- plans and features
    def import_plans(self, plans: Sequence[Mapping[str, Any]], writer: Writer = LOCAL) -> list[Row]:
        """Import validated plans written by `writer` (default: the local operator, who holds the
        database; the API passes the calling principal's writer). A plan whose `repo` is not a git
        repository or whose `base` does not resolve there is refused (PlanError) before any is stored."""
        self._check_repos(plans)
        out = []
        for plan in plans:
            res = self.repo.import_feature(plan, self.clock(), writer)
            self._emit(
                "imported",
                feature=res["feature"]["slug"],
                project=res["feature"]["project"],
                created=res["created"],
                updated=res["updated"],
            )
            out.append(res)
        return out

    def feature(self, ref: str | int) -> Row:
        return self.repo.get_feature(ref)

    def pause(self, ref: str | int, reason: str = "paused") -> Row:
        return self._set_status(ref, "paused", reason, allowed=("active",))

    def resume(self, ref: str | int, reason: str = "resumed") -> Row:
        return self._set_status(ref, "active", reason, allowed=("paused",))

    def cancel(self, ref: str | int, reason: str = "feature cancelled") -> Row:
        return self._set_status(ref, "cancelled", reason, allowed=("active", "paused"))

    def _set_status(self, ref: str | int, status: str, reason: str, allowed: tuple[str, ...]) -> Row:
        f = self.repo.get_feature(ref)
        if f["status"] not in allowed:
            raise StateConflict(f"feature {f['slug']} is {f['status']}; cannot set it {status}")
        n = self.repo.set_feature_status(f["id"], status, self.clock(), reason)
        self._emit(f"feature_{status}", feature=f["slug"], project=f["project"], tasks_cancelled=n)
        return self.repo.get_feature(f["id"])

    def cancel_task(self, ref: str | int, key: str, reason: str = "cancelled") -> Row:
        f = self.repo.get_feature(ref)
        t = self.repo.cancel_task(f["id"], key, self.clock(), reason)
        self._emit("cancelled", feature=f["slug"], project=f["project"], task=key)
        return t

    def retry_task(self, ref: str | int, key: str) -> Row:
        f = self.repo.get_feature(ref)
        t = self.repo.retry_task(f["id"], key, self.clock())
        self._emit("retry_requested", feature=f["slug"], project=f["project"], task=key)
        return t

    def approve(self, ref: str | int, keys: Sequence[str] | None, actor: str) -> list[Row]:
        """Trust the executable fields of a feature's tasks (the given ones, default every untrusted
        one) as set by `actor`; those a worker blocked as untrusted go back to the queue. Audited."""
        f = self.repo.get_feature(ref)
        rows = self.repo.approve(f["id"], keys, self.clock(), actor)
        approved = [t["key"] for t in rows]
        if self._audit is not None:
            self._audit(actor, "plan.approve", f["slug"], None, {"feature": f["slug"], "tasks": approved})
        self._emit("approved", feature=f["slug"], tasks=approved)
        return rows

    def block_claimed(
        self, task: Mapping[str, Any], reason: str, worker_id: str, detail: Mapping[str, Any]
    ) -> bool:
        """Block a task this worker claimed but will not run; audited with the worker as actor.
        False when the attempt had already lost its claim."""
        t = self.repo.block_claimed(
            int(task["id"]), int(task["attempt"]), reason, self.clock(), worker_id, detail
        )
        if t is None:
            return False
        if self._audit is not None:
            slug = self.repo.get_feature(int(task["feature_id"]))["slug"]
            action = _BLOCK_ACTIONS.get(reason, "task.blocked")
            after = {"feature": slug, "task": task["key"], "reason": reason, **detail}
            self._audit(f"worker:{worker_id}"[:200], action, f"{slug}/{task['key']}"[:200], None, after)
        self._emit("blocked", feature_id=task["feature_id"], task=task["key"], reason=reason)
        return True

    def finish_manual(self, ref: str | int, key: str, *, ok: bool = True, note: str | None = None) -> Row:
        """Complete a task by hand (manual tasks, or overriding one that is ready)."""
        f = self.repo.get_feature(ref)
        t = self.repo.get_task(f["id"], key)
        if t["status"] != "ready":
            raise StateConflict(f"task {key} is {t['status']}; only a ready task can be completed by hand")
        now = self.clock()
        mine = self.repo.claim(MANUAL_WORKER, 1, now, 3600.0, ClaimOptions(task_ids=(t["id"],)))
        if not mine:
            raise StateConflict(f"task {key} could not be claimed (another worker took it)")
        status = "succeeded" if ok else "failed"
        self.repo.complete(
            t["id"], mine[0]["attempt"], now, Outcome(status, result={"note": note}), MANUAL_WORKER
        )
        self._emit(status, feature=f["slug"], project=f["project"], task=key, manual=True)
        return self.repo.get_task(f["id"], key)

    # ---------------------------------------------------------------- execution
    def backoff(self, failures: int) -> float:
        """Delay before the next attempt after `failures` failed attempts (exponential, capped)."""
        return float(min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, failures - 1)))

    def claim(self, worker_id: str, n: int, lease_s: float, opts: ClaimOptions) -> Claimed:
        claimed = self.repo.claim(worker_id, n, self.clock(), lease_s, opts)
        for t in claimed:
            self._emit(
                "claimed", feature_id=t["feature_id"], task=t["key"], attempt=t["attempt"], worker=worker_id
            )
        return claimed

    def heartbeat(self, worker_id: str, task_ids: Sequence[int], lease_s: float) -> set[int]:
        return self.repo.heartbeat(worker_id, task_ids, self.clock(), lease_s)

    def complete(
        self,
        task: Mapping[str, Any],
        worker_id: str,
        *,
        ok: bool,
        result: Any = None,
        validation: Any = None,
        reason: str | None = None,
        duration_s: float | None = None,
    ) -> bool:
        """Record the outcome of `task`'s current attempt; False when the claim was lost (fenced)."""
        return self.complete_many([(task, ok, result, validation, reason, duration_s)], worker_id)[0]

    def complete_many(self, results: Sequence[Finished], worker_id: str) -> list[bool]:
        """`complete` for several attempts in one store transaction."""
        items = self._outcomes(results, self.clock())
        done = self.repo.complete_many(items, self.clock(), worker_id)
        self._emit_outcomes(results, items, done)
        return done

    def complete_and_claim(
        self, results: Sequence[Finished], worker_id: str, n: int, lease_s: float, opts: ClaimOptions
    ) -> tuple[list[bool], Claimed]:
        """Record finished attempts and claim the freed slots in one store transaction."""
        now = self.clock()
        items = self._outcomes(results, now)
        done, claimed = self.repo.complete_and_claim(items, worker_id, n, now, lease_s, opts)
        self._emit_outcomes(results, items, done)
        for t in claimed:
            self._emit(
                "claimed", feature_id=t["feature_id"], task=t["key"], attempt=t["attempt"], worker=worker_id
            )
        return done, claimed

    def _outcomes(self, results: Sequence[Finished], now: float) -> list[tuple[int, int, Outcome]]:
        items = []
        for task, ok, result, validation, reason, duration_s in results:
            retry_at = None
            if not ok:
                failures = int(task.get("failures") or 0) + 1
                if failures < int(task["max_attempts"]):
                    retry_at = now + self.backoff(failures)
            status = "succeeded" if ok else "failed"
            outcome = Outcome(status, result, validation, reason, retry_at, duration_s)
            items.append((int(task["id"]), int(task["attempt"]), outcome))
        return items

    def _emit_outcomes(
        self, results: Sequence[Finished], items: Sequence[tuple[int, int, Outcome]], done: Sequence[bool]
    ) -> None:
        if self._publish is None:
            return
        for (task, ok, *_rest), (_, _, o), d in zip(results, items, done, strict=True):
            if d:
                kind = "succeeded" if ok else ("retrying" if o.retry_at else "failed")
                self._emit(kind, feature_id=task["feature_id"], task=task["key"], attempt=task["attempt"],
                           reason=o.reason)  # fmt: skip

    def reap(self) -> list[Row]:
        rows = self.repo.reap(self.clock())
        for t in rows:
            self._emit(
                "requeued" if t["status"] == "ready" else "failed", feature_id=t["feature_id"], task=t["key"]
            )
        return rows

    def snapshot(self, ref: str | int) -> Row:
        """Feature, phases, tasks and per-phase status counts: what a progress display needs."""
        f = self.repo.get_feature(ref)
        return {"feature": f, "phases": self.repo.phases(f["id"]), "tasks": self.repo.tasks(f["id"])}
