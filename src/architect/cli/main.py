"""Entry point: assembles the command groups. Each group lives in its own module and exposes either
`register(app)` (top-level commands) or `app` (a sub-command group)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from architect.cli import (
    alerts,
    cache,
    config_cmd,
    db,
    keys,
    orchestrator,
    plan,
    project,
    router,
    serve,
    spend,
    stats,
    task,
)
from architect.errors import ArchitectError

__all__ = ["app", "main"]

app = typer.Typer(
    name="architect",
    help="Architect: LLM gateway, delivery orchestrator and insight.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# top-level commands, in the order of `architect --help`, then the sub-command groups
serve.register(app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(db.app, name="db")
stats.register(app)
orchestrator.register(app)
app.add_typer(plan.app, name="plan")
app.add_typer(task.app, name="task")
app.add_typer(keys.app, name="keys")
app.add_typer(project.app, name="project")
spend.register(app)
app.add_typer(cache.app, name="cache")
alerts.register(app)
app.add_typer(router.app, name="router")


def main() -> None:
    try:
        app()
    except ArchitectError as exc:
        # escaped: a message's own brackets (`tasks[t2].agent`) are text, not markup; soft_wrap: a long
        # message stays one line (rich would break it at the terminal's width, 80 columns when piped)
        Console(stderr=True).print(
            f"[red]error:[/red] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True
        )
        sys.exit(2)
