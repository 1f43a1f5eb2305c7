"""`architect keys create|list|route|revoke|rotate`: on the local store directly, or against a running
server with `--server URL --key K` (then the audit log records the server-side principal)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from architect.access.audit import local_actor
from architect.access.keys import KeyService, parse_budget
from architect.cli.common import DatabaseOpt, JsonOpt, console, err_console, open_cli_store, print_json
from architect.errors import ArchitectError, GatewayError
from architect.money import usd
from architect.routing.policy import RouteSettings

__all__ = ["app", "call_server"]

app = typer.Typer(help="Virtual API keys: create, list, route, revoke, rotate.", no_args_is_help=True)

ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help="a running Architect (http://host:port)", envvar="ARCHITECT_SERVER"),
]
KeyOpt = Annotated[
    str | None, typer.Option("--key", help="admin key for --server", envvar="ARCHITECT_ADMIN_KEY")
]


def call_server(server: str, key: str | None, method: str, path: str, body: Any = None) -> Any:
    """One JSON request to the server's /api/v1; errors become ArchitectError with the server's message."""
    data = orjson.dumps(body) if body is not None else None
    req = urllib.request.Request(server.rstrip("/") + "/api/v1" + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return orjson.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            msg = orjson.loads(exc.read())["error"]["message"]
        except Exception:
            msg = exc.reason
        raise GatewayError(f"{server}: HTTP {exc.code}: {msg}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ArchitectError(f"cannot reach {server}: {getattr(exc, 'reason', exc)}") from None


def _local(database_url: str | None) -> KeyService:
    store = open_cli_store(database_url)
    return KeyService(store.keys, store.budgets, store.audit)


def _tags(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if part.strip():
            k, sep, v = part.partition("=")
            if not sep or not k.strip() or not v.strip():
                raise typer.BadParameter(f"expected key=value pairs, got {part!r}", param_hint="--tags")
            out[k.strip()] = v.strip()
    return out


def _projects(text: str | None) -> str | list[str] | None:
    names = [p.strip() for p in (text or "").split(",") if p.strip()]
    if names == ["*"]:
        return "*"
    return names or None


QualityOpt = Annotated[
    float | None,
    typer.Option(
        "--quality-target",
        help="route: an auto group takes the cheapest candidate predicted to reach it (0-1)",
    ),
]
CostWeightOpt = Annotated[
    float | None,
    typer.Option("--cost-weight", help="route: instead, max P(acceptable) - weight x price / dearest price"),
]
PrivacyOpt = Annotated[
    str | None,
    typer.Option("--privacy", help="route: local-only sends the key's calls only to local: true deployments"),
]


def _route(quality_target: float | None, cost_weight: float | None, privacy: str | None) -> dict[str, object]:
    """The route settings given on the command line, checked (an error names the option's field)."""
    given = {"quality_target": quality_target, "cost_weight": cost_weight, "privacy": privacy}
    return RouteSettings.parse(given, where="route").as_dict()


def _show_secret(secret: str, view: dict[str, Any], json: bool, verb: str) -> None:
    if json:
        print_json({"key": secret, **view})
        return
    console.print(f"[green]{verb}[/green] key {view['id']} ({view['name']})")
    console.print("secret (shown only now, store it safely):")
    typer.echo(secret)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="a label for the key")],
    budget_usd: Annotated[str | None, typer.Option(help="e.g. 50/month, 5/day, 100/total")] = None,
    rpm: Annotated[int | None, typer.Option(min=1, help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="tokens per minute")] = None,
    models: Annotated[str | None, typer.Option(help="allowed model groups, comma-separated")] = None,
    tags: Annotated[str | None, typer.Option(help="default tags: project=shop,team=web")] = None,
    expires_days: Annotated[float | None, typer.Option(help="expire after this many days")] = None,
    projects: Annotated[
        str | None,
        typer.Option(
            help="projects the key may put spend on and see, comma-separated, or '*' for all "
            "(the project of --tags is always granted)"
        ),
    ] = None,
    scopes: Annotated[
        str | None,
        typer.Option(
            help="granted scopes, comma-separated: tasks:execute (may write task fields that run code)"
        ),
    ] = None,
    quality_target: QualityOpt = None,
    cost_weight: CostWeightOpt = None,
    privacy: PrivacyOpt = None,
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Create a key; its secret is printed once."""
    body: dict[str, Any] = {
        "name": name,
        "rpm": rpm,
        "tpm": tpm,
        "models": [m.strip() for m in models.split(",") if m.strip()] if models else None,
        "tags": _tags(tags),
        "expires_at": time.time() + expires_days * 86400 if expires_days else None,
        "projects": _projects(projects),
        "scopes": [x.strip() for x in scopes.split(",") if x.strip()] if scopes else None,
        "route": _route(quality_target, cost_weight, privacy) or None,
    }
    if budget_usd:
        body["budget_usd"], body["budget_period"] = parse_budget(budget_usd)
    if server:
        out = call_server(server, key, "POST", "/keys", {k: v for k, v in body.items() if v is not None})
        secret, view = out.pop("key"), out
    else:
        secret, view = _local(database_url).create(actor=local_actor(), **body)
    _show_secret(secret, view, json, "created")


@app.command("list")
def list_keys(
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
    all_keys: Annotated[
        bool, typer.Option("--all", help="also the temporary keys minted for task attempts")
    ] = False,
) -> None:
    """List keys with their limits and budgets (never their secrets)."""
    path = "/keys?temporary=true" if all_keys else "/keys"
    keys = (
        call_server(server, key, "GET", path)["keys"]
        if server
        else _local(database_url).list(temporary=all_keys)
    )
    if json:
        print_json({"keys": keys})
        return
    table = Table(title="Architect keys", header_style="bold")
    for col in (
        "id",
        "name",
        "prefix",
        "status",
        "rpm",
        "tpm",
        "models",
        "projects",
        "tags",
        "scopes",
        "route",
        "budgets",
    ):
        table.add_column(col)
    for k in keys:
        status = "revoked" if k["revoked"] else "expired" if k.get("expired") else "active"
        table.add_row(
            k["id"],
            k["name"],
            k["prefix"] + "…",
            status,
            str(k["rpm"] or "-"),
            str(k["tpm"] or "-"),
            ",".join(k["models"] or []) or "all",
            "all" if k.get("projects") == "*" else ",".join(k.get("projects") or []) or "-",
            ",".join(f"{a}={b}" for a, b in (k["tags"] or {}).items()) or "-",
            ",".join(k.get("scopes") or []) or "-",
            ",".join(f"{a}={b}" for a, b in (k.get("route") or {}).items()) or "-",
            "; ".join(f"{usd(b['spent_usd'])}/{usd(b['limit_usd'])} per {b['period']}" for b in k["budgets"])
            or "-",
        )
    console.print(table)


@app.command("route")
def route(
    key_id: Annotated[str, typer.Argument(help="the key's id (key_...)")],
    quality_target: QualityOpt = None,
    cost_weight: CostWeightOpt = None,
    privacy: PrivacyOpt = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove the key's route settings")] = False,
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Set a key's route settings (they replace the ones it had), or remove them with --clear."""
    settings = _route(quality_target, cost_weight, privacy)
    if clear == bool(settings):
        raise typer.BadParameter("give --quality-target, --cost-weight and/or --privacy, or --clear alone")
    if server:
        view = call_server(server, key, "PATCH", f"/keys/{key_id}", {"route": settings or None})
    else:
        view = _local(database_url).set_route(key_id, settings or None, actor=local_actor())
    if json:
        print_json(view)
    else:
        shown = "; ".join(f"{k}={v}" for k, v in (view.get("route") or {}).items()) or "none"
        err_console.print(f"[green]route of[/green] {view['id']} ({view['name']}): {shown}")


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (key_...)")],
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Revoke a key (refused everywhere within a second)."""
    if server:
        view = call_server(server, key, "POST", f"/keys/{key_id}/revoke")
    else:
        view = _local(database_url).revoke(key_id, actor=local_actor())
    if json:
        print_json(view)
    else:
        err_console.print(f"[green]revoked[/green] {view['id']} ({view['name']})")


@app.command("rotate")
def rotate(
    key_id: Annotated[str, typer.Argument(help="the key's id (key_...)")],
    server: ServerOpt = None,
    key: KeyOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Give a key a new secret (same id, limits and budgets); the old secret stops working."""
    if server:
        out = call_server(server, key, "POST", f"/keys/{key_id}/rotate")
        secret, view = out.pop("key"), out
    else:
        secret, view = _local(database_url).rotate(key_id, actor=local_actor())
    _show_secret(secret, view, json, "rotated")
