"""The feature status report (Markdown or JSON). Every figure comes from the store; a section with
no data says so instead of inventing any."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from typing import Any

from architect.orchestrator.metrics import CONFIDENCE, DAY, compute_metrics
from architect.orchestrator.report_agents import agent_report, render_agent_report, table_cell
from architect.store.orchestrator import Row, TaskRepo

__all__ = ["agents_section", "build_report", "render_markdown"]

_NONE = "_No data recorded._"


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _cost(usd: float, calls: int, unpriced: int, dollar: str = "$") -> str:
    """A cost as the report shows it: "unknown" when every call's price is unknown, else the sum of the
    priced calls and how many calls it leaves out; never a zero for calls whose price is unknown."""
    if unpriced and unpriced >= calls:
        return "unknown"
    text = f"{dollar}{usd:.4f}"
    return f"{text} (leaves out {unpriced} calls of unknown price)" if unpriced else text


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY:.1f} days"


def _velocity(m: Row) -> str:
    """Velocity with the window it was measured over, in a unit that window supports."""
    window, n, per_day = m["velocity_window_s"], m["velocity_tasks"], m["velocity_tasks_per_day"]
    if window is None or per_day is None:
        return "no data (no task claimed by a worker yet)"
    unit, per = ("minute", 1440) if window < 3600 else ("hour", 24) if window < 2 * DAY else ("day", 1)
    return (
        f"{n} task{'' if n == 1 else 's'} finished by workers in the last {_span(window)} "
        f"({per_day / per:.3g} per {unit})"
    )


_ATTENTION = {"manual": "manual (waiting for a person)", "waiting_on_them": "waiting on those"}


def _attention(attention: dict[str, int]) -> str:
    """'2 tasks need attention: 1 failed, 1 blocked' ('' when none does)."""
    n = sum(attention.values())
    if not n:
        return ""
    parts = ", ".join(f"{v} {_ATTENTION.get(k, k)}" for k, v in attention.items())
    return f"{n} task{'' if n == 1 else 's'} need{'s' if n == 1 else ''} attention: {parts}"


def _estimate(m: Row) -> str:
    f = m["forecast"]
    stuck = _attention(f.get("attention") or {})
    also = f"; {stuck}" if stuck else ""
    if f["basis"] == "throughput":
        part = (
            f" for the {f['remaining']} task{'' if f['remaining'] == 1 else 's'} workers can run"
            if stuck
            else ""
        )
        return (
            f"{_when(f['eta'])} ({CONFIDENCE:.0%} interval {_when(f['eta_low'])} to {_when(f['eta_high'])}),"
            f"{part} if the throughput of the last {_span(f['window_s'])} continues{also}"
        )
    if f["basis"] == "done":
        return f"done ({_when(f['eta'])})"
    if f["basis"] == "no_tasks":
        return "no data (no tasks)"
    if f["basis"] == "needs_attention":
        return f"none: no task left that workers can run; {stuck}"
    return (
        f"not enough history yet ({f['completed']} task{'' if f['completed'] == 1 else 's'} finished by "
        f"workers in the window; {f['min_completions']} needed){also}"
    )


def build_report(repo: TaskRepo, ref: str | int, now: float | None = None) -> Row:
    now = time.time() if now is None else now
    f = repo.get_feature(ref)
    fid = f["id"]
    phases, tasks, items = repo.phases(fid), repo.tasks(fid), repo.items(fid)
    events = repo.events(fid, limit=10_000_000)
    m = compute_metrics(f, phases, tasks, events, items, repo.call_costs(f["project"], f["slug"]), now)
    by_status = Counter(t["status"] for t in tasks)
    open_phases = [t["phase"] for t in tasks if t["status"] not in ("succeeded", "cancelled")]
    current = {
        "status": f["status"],
        "phase": min(open_phases) if open_phases else None,
        "progress": m["progress"],
        "tasks_done": m["tasks_done"],
        "tasks_total": m["tasks_total"],
        "by_status": dict(by_status),
        "in_progress": [
            {
                "task": t["key"],
                "title": t["title"],
                "attempt": t["attempt"],
                "worker": t["worker_id"],
                "since": t["started_at"],
            }
            for t in tasks
            if t["status"] == "running"
        ],
        "blocked": [
            {"task": t["key"], "title": t["title"], "reason": t["reason"]}
            for t in tasks
            if t["status"] == "blocked"
        ],
        "failed": [
            {"task": t["key"], "title": t["title"], "reason": t["reason"], "attempts": t["attempt"]}
            for t in tasks
            if t["status"] == "failed"
        ],
        "velocity_tasks_per_day": m["velocity_tasks_per_day"],
        "velocity_window_s": m["velocity_window_s"],
        "velocity_tasks": m["velocity_tasks"],
        "estimated_completion": m["estimated_completion"],
        "forecast": m["forecast"],
        "next_ready": [
            {"task": t["key"], "title": t["title"], "priority": t["priority"]}
            for t in sorted(
                (t for t in tasks if t["status"] == "ready"),
                key=lambda t: (-t["priority"], t["ready_at"] or 0),
            )
        ][:10],
    }
    claimed_at: dict[str, float] = {}
    for e in events:
        if e["kind"] == "claimed" and e.get("task_key"):
            claimed_at.setdefault(e["task_key"], e["ts"])
    issue_items = [i for i in items if i["kind"] in ("bug", "issue")]
    history = []
    for ph in phases:
        pt = [t for t in tasks if t["phase"] == ph["number"]]
        keys = {t["key"] for t in pt}
        starts = [claimed_at[k] for k in keys if k in claimed_at]
        ends = [t["finished_at"] for t in pt if t["finished_at"] and t["status"] == "succeeded"]
        complete = all(t["status"] in ("succeeded", "cancelled") for t in pt)
        vals = [t["validation"] for t in pt if t.get("validation")]
        history.append({
            "phase": ph["number"], "title": ph["title"], "started": min(starts) if starts else None,
            "finished": max(ends) if complete and ends else None,
            "duration_s": round(max(ends) - min(starts), 3) if complete and ends and starts else None,
            "tasks": len(pt), "succeeded": sum(1 for t in pt if t["status"] == "succeeded"),
            "failed": sum(1 for t in pt if t["status"] == "failed"),
            "validations": {"tasks": len(vals), "passed_runs": sum(1 for v in vals if v.get("ok")),
                            "tests_passed": sum(int(v.get("passed") or 0) for v in vals),
                            "tests_failed": sum(int(v.get("failed") or 0) for v in vals)},
            "issues_found": [i["title"] for i in issue_items if i.get("task_key") in keys],
        })  # fmt: skip
    outcome: dict[tuple[str, int], Row] = {}
    for e in events:
        # a worker's "blocked" ends a claimed attempt that never ran (trust, allow-list)
        worker_blocked = e["kind"] == "blocked" and e.get("worker_id")
        if (e["kind"] in ("succeeded", "failed", "requeued") or worker_blocked) and e.get("task_key"):
            outcome[(e["task_key"], e["attempt"])] = e
    batches: dict[str, list[Row]] = defaultdict(list)
    for e in events:
        if e["kind"] == "claimed" and e.get("task_key"):
            o = outcome.get((e["task_key"], e["attempt"]))
            batches[str((e.get("data") or {}).get("batch"))].append({
                "task": e["task_key"], "attempt": e["attempt"], "result": o["kind"] if o else "running",
                "duration_s": ((o.get("data") or {}).get("duration_s") if o else None),
                "ts": e["ts"], "worker": e.get("worker_id"),
            })  # fmt: skip
    batch_log = [
        {"started": b[0]["ts"], "worker": b[0]["worker"],
         "tasks": [{k: v for k, v in x.items() if k not in ("ts", "worker")} for x in b]}
        for b in sorted(batches.values(), key=lambda b: b[0]["ts"])
    ]  # fmt: skip
    kinds = {k: [i for i in items if i["kind"] == k] for k in ("risk", "issue", "bug", "decision", "blocker")}
    summary = {
        "tasks": len(tasks), "by_status": dict(by_status), "attempts": sum(t["attempt"] for t in tasks),
        "failed_attempts": sum(1 for o in outcome.values() if o["kind"] == "failed"),
        "lost_leases": sum(1 for o in outcome.values() if o["kind"] == "requeued"),
        "model_calls": m["model_calls"], "cost_usd": m["cost_usd"],
        "unpriced_calls": m.get("unpriced_calls", 0),
    }  # fmt: skip
    return {
        "feature": {k: f[k] for k in ("id", "project", "slug", "title", "status")},
        "generated_at": now,
        "current": current,
        "phase_history": history,
        "batch_log": batch_log,
        "risks_and_issues": kinds["risk"] + kinds["issue"] + kinds["bug"],
        "decisions": kinds["decision"],
        "blockers": kinds["blocker"],
        "metrics": m,
        "summary": summary,
        "agents": agent_report(tasks, repo.attempts(feature_id=fid), repo.attempt_costs(fid)),
    }


def agents_section(repo: TaskRepo, ref: str | int) -> Row:
    """The report's `agents` section alone (per task, per agent, per model, commits), with empty
    lists when no task of the feature has run as an agent attempt yet."""
    fid = repo.get_feature(ref)["id"]
    r = agent_report(repo.tasks(fid), repo.attempts(feature_id=fid), repo.attempt_costs(fid))
    return r or {"tasks": [], "by_agent": [], "by_model": [], "commits": []}


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(table_cell(c) for c in r) + " |" for r in rows]
    return out


def render_markdown(r: Row) -> str:
    f, c, m = r["feature"], r["current"], r["metrics"]
    out = [f"# Status report: {f['title']}", "", f"Project `{f['project']}` · feature `{f['slug']}` · "
           f"generated {_when(r['generated_at'])}", "", "## Current state", ""]  # fmt: skip
    out += [
        f"- Status: **{c['status']}**; current phase: {c['phase'] if c['phase'] is not None else 'all done'}",
        f"- Progress: {c['tasks_done']}/{c['tasks_total']} tasks ({_pct(c['progress'])})",
        "- By status: " + (", ".join(f"{k} {v}" for k, v in sorted(c["by_status"].items())) or "no tasks"),
        f"- Velocity: {_velocity(c)}",
        f"- Estimated completion: {_estimate(c)}",
        "",
        "### In progress",
    ]
    out += [
        f"- {t['task']} {t['title']} (attempt {t['attempt']}, {t['worker']})" for t in c["in_progress"]
    ] or [_NONE]
    out += ["", "### Blocked"]
    out += [f"- {t['task']} {t['title']}: {t['reason']}" for t in c["blocked"]] or [_NONE]
    out += ["", "### Failed"]
    out += [f"- {t['task']} {t['title']}: {t['reason']} ({t['attempts']} attempts)" for t in c["failed"]] or [
        _NONE
    ]
    out += ["", "### Next ready tasks"]
    out += [f"- {t['task']} {t['title']} (priority {t['priority']})" for t in c["next_ready"]] or [_NONE]
    out += ["", "## Phase history", ""]
    if r["phase_history"]:
        out += _table(
            ["Phase", "Started", "Finished", "Duration (s)", "Tasks", "OK", "Failed", "Validations", "Issues"],
            [[f"{h['phase']}: {h['title']}", _when(h["started"]), _when(h["finished"]), h["duration_s"], h["tasks"],
              h["succeeded"], h["failed"],
              f"{h['validations']['passed_runs']}/{h['validations']['tasks']} runs, "
              f"{h['validations']['tests_passed']} passed/{h['validations']['tests_failed']} failed tests"
              if h["validations"]["tasks"] else "none", ", ".join(h["issues_found"]) or "none"]
             for h in r["phase_history"]],
        )  # fmt: skip
    else:
        out.append(_NONE)
    out += ["", "## Batch log", ""]
    if r["batch_log"]:
        rows = []
        for b in r["batch_log"]:
            desc = ", ".join(
                f"{t['task']}#{t['attempt']} {t['result']}"
                + (f" {t['duration_s']:.2f}s" if t["duration_s"] is not None else "")
                for t in b["tasks"]
            )
            rows.append([_when(b["started"]), b["worker"], len(b["tasks"]), desc])
        out += _table(["Started", "Worker", "Tasks", "Results"], rows)
    else:
        out.append(_NONE)
    for title, key in (
        ("Risks and issues", "risks_and_issues"),
        ("Decisions", "decisions"),
        ("Blockers", "blockers"),
    ):
        out += ["", f"## {title}", ""]
        if not r[key]:
            out.append(_NONE)
        for i in r[key]:
            extra = "; ".join(
                f"{k}: {i[k]}"
                for k in ("severity", "status", "task_key", "date", "rationale", "impact")
                if i.get(k)
            )
            out.append(f"- **{i['kind']}** {i['title']}" + (f" ({extra})" if extra else ""))
    out += ["", "## Velocity and quality", ""]
    out += [
        f"- Velocity: {_velocity(m)}",
        f"- Average duration: {m['avg_duration_s'] if m['avg_duration_s'] is not None else 'no data'} s; "
        f"vs estimate: {m['duration_vs_estimate'] if m['duration_vs_estimate'] is not None else 'no estimates'}",
        f"- First-try success rate: {_pct(m['first_try_success_rate'])}; rework rate: {_pct(m['rework_rate'])}",
        f"- Batch success rate: {_pct(m['batch_success_rate'])} over {m['batches']} batches",
        f"- Bugs: {m['bugs']} (rate {m['bug_rate'] if m['bug_rate'] is not None else 'no data'} per done task)",
        f"- Model calls: {m['model_calls']}; cost: {_cost(m['cost_usd'], m['model_calls'], m.get('unpriced_calls', 0))}"
        + ("" if m["model_calls"] else " (no calls recorded in the ledger for this feature)"),
    ]
    for run in m["runs"]:
        out.append(f"- Run {run['run']}: {run['succeeded']}/{run['attempts']} attempts succeeded"
                   f" in {run['seconds']} s ({run['tasks_per_s']} tasks/s)")  # fmt: skip
    if r.get("agents"):
        out += render_agent_report(r["agents"])
    s = r["summary"]
    out += ["", "## Summary statistics", ""]
    out += _table(["Tasks", "Attempts", "Failed attempts", "Lost leases", "Model calls", "Cost (USD)"],
                  [[s["tasks"], s["attempts"], s["failed_attempts"], s["lost_leases"], s["model_calls"],
                    _cost(s["cost_usd"], s["model_calls"], s.get("unpriced_calls", 0), dollar="")]])  # fmt: skip
    return "\n".join(out) + "\n"
