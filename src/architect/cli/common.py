"""Helpers shared by CLI modules: options, store opening, output."""

from __future__ import annotations

import re
import sys
import time
from typing import Annotated

import orjson
import typer
from rich.console import Console

from architect.config import Config, default_database_url, load_config
from architect.store import Store, open_store

__all__ = [
    "ConfigOpt",
    "DatabaseOpt",
    "JsonOpt",
    "console",
    "open_cli_store",
    "parse_since",
    "print_json",
    "resolve_config",
    "unpriced_note",
    "usd_or_unknown",
]

# Piped output (scripts, tests) gets a wide table instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config file", envvar="ARCHITECT_CONFIG")
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="database URL (default: ARCHITECT_DATABASE_URL or ~/.architect/architect.db)"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def usd_or_unknown(cost: float | None, requests: int, unpriced: int) -> str:
    """A total cost as the CLI shows it: "unknown" when every call's price is unknown, "$x (+n unknown)"
    when it leaves n calls out, "-" for no cost; never $0.00 for calls whose price is unknown."""
    if cost is None:
        return "-"
    if unpriced and unpriced >= requests:
        return "unknown"
    text = f"${cost:,.4f}"
    return f"{text} (+{unpriced:,} unknown)" if unpriced else text


def unpriced_note(unpriced: int) -> str | None:
    """The line under a table whose costs leave calls out (None when none)."""
    if not unpriced:
        return None
    calls = "call has" if unpriced == 1 else "calls have"
    return (
        f"{unpriced:,} {calls} an unknown price (its deployment has no price: and the price catalogue "
        "does not know it): the costs above leave them out"
    )


def resolve_config(config: str | None) -> Config:
    return load_config(config)


def open_cli_store(database_url: str | None, config: Config | None = None, *, migrate: str = "auto") -> Store:
    url = database_url or (config.database_url if config else None) or default_database_url()
    return open_store(url, migrate=migrate)  # type: ignore[arg-type]


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """'15m', '24h', '7d' -> a UNIX timestamp that long ago."""
    m = _SPAN.match(text)
    if not m:
        raise typer.BadParameter(f"expected a duration like 15m, 24h or 7d, got {text!r}")
    return (now or time.time()) - float(m.group(1)) * _UNITS[m.group(2)]


def print_json(data: object) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
