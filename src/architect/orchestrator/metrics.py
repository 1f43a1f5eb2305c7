"""Delivery metrics, computed from recorded task events only (plus the plan for totals and estimates,
the feature's items for bug counts, and the ledger for cost via the task tags).

A metric with no underlying data is None, never a guess.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from statistics import NormalDist
from typing import Any, Literal

from architect.store.orchestrator import Row, TaskRepo

__all__ = [
    "CONFIDENCE",
    "DAY",
    "MANUAL_WORKER",
    "MIN_COMPLETIONS",
    "WINDOW_S",
    "Forecast",
    "compute_metrics",
    "feature_metrics",
    "forecast",
    "open_work",
]

DAY = 86400.0
WINDOW_S = 3 * DAY  # throughput is measured over at most the last 3 days
MIN_COMPLETIONS = 3  # completions in the window needed before an estimate is made
CONFIDENCE = 0.9  # of the estimate's interval
_OUTCOMES = ("succeeded", "failed", "requeued")
# The worker id of claims and completions made by hand (`plan done`, the API's complete): not worker
# throughput.
MANUAL_WORKER = "manual"
_OPEN = ("pending", "ready", "running")

Basis = Literal["no_tasks", "done", "throughput", "not_enough_history", "needs_attention"]


@dataclass(frozen=True)
class Forecast:
    """When a feature's remaining tasks will be done, from the throughput observed so far.

    `window_s` is the span the throughput was measured over: from the feature's first claim, at most
    `WINDOW_S`, up to now (None before any task was claimed); `completed` the tasks finished by workers
    in it, `tasks_per_day` their rate. `remaining` counts the tasks workers can still finish (see
    `open_work`); `attention` the open tasks they cannot, by why ("failed", "blocked", "manual", and
    "waiting_on_them" for those that depend on such a task). `basis` says where `eta` comes from:
    "throughput" (an estimate for the `remaining` tasks, with a `CONFIDENCE` interval
    `eta_low`..`eta_high`), "done" (the last completion), or why there is none: "not_enough_history"
    (fewer than `min_completions` completions in the window), "needs_attention" (no task left that
    workers can run, but some that need a person) or "no_tasks"."""

    basis: Basis
    remaining: int
    window_s: float | None
    completed: int
    tasks_per_day: float | None
    eta: float | None = None
    eta_low: float | None = None
    eta_high: float | None = None
    min_completions: int = MIN_COMPLETIONS
    attention: dict[str, int] = field(default_factory=dict)


def _chi2_quantile(p: float, k: float) -> float:
    """The p-quantile of the chi-square distribution with k degrees of freedom (Wilson-Hilferty; within
    about 1% for the k >= 6 used here)."""
    c = 2.0 / (9.0 * k)
    return k * max(0.0, 1.0 - c + NormalDist().inv_cdf(p) * math.sqrt(c)) ** 3


def forecast(
    completions: Sequence[float],
    first_claim: float | None,
    remaining: int,
    total: int,
    now: float,
    last_done: float | None = None,
    attention: Mapping[str, int] | None = None,
) -> Forecast:
    """The completion forecast of a feature from the times its tasks were finished by workers.

    `remaining` is the number of tasks workers can still finish and `attention` the open tasks they
    cannot, by why (`open_work`); only the former are estimated. The rate is the number of completions in the window over its length, and the remaining tasks at
    that rate give the estimate; the interval comes from the `CONFIDENCE` bounds of that rate taken as a
    Poisson rate (Garwood's chi-square bounds). It assumes the pace observed continues (the same
    workers, tasks of a similar size)."""
    window = None if first_claim is None else now - max(first_claim, now - WINDOW_S)
    n = 0 if window is None else sum(1 for ts in completions if now - window <= ts <= now)
    rate = n / window if window else None  # per second
    per_day = None if rate is None else round(rate * DAY, 4)
    stuck = {k: v for k, v in (attention or {}).items() if v}
    seen = Forecast("not_enough_history", remaining, window, n, per_day, attention=stuck)
    if total == 0:
        return replace(seen, basis="no_tasks")
    if remaining == 0:
        return replace(seen, basis="needs_attention") if stuck else replace(seen, basis="done", eta=last_done)
    if rate is None or window is None or n < MIN_COMPLETIONS:
        return seen
    alpha = 1.0 - CONFIDENCE
    low_rate = _chi2_quantile(alpha / 2, 2 * n) / (2 * window)
    high_rate = _chi2_quantile(1 - alpha / 2, 2 * n + 2) / (2 * window)
    return replace(
        seen,
        basis="throughput",
        eta=now + remaining / rate,
        eta_low=now + remaining / high_rate,
        eta_high=now + remaining / low_rate,
    )


def open_work(tasks: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, int]]:
    """The open tasks workers can still finish, and those they cannot, counted by why.

    A task workers can finish is pending, ready or running, has an executor workers run (not
    `manual`), and each of its dependencies has succeeded or is such a task too. The others that are
    neither succeeded nor cancelled are "failed", "blocked", "manual" (waiting for a person), or
    "waiting_on_them" (pending on one of those)."""
    by_key = {t["key"]: t for t in tasks}
    memo: dict[str, bool] = {}

    def workable(key: str, path: frozenset[str]) -> bool:
        if key not in memo:
            t = by_key.get(key)
            memo[key] = (
                t is not None
                and key not in path
                and t["status"] in _OPEN
                and t.get("executor") != "manual"
                and all(
                    by_key.get(d, {}).get("status") == "succeeded" or workable(d, path | {key})
                    for d in t.get("deps") or ()
                )
            )
        return memo[key]

    n = 0
    attention: dict[str, int] = defaultdict(int)
    for t in tasks:
        status = t["status"]
        if status in ("succeeded", "cancelled"):
            continue
        if workable(t["key"], frozenset()):
            n += 1
        elif status in ("failed", "blocked"):
            attention[status] += 1
        elif t.get("executor") == "manual":
            attention["manual"] += 1
        else:
            attention["waiting_on_them"] += 1
    return n, dict(attention)


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def compute_metrics(
    feature: Mapping[str, Any],
    phases: Sequence[Mapping[str, Any]],
    tasks: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    items: Sequence[Mapping[str, Any]] = (),
    costs: Sequence[Mapping[str, Any]] = (),
    now: float | None = None,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    phase_of = {t["key"]: t["phase"] for t in tasks}
    cancelled = {t["key"] for t in tasks if t["status"] == "cancelled"}
    done_at: dict[str, float] = {}
    worked_done: dict[str, float] = {}  # succeeded by a worker (not marked done at import)
    durations: dict[str, float] = {}
    history: dict[str, list[str]] = defaultdict(list)  # outcome kinds per task, in order
    claims: dict[tuple[str, int], Mapping[str, Any]] = {}
    outcome_of: dict[tuple[str, int], str] = {}
    first_claim: float | None = None
    for e in events:
        key, kind, data = e.get("task_key"), e["kind"], e.get("data") or {}
        if key is None:
            continue
        by_hand = e.get("worker_id") == MANUAL_WORKER
        if kind == "claimed":
            claims[(key, e["attempt"])] = e
            if not by_hand:
                first_claim = e["ts"] if first_claim is None else min(first_claim, e["ts"])
        elif kind in _OUTCOMES:
            history[key].append(kind)
            if e.get("attempt") is not None:
                outcome_of[(key, e["attempt"])] = kind
            if kind == "succeeded":
                done_at[key] = e["ts"]
                if not data.get("imported") and not by_hand:
                    worked_done[key] = e["ts"]
                if data.get("duration_s") is not None:
                    durations[key] = float(data["duration_s"])
        elif kind == "retry_requested":
            done_at.pop(key, None)
    # progress
    total = len([t for t in tasks if t["key"] not in cancelled])
    per_phase = []
    for ph in phases:
        keys = [t["key"] for t in tasks if t["phase"] == ph["number"] and t["key"] not in cancelled]
        n_done = sum(1 for k in keys if k in done_at)
        per_phase.append({"phase": ph["number"], "title": ph["title"], "done": n_done, "total": len(keys),
                          "progress": _rate(n_done, len(keys))})  # fmt: skip
    n_done = sum(1 for k in done_at if k not in cancelled)
    # velocity over its window, and the completion forecast of the work workers can still do
    workable, attention = open_work(tasks)
    fc = forecast(
        list(worked_done.values()),
        first_claim,
        workable,
        total,
        now,
        max(done_at.values(), default=None),
        attention,
    )
    # duration vs estimate
    est = {t["key"]: t["estimate_h"] for t in tasks if t.get("estimate_h")}
    paired = [(durations[k], est[k] * 3600) for k in durations if k in est]
    # first try, rework
    finished = [k for k, h in history.items() if h]
    first_try = sum(1 for k in finished if history[k][0] == "succeeded")
    succeeded_keys = [k for k in finished if "succeeded" in history[k]]
    rework = sum(1 for k in succeeded_keys if history[k].index("succeeded") > 0)
    # batches: tasks claimed together; a batch succeeds when every attempt in it succeeded
    batches: dict[str, list[tuple[str, int]]] = defaultdict(list)
    runs: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (key, attempt), e in claims.items():
        d = e.get("data") or {}
        batches[str(d.get("batch"))].append((key, attempt))
        if d.get("run"):
            runs[str(d["run"])].append((key, attempt))
    settled = [b for b in batches.values() if all(a in outcome_of for a in b)]
    ok_batches = sum(1 for b in settled if all(outcome_of[a] == "succeeded" for a in b))
    # throughput per run
    ts_of = {(e.get("task_key"), e.get("attempt")): e["ts"] for e in events if e["kind"] in _OUTCOMES}
    run_stats = []
    for run, attempts in runs.items():
        starts = [claims[a]["ts"] for a in attempts]
        ends = [ts_of[a] for a in attempts if a in ts_of]
        ok = sum(1 for a in attempts if outcome_of.get(a) == "succeeded")
        span = (max(ends) - min(starts)) if ends else None
        run_stats.append({"run": run, "attempts": len(attempts), "succeeded": ok, "started": min(starts),
                          "seconds": round(span, 3) if span else None,
                          "tasks_per_s": round(ok / span, 3) if span else None})  # fmt: skip
    # bugs and cost
    bugs = [i for i in items if i["kind"] == "bug"]
    cost_by_task = {c["task"]: c for c in costs}
    cost_by_phase: dict[int, float] = defaultdict(float)
    calls_by_phase: dict[int, int] = defaultdict(int)
    unpriced_by_phase: dict[int, int] = defaultdict(int)
    for key, c in cost_by_task.items():
        pn = int(phase_of.get(key, 0)) if key else 0
        cost_by_phase[pn] += float(c["cost_usd"] or 0)
        calls_by_phase[pn] += int(c["calls"] or 0)
        unpriced_by_phase[pn] += int(c.get("unpriced") or 0)
    return {
        "feature": feature["slug"],
        "tasks_total": total,
        "tasks_done": n_done,
        "progress": _rate(n_done, total),
        "phases": per_phase,
        "velocity_tasks_per_day": fc.tasks_per_day,
        "velocity_window_s": fc.window_s,
        "velocity_tasks": fc.completed,
        "estimated_completion": fc.eta,
        "forecast": asdict(fc),
        "avg_duration_s": round(sum(durations.values()) / len(durations), 3) if durations else None,
        "avg_estimate_s": round(sum(e for _, e in paired) / len(paired), 3) if paired else None,
        "duration_vs_estimate": round(sum(d for d, _ in paired) / sum(e for _, e in paired), 4)
        if paired
        else None,
        "first_try_success_rate": _rate(first_try, len(finished)),
        "rework_rate": _rate(rework, len(succeeded_keys)),
        "batches": len(settled),
        "batch_success_rate": _rate(ok_batches, len(settled)),
        "bugs": len(bugs),
        "bug_rate": _rate(len(bugs), n_done),
        "model_calls": sum(int(c["calls"] or 0) for c in costs),
        # calls whose price is unknown: the costs leave them out
        "unpriced_calls": sum(int(c.get("unpriced") or 0) for c in costs),
        "cost_usd": round(sum(float(c["cost_usd"] or 0) for c in costs), 6),
        "cost_by_task": {str(k): round(float(c["cost_usd"] or 0), 6) for k, c in cost_by_task.items()},
        "calls_by_task": {str(k): int(c["calls"] or 0) for k, c in cost_by_task.items()},
        "unpriced_by_task": {str(k): int(c.get("unpriced") or 0) for k, c in cost_by_task.items()},
        "cost_by_phase": {int(k): round(v, 6) for k, v in cost_by_phase.items()},
        "calls_by_phase": {int(k): v for k, v in calls_by_phase.items()},
        "unpriced_by_phase": {int(k): v for k, v in unpriced_by_phase.items()},
        "runs": run_stats,
    }


def feature_metrics(repo: TaskRepo, ref: str | int, now: float | None = None) -> Row:
    f = repo.get_feature(ref)
    fid = f["id"]
    return compute_metrics(
        f, repo.phases(fid), repo.tasks(fid), repo.events(fid, limit=10_000_000), repo.items(fid),
        repo.call_costs(f["project"], f["slug"]), now,
    )  # fmt: skip
