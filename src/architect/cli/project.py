"""`architect project settings show|set|clear PROJECT`: a project's route settings (the quality target,
cost weight and privacy its calls' `auto` routes use; docs/routing.md), on the local store directly or
against a running server with `--server URL --key K` (its rules: the admin key, or a key granted the
project with scope tasks:execute). Every change is audited."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from architect.access.audit import local_actor
from architect.cli.common import DatabaseOpt, JsonOpt, console, open_cli_store, print_json
from architect.cli.keys import KeyOpt, ServerOpt, call_server
from architect.config_routing import MAX_COST_WEIGHT, PRIVACY
from architect.errors import NotFoundInStore

__all__ = ["app"]

app = typer.Typer(help="Projects: their route settings.", no_args_is_help=True)
settings_app = typer.Typer(help="A project's route settings (auto routes).", no_args_is_help=True)
app.add_typer(settings_app, name="settings")

ProjectArg = Annotated[str, typer.Argument(help="the project's name")]
_FIELDS = ("quality_target", "cost_weight", "privacy")


def _out(project: str, row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"project": project, "settings": {}, "updated_at": None, "updated_by": None}
    return {
        "project": project,
        "settings": {k: row[k] for k in _FIELDS if row.get(k) is not None},
        "updated_at": row.get("updated_at"),
        "updated_by": row.get("updated_by"),
    }


def _show(out: dict[str, Any], json: bool) -> None:
    if json:
        print_json(out)
        return
    shown = (
        ", ".join(f"{k}={v}" for k, v in out["settings"].items()) or "none (the auto group's defaults apply)"
    )
    console.print(f"project {out['project']}: {shown}")


def _path(project: str) -> str:
    from urllib.parse import quote

    return f"/projects/{quote(project, safe='')}/settings"


@settings_app.command("show")
def show(
    project: ProjectArg,
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """A project's route settings."""
    if server:
        out = call_server(server, key, "GET", _path(project))
    else:
        out = _out(project, open_cli_store(database_url).routing.get_settings(project))
    _show(out, json)


def _check(quality_target: float | None, cost_weight: float | None, privacy: str | None) -> dict[str, Any]:
    if quality_target is not None and not (0.0 < quality_target < 1.0):
        raise typer.BadParameter("must be between 0 and 1 (exclusive)", param_hint="--quality-target")
    if cost_weight is not None and not (math.isfinite(cost_weight) and 0.0 <= cost_weight <= MAX_COST_WEIGHT):
        raise typer.BadParameter(f"must be from 0 to {MAX_COST_WEIGHT:g}", param_hint="--cost-weight")
    if privacy is not None and privacy not in PRIVACY:
        raise typer.BadParameter("use any or local-only", param_hint="--privacy")
    out = {"quality_target": quality_target, "cost_weight": cost_weight, "privacy": privacy}
    if not any(v is not None for v in out.values()):
        raise typer.BadParameter("give --quality-target, --cost-weight or --privacy (or use clear)")
    return {k: v for k, v in out.items() if v is not None}


@settings_app.command("set")
def set_settings(
    project: ProjectArg,
    quality_target: Annotated[
        float | None, typer.Option(help="0-1: the cheapest candidate with P(acceptable) at least this")
    ] = None,
    cost_weight: Annotated[
        float | None, typer.Option(help=">= 0: instead of a target, maximise P - weight x relative price")
    ] = None,
    privacy: Annotated[
        str | None, typer.Option(help="any or local-only (only deployments marked local)")
    ] = None,
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Set a project's route settings (those not given are cleared)."""
    body = _check(quality_target, cost_weight, privacy)
    if server:
        out = call_server(server, key, "PUT", _path(project), body)
    else:
        store = open_cli_store(database_url)
        before = store.routing.get_settings(project)
        row = store.routing.put_settings(project, body, actor=local_actor())
        store.audit.add_audit(
            local_actor(), "project.settings", project, before and _out(project, before)["settings"], body
        )
        out = _out(project, row)
    _show(out, json)


@settings_app.command("clear")
def clear(
    project: ProjectArg,
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Clear a project's route settings."""
    if server:
        out = call_server(server, key, "DELETE", _path(project))
    else:
        store = open_cli_store(database_url)
        before = store.routing.get_settings(project)
        if before is None:
            raise NotFoundInStore(f"project {project!r}: no settings")
        store.routing.delete_settings(project)
        store.audit.add_audit(
            local_actor(), "project.settings.delete", project, _out(project, before)["settings"], None
        )
        out = {"project": project, "deleted": True}
    if json:
        print_json(out)
    else:
        console.print(f"project {project}: route settings cleared")
