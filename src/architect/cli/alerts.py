"""`architect alerts`: recent alert firings and resolutions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from architect.cli.common import DatabaseOpt, JsonOpt, console, open_cli_store, parse_since, print_json
from architect.cli.keys import KeyOpt, ServerOpt, call_server

__all__ = ["register"]


def alerts(
    since: Annotated[str, typer.Option(help="window: 1h, 24h, 7d ...")] = "7d",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Alerts (budget thresholds, error rate, latency SLO, open breakers), newest first."""
    start = parse_since(since)
    if server:
        rows = call_server(server, key, "GET", f"/alerts?since={start}&limit={limit}")["alerts"]
    else:
        store = open_cli_store(database_url)
        try:
            rows = store.alerts.list_alert_events(since=start, limit=limit)
        finally:
            store.close()
    if json:
        print_json({"alerts": rows})
        return
    if not rows:
        console.print(f"no alerts in the last {since}")
        return
    table = Table(title=f"Alerts, last {since}", header_style="bold")
    for col in ("time (UTC)", "rule", "kind", "state", "target", "message"):
        table.add_column(col)
    for r in rows:
        state = "[red]firing[/red]" if r["state"] == "firing" else "[green]resolved[/green]"
        when = dt.datetime.fromtimestamp(r["ts"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(when, r["rule"], r["kind"], state, r.get("target") or "-", r["message"])
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts)
