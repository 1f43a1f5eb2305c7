"""`architect run`, `architect worker`, `architect report`: execute plans and report on them.

`run FEATURE` runs an in-process worker on the feature until nothing is left to do, with progress
bars per phase and overall and a live table of running tasks (plain log lines when not a terminal).
`worker` is the long-running worker process; several may share one PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from architect.cli.agents_wiring import build_executors, load_optional
from architect.cli.common import ConfigOpt, DatabaseOpt, console, err_console, open_cli_store

# The orchestrator and rich's live display are imported by the commands that use them, so that
# `architect serve` and the other commands do not load them (~5 MiB).
if TYPE_CHECKING:
    from rich.console import Group
    from rich.progress import TaskID

    from architect.orchestrator.worker import Worker, WorkerOptions
    from architect.store.orchestrator import TaskRepo
    from architect.trust import CommandPolicy

__all__ = ["parse_rate", "register"]

_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*([smh]))?\s*$")

RateOpt = Annotated[
    str | None, typer.Option("--rate", help="max task starts across all workers, e.g. 8/s, 30/m")
]
LeaseOpt = Annotated[float, typer.Option("--lease", min=0.5, help="lease seconds (heartbeats every third)")]
GatewayOpt = Annotated[
    str | None,
    typer.Option("--gateway-url", envvar="ARCHITECT_GATEWAY_URL", help="gateway base URL for llm tasks"),
]
GatewayKeyOpt = Annotated[
    str | None, typer.Option("--gateway-key", envvar="ARCHITECT_GATEWAY_KEY", hidden=True)
]
RoleOpt = Annotated[
    list[str] | None, typer.Option("--role-limit", help="per-role concurrency, e.g. backend=2")
]
BackoffOpt = Annotated[float, typer.Option("--backoff", min=0.0, help="retry backoff base seconds (doubles)")]
AllowOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-command",
        help="run only commands and validators matching one of these regexes in full (repeatable); "
        "other tasks are blocked with reason command_not_allowed",
    ),
]


def parse_rate(text: str | None) -> tuple[int, float] | None:
    """'8/s' -> (8, 1.0); '30/m' -> (30, 60.0); '8' -> (8, 1.0)."""
    if text is None:
        return None
    m = _RATE.match(text)
    if not m or int(m.group(1)) < 1:
        raise typer.BadParameter(f"expected a rate like 8/s or 30/m, got {text!r}", param_hint="--rate")
    return int(m.group(1)), {"s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2) or "s"]


def _commands(patterns: list[str] | None) -> CommandPolicy:
    from architect.trust import CommandPolicy

    try:
        return CommandPolicy.of(patterns or [])
    except re.error as exc:
        raise typer.BadParameter(f"not a regular expression: {exc}", param_hint="--allow-command") from None


def _roles(values: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values or []:
        role, sep, n = v.partition("=")
        if not sep or not role or not n.isdigit() or int(n) < 1:
            raise typer.BadParameter(f"expected ROLE=N with N >= 1, got {v!r}", param_hint="--role-limit")
        out[role] = int(n)
    return out


class _Display:
    """Rich progress bars per phase and overall, and a live table of running tasks."""

    def __init__(
        self, repo: TaskRepo, feature: dict[str, Any], worker: Worker, max_phase: int | None
    ) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.repo, self.feature, self.worker, self.max_phase = repo, feature, worker, max_phase
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(), console=console,
        )  # fmt: skip
        self.bars: dict[int | str, TaskID] = {}
        for ph in repo.phases(feature["id"]):
            if max_phase is None or ph["number"] <= max_phase:
                self.bars[ph["number"]] = self.progress.add_task(
                    f"Phase {ph['number']}: {ph['title']}", extra=""
                )
        self.bars["all"] = self.progress.add_task("[bold]Overall", extra="")

    def refresh(self) -> Group:
        from rich.console import Group
        from rich.table import Table

        counts = self.repo.status_counts(self.feature["id"])
        overall = {"done": 0, "total": 0, "failed": 0, "blocked": 0}
        for key, bar in self.bars.items():
            rows = [c for c in counts if (key == "all" and (self.max_phase is None or c["phase"] <= self.max_phase))
                    or c["phase"] == key]  # fmt: skip
            n = {
                s: sum(int(c["n"]) for c in rows if c["status"] == s)
                for s in ("succeeded", "failed", "blocked")
            }
            total = sum(int(c["n"]) for c in rows if c["status"] != "cancelled")
            extra = " ".join(f"{k} {v}" for k, v in (("failed", n["failed"]), ("blocked", n["blocked"])) if v)
            self.progress.update(bar, completed=n["succeeded"], total=total or 1, extra=extra)
            if key == "all":
                overall.update(done=n["succeeded"], total=total)
        table = Table("task", "title", "attempt", "running for", title="Running tasks", expand=False)
        now = time.monotonic()
        for r in sorted(self.worker.running.values(), key=lambda r: r.started):
            table.add_row(
                r.task["key"], r.task["title"][:60], str(r.task["attempt"]), f"{now - r.started:.1f}s"
            )
        parts: list[Any] = [self.progress, table]
        if self.worker.waiting:
            parts.append(f"[yellow]waiting: {self.worker.waiting}[/yellow]")
        return Group(*parts)


async def _run_worker(worker: Worker, display: _Display | None) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    hits = {"n": 0}

    def on_signal() -> None:
        hits["n"] += 1
        if hits["n"] == 1:
            err_console.print("stopping: no new claims; waiting for running tasks (again to abort)")
            worker.stop()
        else:
            for r in list(worker.running.values()):
                if r.job:
                    r.job.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    job = asyncio.create_task(worker.run())
    if display is None:
        return await job
    from rich.live import Live

    with Live(await asyncio.to_thread(display.refresh), console=console, refresh_per_second=4) as live:
        while not job.done():
            await asyncio.wait([job], timeout=0.5)
            live.update(await asyncio.to_thread(display.refresh))
    return await job


def _options(
    lease: float,
    slots: int,
    max_running: int | None,
    rate: str | None,
    roles: list[str] | None,
    poll: float,
    *,
    idle: bool,
    commands: CommandPolicy,
    **claim: Any,
) -> WorkerOptions:
    from architect.orchestrator.worker import WorkerOptions
    from architect.store.orchestrator import ClaimOptions

    r = parse_rate(rate)
    copts = ClaimOptions(
        max_running=max_running, role_limits=_roles(roles), rate=r[0] if r else None,
        rate_period=r[1] if r else 1.0, **claim,
    )  # fmt: skip
    return WorkerOptions(
        slots=slots, lease_s=lease, poll_s=poll, claim=copts, exit_when_idle=idle, commands=commands
    )


def _with_id(opts: WorkerOptions, worker_id: str) -> WorkerOptions:
    import dataclasses

    return dataclasses.replace(opts, worker_id=worker_id)


def run(
    feature: Annotated[str, typer.Argument(help="feature slug or id")],
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="max running tasks (all workers)")
    ] = 3,
    rate: RateOpt = None,
    until_phase: Annotated[
        int | None, typer.Option("--until-phase", min=1, help="stop after this phase")
    ] = None,
    lease: LeaseOpt = 30.0,
    role_limit: RoleOpt = None,
    backoff: BackoffOpt = 2.0,
    poll: Annotated[float, typer.Option("--poll", min=0.01, hidden=True)] = 0.25,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="default: on a terminal")
    ] = None,
    allow_command: AllowOpt = None,
    gateway_url: GatewayOpt = None,
    gateway_key: GatewayKeyOpt = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Run a feature's ready tasks in parallel until nothing is left to do.

    With --config, agent tasks use the config's `agents:` and reach the gateway it names. Exits 0 when
    every task in scope succeeded (or was cancelled), else 1, listing each unfinished task with why:
    failed, blocked, a manual task waiting for a person, an agent whose program is not installed."""
    parse_rate(rate)  # bad options fail before anything is opened
    _roles(role_limit)
    commands = _commands(allow_command)
    from architect.orchestrator.manager import Manager
    from architect.orchestrator.worker import Worker

    cfg = load_optional(config)
    store = open_cli_store(database_url, cfg)
    manager = Manager(store.tasks, backoff_base_s=backoff, audit=store.audit.add_audit)
    f = manager.feature(feature)
    if f["status"] != "active":
        err_console.print(f"[red]error:[/red] feature {f['slug']} is {f['status']}; resume it first")
        raise typer.Exit(2)
    opts = _options(
        lease, concurrency, concurrency, rate, role_limit, poll, idle=True, commands=commands,
        feature_ids=(f["id"],), max_phase=until_phase, run_id=uuid.uuid4().hex[:12],
    )  # fmt: skip
    show = console.is_terminal if progress is None else progress

    def status(msg: str) -> None:
        if not show:
            console.print(f"{time.strftime('%H:%M:%S')} {msg}", highlight=False)

    worker_id = f"run-{opts.claim.run_id}:{os.getpid()}"
    executors, keys = build_executors(store, cfg, gateway_url, gateway_key, worker_id)
    worker = Worker(manager, executors, _with_id(opts, worker_id), on_status=status, keys=keys)
    console.print(
        f"run {opts.claim.run_id}: worker {worker.id} on {f['slug']} (pid {os.getpid()})", highlight=False
    )
    display = _Display(store.tasks, f, worker, until_phase) if show else None
    stats = asyncio.run(_run_worker(worker, display))
    tasks = [t for t in store.tasks.tasks(f["id"]) if until_phase is None or t["phase"] <= until_phase]
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    console.print(
        "done: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" | this worker: {stats}"
    )
    unfinished = _unfinished(tasks, f, worker)
    for key, why in unfinished.items():
        console.print(f"  {key} {why}", highlight=False)
    if unfinished:
        raise typer.Exit(1)


