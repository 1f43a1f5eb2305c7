"""`architect plan ...`: import/export plans, list and show features, pause/resume/cancel, complete
or retry tasks by hand, and approve tasks whose executable fields were written by someone else.

Working on the store directly is the database holder's privilege: `plan import` here records its
tasks as trusted (set by "local"), and `plan approve` is audited as the local OS user."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from architect.access.audit import local_actor
from architect.cli.common import ConfigOpt, DatabaseOpt, JsonOpt, console, open_cli_store, print_json
from architect.cli.keys import KeyOpt, ServerOpt, call_server

# The orchestrator is imported by the commands that use it, so that other commands (`serve`) do not
# load it.
if TYPE_CHECKING:
    from architect.orchestrator.manager import Manager

__all__ = ["app"]

app = typer.Typer(
    help="Plans: import, export, list, show, pause/resume/cancel features.", no_args_is_help=True
)

FeatureArg = Annotated[str, typer.Argument(help="feature slug or id")]


def _manager(database_url: str | None) -> Manager:
    from architect.orchestrator.manager import Manager

    store = open_cli_store(database_url)
    return Manager(store.tasks, audit=store.audit.add_audit)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="a Markdown checklist (.md) or YAML plan (.yaml)")],
    project: Annotated[
        str | None, typer.Option(help="project name (default: from the plan, else 'default')")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="md or yaml (default: from the file name)")
    ] = None,
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
) -> None:
    """Create or update features from a plan; re-importing updates by task id and keeps finished tasks.

    A relative `repo` is relative to the plan file; a `repo` that is not a git repository or a `base`
    that does not resolve is refused. With --config, agents the configuration does not define are
    refused too (else the worker refuses them when it runs the task)."""
    from architect.config import load_config
    from architect.orchestrator.plans import check_agent_names, load_plan_file

    plans = load_plan_file(file, project=project, fmt=fmt)
    if config:
        check_agent_names(plans, {a.name for a in load_config(config).all_agents()})
    results = _manager(database_url).import_plans(plans)
    if json:
        print_json([{**r, "feature": r["feature"]["slug"]} for r in results])
        return
    for r in results:
        console.print(
            f"[bold]{r['feature']['slug']}[/bold]: {r['created']} created, {r['updated']} updated, "
            f"{r['unchanged']} unchanged, {r['kept_finished']} finished kept, {r['removed']} removed"
        )


@app.command("export")
def export(
    feature: FeatureArg,
    fmt: Annotated[str, typer.Option("--format", help="md or yaml")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to a file")] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Write the plan back (Markdown with \\[x] for finished and \\[-] for cancelled tasks, or the full YAML)."""
    if fmt not in ("md", "yaml"):
        raise typer.BadParameter(f"expected md or yaml, got {fmt!r}", param_hint="--format")
    from architect.orchestrator.plans import export_markdown, export_yaml

    repo = _manager(database_url).repo
    f = repo.get_feature(feature)
    ph, ts = repo.phases(f["id"]), repo.tasks(f["id"])
    text = export_markdown(f, ph, ts) if fmt == "md" else export_yaml(f, ph, ts, repo.items(f["id"]))
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@app.command("list")
def list_(database_url: DatabaseOpt = None, json: JsonOpt = False) -> None:
    """Features with their task counts."""
    repo = _manager(database_url).repo
    rows = []
    for f in repo.list_features():
        counts: dict[str, int] = {}
        for c in repo.status_counts(f["id"]):
            counts[c["status"]] = counts.get(c["status"], 0) + int(c["n"])
        rows.append(
            {"id": f["id"], "slug": f["slug"], "project": f["project"], "status": f["status"], **counts}
        )
    if json:
        print_json(rows)
        return
    table = Table("id", "feature", "project", "status", "tasks", "succeeded", "failed", "blocked")
    for r in rows:
        total = sum(v for k, v in r.items() if k not in ("id", "slug", "project", "status"))
        table.add_row(str(r["id"]), r["slug"], r["project"], r["status"], str(total),
                      str(r.get("succeeded", 0)), str(r.get("failed", 0)), str(r.get("blocked", 0)))  # fmt: skip
    console.print(table)


