"""Entry point: assembles the command groups. Each group lives in its own module and exposes
either `register(app)` (top-level commands) or `app` (a sub-command group)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from architect._optional import optional_module
from architect.errors import ArchitectError

__all__ = ["app", "main"]

app = typer.Typer(
    name="architect",
    help="Architect: LLM gateway, delivery orchestrator and insight.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (module, sub-command name or None for top-level commands)
_GROUPS: tuple[tuple[str, str | None], ...] = (
    ("architect.cli.serve", None),
    ("architect.cli.config_cmd", "config"),
    ("architect.cli.db", "db"),
    ("architect.cli.stats", None),
    ("architect.cli.orchestrator", None),
    ("architect.cli.plan", "plan"),
    ("architect.cli.keys", "keys"),
    ("architect.cli.spend", None),
    ("architect.cli.cache", "cache"),
    ("architect.cli.alerts", None),
)


def _assemble() -> None:
    for module, name in _GROUPS:
        mod = optional_module(module)
        if mod is None:
            continue
        if name is None:
            mod.register(app)
        else:
            app.add_typer(mod.app, name=name)


_assemble()


def main() -> None:
    try:
        app()
    except ArchitectError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        sys.exit(2)
