"""The agent part of a feature report, from the recorded attempts (`task_attempts`) and the ledger's
usage of each attempt's key: per task (agent, models, attempts, cost, files changed), per agent and
per model (tasks, first-try success, attempts, cost, cost per succeeded task), and the feature
branch's commits in merge order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "agent_report",
    "attempts_with_usage",
    "render_agent_report",
    "table_cell",
    "usage_by_attempt",
    "worktree_state",
]

Row = dict[str, Any]


def _usage(a: Mapping[str, Any], usage: Mapping[int, Mapping[str, Any]]) -> Mapping[str, Any]:
    return usage.get(int(a["id"]), {})


def usage_by_attempt(costs: Sequence[Mapping[str, Any]]) -> dict[int, Row]:
    """`TaskRepo.attempt_costs` rows (per attempt and model group) summed per attempt id."""
    out: dict[int, Row] = {}
    for c in costs:
        u = out.setdefault(int(c["attempt_id"]), {"calls": 0, "cost_usd": 0.0, "unpriced": 0, "models": []})
        u["calls"] += int(c["calls"])
        u["cost_usd"] += float(c["cost_usd"])
        u["unpriced"] += int(c["unpriced"])
        if c.get("model_group") and c["model_group"] not in u["models"]:
            u["models"].append(str(c["model_group"]))
    return out


def worktree_state(a: Mapping[str, Any]) -> str | None:
    """What became of an attempt's worktree, from how the attempt ended (the executor keeps a failed
    attempt's worktree for inspection and removes a merged one's): `in_use` while it runs, `removed`
    after it succeeded, `kept` after any other finished outcome, `unknown` after a crash (removed when
    a later attempt closes it, kept when the attempt was stopped); None when none was recorded."""
    if not a.get("worktree"):
        return None
    outcome = a.get("outcome")
    if outcome == "running":
        return "in_use"
    if outcome == "succeeded":
        return "removed"
    return "unknown" if outcome == "crashed" else "kept"


def attempts_with_usage(
    attempts: Sequence[Mapping[str, Any]], costs: Sequence[Mapping[str, Any]]
) -> list[Row]:
    """Attempt rows with `usage` (the ledger's calls of the attempt's key: calls, cost_usd, unpriced,
    the model groups that answered) and `worktree_state`."""
    usage = usage_by_attempt(costs)
    return [
        {
            **a,
            "usage": usage.get(int(a["id"]), {"calls": 0, "cost_usd": 0.0, "unpriced": 0, "models": []}),
            "worktree_state": worktree_state(a),
        }
        for a in attempts
    ]


def agent_report(
    tasks: Sequence[Mapping[str, Any]],
    attempts: Sequence[Mapping[str, Any]],
    costs: Sequence[Mapping[str, Any]],
) -> Row | None:
    """None when no task of the feature ran as an agent attempt."""
    if not attempts:
        return None
    usage = usage_by_attempt(costs)
    by_task: dict[int, list[Mapping[str, Any]]] = {}
    for a in sorted(attempts, key=lambda a: (a["task_id"], a["attempt"], a["id"])):
        by_task.setdefault(int(a["task_id"]), []).append(a)
    title = {int(t["id"]): (t["key"], t["title"], t["status"]) for t in tasks}
    per_task: list[Row] = []
    groups: dict[str, dict[str, Row]] = {"agent": {}, "model": {}}
    for tid, rows in by_task.items():
        key, name, status = title.get(tid, (str(tid), "", "unknown"))
        won = next((a for a in rows if a["outcome"] == "succeeded"), None)
        cost = sum(float(_usage(a, usage).get("cost_usd") or 0.0) for a in rows)
        calls = sum(int(_usage(a, usage).get("calls") or 0) for a in rows)
        unpriced = sum(int(_usage(a, usage).get("unpriced") or 0) for a in rows)
        models: list[str] = []
        for a in rows:
            for m in [*(_usage(a, usage).get("models") or ()), a.get("model")]:
                if m and m not in models:
                    models.append(str(m))
        per_task.append({
            "task": key, "title": name, "status": status, "agents": sorted({str(a["agent"]) for a in rows}),
            "models": models, "attempts": len(rows), "first_try": rows[0]["outcome"] == "succeeded",
            "outcome": rows[-1]["outcome"], "reason": rows[-1].get("reason"),
            "cost_usd": round(cost, 8), "calls": calls, "unpriced_calls": unpriced,
            "files_changed": won.get("files_changed") if won else None,
            "lines_added": won.get("lines_added") if won else None,
            "lines_removed": won.get("lines_removed") if won else None,
            "merged_sha": won.get("merged_sha") if won else None,
            "isolation": rows[-1].get("isolation"),
        })  # fmt: skip
        for kind, value in (("agent", rows[0]["agent"]), ("model", rows[0].get("model") or "default")):
            g = groups[kind].setdefault(
                str(value),
                {
                    kind: str(value),
                    "tasks": 0,
                    "first_try": 0,
                    "succeeded": 0,
                    "attempts": 0,
                    "calls": 0,
                    "cost_usd": 0.0,
                    "unpriced_calls": 0,
                },
            )
            g["tasks"] += 1
            g["first_try"] += int(rows[0]["outcome"] == "succeeded")
            g["succeeded"] += int(won is not None)
            g["attempts"] += len(rows)
            g["calls"] += calls
            g["cost_usd"] += cost
            g["unpriced_calls"] += unpriced
    tables: dict[str, list[Row]] = {}
    for kind, rows_by in groups.items():
        tables[kind] = []
        for g in rows_by.values():
            g["cost_usd"] = round(g["cost_usd"], 8)
            g["first_try_success_rate"] = g["first_try"] / g["tasks"] if g["tasks"] else None
            g["cost_per_succeeded_usd"] = round(g["cost_usd"] / g["succeeded"], 8) if g["succeeded"] else None
            tables[kind].append(g)
    merged = sorted((a for a in attempts if a.get("merged_sha")), key=lambda a: a.get("finished_at") or 0.0)
    commits = [
        {"sha": a["merged_sha"], "task": title.get(int(a["task_id"]), (str(a["task_id"]),))[0],
         "title": title.get(int(a["task_id"]), ("", ""))[1], "agent": a["agent"], "attempt": a["attempt"]}
        for a in merged
    ]  # fmt: skip
    return {"tasks": per_task, "by_agent": tables["agent"], "by_model": tables["model"], "commits": commits}


def table_cell(value: Any) -> str:
    """A Markdown table cell: "—" for None, on one line, its pipes escaped (a title may hold one)."""
    if value is None:
        return "—"
    return " ".join(str(value).split()).replace("|", "\\|")


def _money(usd: float | None, unpriced: int = 0, calls: int = 0) -> str:
    """A cost: "unknown" when every one of its calls is of unknown price (never a zero for them)."""
    if usd is None:
        return "—"
    if unpriced and unpriced >= calls:
        return "unknown"
    return f"${usd:.4f}" + (f" (+{unpriced} unpriced calls)" if unpriced else "")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


def render_agent_report(r: Row) -> list[str]:
    """Markdown lines: the per-task table, the per-agent and per-model tables and the commit list."""

    def table(head: list[str], rows: list[list[Any]]) -> list[str]:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return out + ["| " + " | ".join(table_cell(c) for c in row) + " |" for row in rows]

    out = ["", "## Agents", ""]
    out += table(
        ["Task", "Agent", "Model(s)", "Attempts", "Outcome", "Cost", "Files changed", "Lines +/-"],
        [[f"{t['task']} {t['title']}", ", ".join(t["agents"]), ", ".join(t["models"]) or "—", t["attempts"],
          t["outcome"] + (f" ({t['reason']})" if t["outcome"] != "succeeded" and t["reason"] else ""),
          _money(t["cost_usd"], t["unpriced_calls"], t["calls"]), t["files_changed"],
          f"+{t['lines_added']}/-{t['lines_removed']}" if t["lines_added"] is not None else None]
         for t in r["tasks"]],
    )  # fmt: skip
    for kind, rows in (("Agent", r["by_agent"]), ("Model", r["by_model"])):
        out += ["", f"### Per {kind.lower()}", ""]
        out += table(
            [kind, "Tasks", "First-try success", "Succeeded", "Attempts", "Cost", "Cost per succeeded task"],
            [[g[kind.lower()], g["tasks"], _pct(g["first_try_success_rate"]), g["succeeded"], g["attempts"],
              _money(g["cost_usd"], g["unpriced_calls"], g["calls"]),
              _money(g["cost_per_succeeded_usd"], g["unpriced_calls"], g["calls"])]
             for g in rows],
        )  # fmt: skip
    out += ["", "### Commits on the feature branch", ""]
    out += [f"- `{c['sha'][:12]}` {c['task']} {c['title']} ({c['agent']}, attempt {c['attempt']})"
            for c in r["commits"]] or ["_No commit merged yet._"]  # fmt: skip
    return out