@app.command("show")
def show(feature: FeatureArg, database_url: DatabaseOpt = None, json: JsonOpt = False) -> None:
    """The tasks of a feature with their state."""
    repo = _manager(database_url).repo
    f = repo.get_feature(feature)
    tasks = repo.tasks(f["id"])
    if json:
        print_json({"feature": f, "tasks": tasks})
        return
    table = Table(
        "phase",
        "task",
        "title",
        "status",
        "attempt",
        "after",
        "reason",
        title=f"{f['title']} ({f['status']})",
    )
    for t in tasks:
        table.add_row(str(t["phase"]), t["key"], t["title"], t["status"], str(t["attempt"]),
                      ", ".join(t["deps"]), t["reason"] or "")  # fmt: skip
    console.print(table)


@app.command("pause")
def pause(feature: FeatureArg, database_url: DatabaseOpt = None) -> None:
    """Stop claiming the feature's tasks (running ones finish)."""
    f = _manager(database_url).pause(feature)
    console.print(f"{f['slug']}: paused")


@app.command("resume")
def resume(feature: FeatureArg, database_url: DatabaseOpt = None) -> None:
    f = _manager(database_url).resume(feature)
    console.print(f"{f['slug']}: active")


@app.command("cancel")
def cancel(
    feature: FeatureArg,
    task: Annotated[str | None, typer.Argument(help="cancel only this task")] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Cancel a feature (every unfinished task) or one task (its dependents become blocked)."""
    m = _manager(database_url)
    if task:
        t = m.cancel_task(feature, task)
        console.print(f"{t['key']}: {t['status']}")
    else:
        f = m.cancel(feature)
        console.print(f"{f['slug']}: cancelled")


@app.command("done")
def done(
    feature: FeatureArg,
    task: Annotated[str, typer.Argument(help="task id, e.g. T001")],
    failed: Annotated[bool, typer.Option("--failed", help="record a failure instead")] = False,
    note: Annotated[str | None, typer.Option(help="a note stored as the result")] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Complete a ready task by hand (e.g. a manual task)."""
    t = _manager(database_url).finish_manual(feature, task, ok=not failed, note=note)
    console.print(f"{t['key']}: {t['status']}")


@app.command("retry")
def retry(
    feature: FeatureArg, task: Annotated[str, typer.Argument()], database_url: DatabaseOpt = None
) -> None:
    """Put a failed, cancelled or blocked task back in the queue (its dependents are unblocked)."""
    t = _manager(database_url).retry_task(feature, task)
    console.print(f"{t['key']}: {t['status']}")


@app.command("approve")
def approve(
    feature: FeatureArg,
    tasks: Annotated[
        list[str] | None, typer.Argument(help="task ids (default: every untrusted task of the feature)")
    ] = None,
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Trust tasks whose executable fields were written by a principal that may not (or before trust
    was recorded); those a worker blocked as untrusted_executable go back to the queue. Audited."""
    if server:
        rows = call_server(server, key, "POST", f"/features/{feature}/approve", {"tasks": tasks or None})
    else:
        rows = _manager(database_url).approve(feature, tasks or None, local_actor())
    if json:
        print_json(rows)
        return
    if not rows:
        console.print(f"{feature}: nothing to approve (every task is trusted)")
    for t in rows:
        runs = {
            k: v
            for k, v in (("command", (t["params"] or {}).get("command")), ("validator", t["validator"]))
            if v
        }
        what = "".join(f", {k}: {v!r}" for k, v in runs.items())
        console.print(f"{t['key']}: approved ({t['status']}; {t['executor']}{what})", highlight=False)
