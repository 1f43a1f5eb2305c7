"""`architect task show FEATURE TASK`: one task, its attempts (agent, model, outcome and why, the
worktree a failed attempt left for inspection, the files it changed, the key it spent through, the
isolation it ran under) and what they cost in the ledger."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from architect.cli.common import DatabaseOpt, JsonOpt, console, open_cli_store, print_json

__all__ = ["app"]

app = typer.Typer(help="One task of a feature and its attempts.", no_args_is_help=True)


@app.command("show")
def show(
    feature: Annotated[str, typer.Argument(help="feature slug or id")],
    task: Annotated[str, typer.Argument(help="task id, e.g. T3")],
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """The task's state and every attempt: agent, model, outcome, worktree, files, cost."""
    repo = open_cli_store(database_url).tasks
    f = repo.get_feature(int(feature) if feature.isdigit() else feature)
    t = repo.get_task(f["id"], task)
    attempts = repo.attempts(task_id=t["id"])
    costs: dict[int, dict[str, Any]] = {}
    for c in repo.attempt_costs(f["id"]):
        u = costs.setdefault(int(c["attempt_id"]), {"calls": 0, "cost_usd": 0.0, "unpriced": 0})
        u["calls"] += int(c["calls"])
        u["cost_usd"] += float(c["cost_usd"])
        u["unpriced"] += int(c["unpriced"])
    for a in attempts:
        a["usage"] = costs.get(int(a["id"]), {"calls": 0, "cost_usd": 0.0, "unpriced": 0})
    if json:
        print_json({"task": t, "attempts": attempts})
        return
    console.print(
        f"[bold]{t['key']}[/bold] {t['title']} — {t['status']}"
        + (f" ({t['reason']})" if t.get("reason") else "")
        + f"; executor {t['executor']}"
        + (f", agent {t['agent']}" if t.get("agent") else ""),
        highlight=False,
    )
    if not attempts:
        console.print("no agent attempt recorded", highlight=False)
        return
    table = Table("#", "agent", "model", "outcome", "reason", "files", "+/-", "calls", "cost", "isolation",
                  "seconds", title="Attempts")  # fmt: skip
    for a in attempts:
        u = a["usage"]
        cost = "unknown" if u["calls"] and u["unpriced"] >= u["calls"] else f"${u['cost_usd']:.6f}"
        table.add_row(
            str(a["attempt"]), a.get("agent") or "-", a.get("model") or "-", a["outcome"],
            (a.get("reason") or "")[:80], str(a.get("files_changed") if a.get("files_changed") is not None else "-"),
            f"+{a['lines_added']}/-{a['lines_removed']}" if a.get("lines_added") is not None else "-",
            str(u["calls"]), cost, a.get("isolation") or "-",
            f"{a['duration_s']:.1f}" if a.get("duration_s") is not None else "-",
        )  # fmt: skip
    console.print(table)
    for a in attempts:
        if a["outcome"] != "succeeded" and a.get("worktree"):
            console.print(f"attempt {a['attempt']} worktree (kept): {a['worktree']}", highlight=False)
        if a.get("merged_sha"):
            console.print(f"attempt {a['attempt']} merged as {a['merged_sha']}", highlight=False)
