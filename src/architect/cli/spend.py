"""`architect spend --by project --since 7d`: cost, requests and tokens per project, key, model...
plus the budgets and what is left of them."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from architect.cli.common import (
    DatabaseOpt,
    JsonOpt,
    console,
    open_cli_store,
    parse_since,
    print_json,
    unpriced_note,
    usd_or_unknown,
)
from architect.cli.keys import KeyOpt, ServerOpt, call_server

__all__ = ["register"]

_BY = ("project", "key_id", "model_group", "deployment", "provider", "feature", "task", "endpoint")


def spend(
    by: Annotated[str, typer.Option(help=f"one of {', '.join(_BY)}")] = "project",
    since: Annotated[str, typer.Option(help="window: 24h, 7d, 30d ...")] = "7d",
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Spend per project (or key, model group, ...) over a window, and the budgets. A cost leaves out
    the calls whose price is unknown and says how many."""
    if by not in _BY:
        raise typer.BadParameter(f"choose one of {', '.join(_BY)}", param_hint="--by")
    start = parse_since(since)
    if server:
        rows = call_server(server, key, "GET", f"/spend?by={by}&since={start}")["rows"]
        budgets = call_server(server, key, "GET", "/budgets")["budgets"]
    else:
        store = open_cli_store(database_url)
        try:
            rows = store.spend.between(start, time.time() + 1, by)
            budgets = store.budgets.list_budgets()
        finally:
            store.close()
    if json:
        print_json({"by": by, "since": start, "rows": rows, "budgets": budgets})
        return
    _print(by, since, rows, budgets)


def _print(by: str, since: str, rows: list[dict[str, Any]], budgets: list[dict[str, Any]]) -> None:
    table = Table(title=f"Spend by {by}, last {since}", header_style="bold")
    for col, just in (
        (by, "left"),
        ("requests", "right"),
        ("tokens in/out", "right"),
        ("cost", "right"),
        ("cache saved", "right"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            str(r[by]) if r[by] is not None else "-",
            f"{r['requests']:,}",
            f"{r['prompt_tokens']:,}/{r['completion_tokens']:,}",
            usd_or_unknown(r["cost_usd"], r["requests"], r.get("unpriced") or 0),
            f"${r['cache_saved_usd']:,.4f}",
        )
    console.print(table if rows else f"no calls in the last {since}")
    note = unpriced_note(sum(r.get("unpriced") or 0 for r in rows))
    if note:
        console.print(f"[yellow]{note}[/yellow]", highlight=False)
    if budgets:
        bt = Table(title="Budgets (current window)", header_style="bold")
        for col in ("scope", "target", "period", "limit", "spent", "held", "left", "used"):
            bt.add_column(col)
        for b in budgets:
            used = b["spent_usd"] / b["limit_usd"] if b["limit_usd"] else 0
            colour = "red" if used >= 1 else "yellow" if used >= 0.8 else "green"
            bt.add_row(
                b["scope"],
                b["target"],
                b["period"],
                f"${b['limit_usd']:,.2f}",
                f"${b['spent_usd']:,.4f}",
                f"${b['reserved_usd']:,.4f}",
                f"${b['remaining_usd']:,.4f}",
                f"[{colour}]{100 * used:.0f}%[/{colour}]",
            )
        console.print(bt)


def register(app: typer.Typer) -> None:
    app.command("spend")(spend)