def _unfinished(tasks: list[dict[str, Any]], feature: dict[str, Any], worker: Worker) -> dict[str, str]:
    """Task key -> its state and why, for each task in scope that neither succeeded nor was cancelled:
    failed or blocked (with the reason), a manual task waiting for a person, an agent task whose
    agent cannot run on this worker (its program is not installed), a task pending on those."""
    out: dict[str, str] = {}
    status = {t["key"]: t["status"] for t in tasks}
    for t in tasks:
        key, st = t["key"], t["status"]
        if st in ("succeeded", "cancelled"):
            continue
        if st in ("failed", "blocked"):
            out[key] = f"{st}: {t['reason']}"
        elif st == "ready" and t["executor"] == "manual":
            out[key] = (
                f"waiting for a person: a manual task (complete it with "
                f"`architect plan done {feature['slug']} {key}`)"
            )
        elif st == "ready" and t["executor"] == "agent":
            agent = t.get("agent") or feature.get("agent") or worker.default_agent
            why = worker.missing_agents.get(agent, "not run")
            out[key] = f"waiting: agent {agent}: {why}"
        elif st == "pending":
            deps = [d for d in t["deps"] if status.get(d) != "succeeded"]
            out[key] = "pending: waits for " + (", ".join(deps) or "its dependencies")
        else:
            out[key] = f"{st}: not finished by this run" + (f" ({t['reason']})" if t.get("reason") else "")
    return out


