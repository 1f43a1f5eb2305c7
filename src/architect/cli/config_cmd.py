"""`architect config check|reload`."""

from __future__ import annotations

from typing import Annotated

import typer

from architect.cli.common import console
from architect.config import Config, load_config

__all__ = ["app"]

app = typer.Typer(help="Validate and reload configuration.", no_args_is_help=True)


@app.command("check")
def check(file: Annotated[str, typer.Argument(help="YAML config file")]) -> None:
    """Validate a config file without starting anything, and resolve every deployment's price: each
    one whose price is unknown is named (a warning: the file is still valid)."""
    from architect.gateway.prices import resolve_config
    from architect.gateway.routing import DEFAULT_BASE_URLS

    cfg = load_config(file)
    priced = resolve_config(cfg, DEFAULT_BASE_URLS)
    console.print(
        f"[green]ok[/green] {file}: {len(cfg.providers)} providers, {len(cfg.models)} model groups, "
        f"{len(priced)} deployments",
        highlight=False,
    )
    counts = {s: sum(1 for p in priced if p.resolved.source == s) for s in ("config", "catalogue", "unknown")}
    console.print(
        f"prices: {counts['config']} from the config, {counts['catalogue']} from the price catalogue, "
        f"{counts['unknown']} unknown",
        highlight=False,
    )
    for p in priced:
        if p.resolved.source == "unknown":
            console.print(
                f"[yellow]warning[/yellow] {p.path} ({p.group}: {p.provider} {p.model}): price unknown: "
                f"{p.resolved.detail}",
                highlight=False,
                soft_wrap=True,
            )
    _check_agents(cfg)


def _check_agents(cfg: Config) -> None:
    """Name every configured agent whose program is not installed (its tasks wait until it is)."""
    if not cfg.agents:
        return
    from architect.orchestrator.agents import build_runner

    for i, agent in enumerate(cfg.all_agents()):
        problem = build_runner(agent).missing()
        if problem:
            console.print(
                f"[yellow]warning[/yellow] agents[{i}] ({agent.name}, {agent.runner}): {problem}; its tasks wait",
                highlight=False,
                soft_wrap=True,
            )


@app.command("reference")
def reference() -> None:
    """Print the configuration reference (Markdown) generated from the code."""
    from architect.cli.config_reference import reference_markdown

    typer.echo(reference_markdown(), nl=False)


@app.command("reload")
def reload(
    server: Annotated[str, typer.Option(help="gateway base URL")] = "http://127.0.0.1:8400",
    key: Annotated[str | None, typer.Option(help="admin key", envvar="ARCHITECT_ADMIN_KEY")] = None,
) -> None:
    """Ask a running gateway to re-read its config file (same as SIGHUP)."""
    import httpx

    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        r = httpx.post(f"{server.rstrip('/')}/api/v1/config/reload", headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {server}: {exc}[/red]")
        raise typer.Exit(2) from None
    if r.status_code != 200:
        console.print(
            f"[red]reload refused ({r.status_code}):[/red] {r.json().get('error', {}).get('message')}"
        )
        raise typer.Exit(1)
    console.print(f"[green]reloaded[/green]: {r.json()}")
