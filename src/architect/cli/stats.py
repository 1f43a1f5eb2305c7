"""`architect stats`: per model group and deployment over a time window."""

from __future__ import annotations

import time
from typing import Annotated

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
from architect.metrics.aggregate import STATS_COLUMNS, summarise

__all__ = ["register"]

_GROUPINGS = ("model_group", "deployment", "provider", "key_id", "project", "feature", "task", "endpoint")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _usd(v: float | None) -> str:
    return "-" if v is None else f"${v:,.4f}"


def stats(
    since: Annotated[str, typer.Option(help="window: 15m, 24h, 7d ...")] = "24h",
    by: Annotated[
        str, typer.Option(help=f"comma-separated grouping: {', '.join(_GROUPINGS)}")
    ] = "model_group,deployment",
    model: Annotated[str | None, typer.Option(help="only this model group")] = None,
    project: Annotated[str | None, typer.Option(help="only this project tag")] = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Requests, errors, latency percentiles, tokens, cost and saving against the baseline. Latency and
    TTFT percentiles leave cache hits out (they are counted under the deployment `cache`, with their
    own latency). A cost leaves out the calls whose price is unknown and says how many."""
    keys = [k.strip() for k in by.split(",") if k.strip()]
    bad = [k for k in keys if k not in _GROUPINGS]
    if bad or not keys:
        raise typer.BadParameter(
            f"unknown grouping {', '.join(bad) or '(none)'}; choose from {', '.join(_GROUPINGS)}",
            param_hint="--by",
        )
    start = parse_since(since)
    store = open_cli_store(database_url, migrate="auto")
    where = {k: v for k, v in (("model_group", model), ("project", project)) if v is not None}
    try:
        rows = store.ledger.calls_between(start, time.time() + 1, columns=STATS_COLUMNS, where=where)
    finally:
        store.close()
    result = summarise(rows, keys)
    if json:
        print_json({"since": start, "by": keys, "rows": result})
        return
    if not result:
        console.print(
            f"no calls recorded in the last {since}. Send a request to the gateway first "
            "(`make run` prints an example)."
        )
        return
    table = Table(title=f"Architect calls, last {since}", header_style="bold")
    for k in keys:
        table.add_column(k.replace("_", " "))
    for col in (
        "reqs",
        "err %",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "ttft p50",
        "ttft p95",
        "cache hit p50",
        "tokens in/out",
        "cost",
        "baseline",
        "saving",
    ):
        table.add_column(col, justify="right")
    for r in result:
        table.add_row(
            *[str(r[k]) if r[k] is not None else "-" for k in keys],
            f"{r['requests']:,}",
            f"{100 * r['error_rate']:.1f}",
            _ms(r["p50_ms"]),
            _ms(r["p95_ms"]),
            _ms(r["p99_ms"]),
            _ms(r["ttft_p50_ms"]),
            _ms(r["ttft_p95_ms"]),
            _ms(r["cache_hit_p50_ms"]),
            f"{r['prompt_tokens']:,}/{r['completion_tokens']:,}",
            usd_or_unknown(r["cost_usd"], r["requests"], r["unpriced"]),
            _usd(r["baseline_cost_usd"]),
            _usd(r["saving_usd"]),
        )
    console.print(table)
    note = unpriced_note(sum(r["unpriced"] for r in result))
    if note:
        console.print(f"[yellow]{note}[/yellow]", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