def worker(
    feature: Annotated[
        list[str] | None, typer.Option("--feature", help="only these features (slug or id)")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, help="max running tasks, all workers")
    ] = None,
    slots: Annotated[int, typer.Option("--slots", min=1, help="tasks this worker runs at once")] = 4,
    rate: RateOpt = None,
    lease: LeaseOpt = 30.0,
    role_limit: RoleOpt = None,
    backoff: BackoffOpt = 2.0,
    poll: Annotated[float, typer.Option("--poll", min=0.01, help="seconds between claims when idle")] = 0.25,
    exit_when_idle: Annotated[
        bool, typer.Option("--exit-when-idle", help="stop when nothing is left")
    ] = False,
    allow_command: AllowOpt = None,
    gateway_url: GatewayOpt = None,
    gateway_key: GatewayKeyOpt = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """A long-running worker: claims ready tasks from the store until stopped (Ctrl-C / SIGTERM).

    It runs only tasks whose executable fields were written by the admin, a key with scope
    tasks:execute or the local CLI; others are blocked (untrusted_executable) until approved."""
    parse_rate(rate)
    _roles(role_limit)
    commands = _commands(allow_command)
    from architect.orchestrator.manager import Manager
    from architect.orchestrator.worker import Worker

    cfg = load_optional(config)
    store = open_cli_store(database_url, cfg)
    manager = Manager(store.tasks, backoff_base_s=backoff, audit=store.audit.add_audit)
    ids = tuple(manager.feature(x)["id"] for x in feature) if feature else None
    opts = _options(
        lease,
        slots,
        concurrency,
        rate,
        role_limit,
        poll,
        idle=exit_when_idle,
        commands=commands,
        feature_ids=ids,
    )

    def status(msg: str) -> None:
        console.print(f"{time.strftime('%H:%M:%S')} {msg}", highlight=False)

    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    executors, keys = build_executors(store, cfg, gateway_url, gateway_key, worker_id)
    w = Worker(manager, executors, _with_id(opts, worker_id), on_status=status, keys=keys)
    console.print(f"worker {w.id} started (pid {os.getpid()}, {slots} slots)", highlight=False)
    stats = asyncio.run(_run_worker(w, None))
    console.print(f"worker {w.id} stopped: {stats}", highlight=False)


def report(
    feature: Annotated[str, typer.Argument(help="feature slug or id")],
    fmt: Annotated[str, typer.Option("--format", help="md or json")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to a file")] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """The feature status report, written from the store's records."""
    if fmt not in ("md", "json"):
        raise typer.BadParameter(f"expected md or json, got {fmt!r}", param_hint="--format")
    from architect.orchestrator.report import build_report, render_markdown

    store = open_cli_store(database_url)
    r = build_report(store.tasks, feature)
    text = (
        render_markdown(r)
        if fmt == "md"
        else orjson.dumps(r, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    )
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("worker")(worker)
    app.command("report")(report)
