"""`architect serve`: run the gateway (and the API, dashboard and in-process workers) with uvicorn."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from architect.cli import memory as allocator
from architect.cli.common import ConfigOpt, DatabaseOpt, err_console, open_cli_store
from architect.cli.memory import Decision
from architect.config import Config, architect_home, default_database_url, load_config

__all__ = ["register"]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "simulated.yaml"
# Under ARCHITECT_HOME: ledger rows the database refused (see gateway.ledger).
LEDGER_QUARANTINE_FILE = "ledger-quarantine.jsonl"


def _banner(cfg: Config, host: str, port: int, db: str, memory: Decision) -> None:
    url = f"http://{host}:{port}"
    model = cfg.models[0].name if cfg.models else "MODEL"
    # With an admin key the examples read it from the environment: the curl header is in double
    # quotes so the shell expands the variable, the SDK line reads os.environ.
    header = "Bearer $ARCHITECT_ADMIN_KEY" if cfg.auth.admin_key else "Bearer anything"
    sdk = ("import os; ", "os.environ['ARCHITECT_ADMIN_KEY']") if cfg.auth.admin_key else ("", "'anything'")
    auth = (
        "admin key required (ARCHITECT_ADMIN_KEY)"
        if cfg.auth.admin_key
        else "no admin key set: bound to loopback only and /v1 needs no key"
    )
    sim = any(p.kind == "simulated" for p in cfg.providers)
    err_console.print(
        f"[bold]Architect[/bold] gateway on [cyan]{url}[/cyan]   (store: {db})", highlight=False
    )
    err_console.print(f"  auth: {auth}", highlight=False)
    where = memory.path
    runs_on = f"jemalloc ({where})" if where else "the C library's malloc"
    if where and memory.objects:
        runs_on += ", Python's objects included"
    err_console.print(f"  memory: {runs_on}" + (f"; {memory.note}" if memory.note else ""), highlight=False)
    if not cfg.auth.admin_key:
        err_console.print(
            "  [yellow]open mode is single-user: anyone who can reach this loopback port acts as admin "
            "(including writing tasks that workers run as shell commands); set ARCHITECT_ADMIN_KEY to "
            "share it[/yellow]",
            highlight=False,
        )
    if sim:
        err_console.print(
            "  providers: includes the SIMULATED fleet (answers are synthetic, labelled simulated)",
            highlight=False,
        )
    err_console.print(
        f"  models: {', '.join(g.name for g in cfg.models) or 'none configured'}", highlight=False
    )
    here = Path(sys.executable).parent  # the virtualenv's bin/, where `architect` and the SDK live
    exe = "architect" if shutil.which("architect") == str(here / "architect") else str(here / "architect")
    py = "python" if shutil.which("python") == sys.executable else sys.executable
    err_console.print("\n  try it:", highlight=False)
    err_console.print(
        f'    curl -s {url}/v1/chat/completions -H "Authorization: {header}" '
        f'-H \'Content-Type: application/json\' -d \'{{"model": "{model}", '
        f'"messages": [{{"role": "user", "content": "Say hello"}}]}}\'',
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    err_console.print(
        f"    {py} -c \"{sdk[0]}from openai import OpenAI; c = OpenAI(base_url='{url}/v1', api_key={sdk[1]}); "
        f"print(c.chat.completions.create(model='{model}', messages=[{{'role': 'user', 'content': 'hi'}}])"
        f'.choices[0].message.content)"',
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    err_console.print(f"    {exe} stats --since 1h        dashboard: {url}/ui\n", highlight=False)


def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="listen address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (default 8400)")] = None,
    database_url: DatabaseOpt = None,
    example: Annotated[
        bool, typer.Option("--example", help="use the shipped simulated-fleet example config")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Start the gateway."""
    path = str(EXAMPLE) if example and not config else config
    cfg = load_config(path)
    try:  # before anything starts: choosing jemalloc may execute this command again
        memory = allocator.apply(cfg.server.allocator)
    except allocator.AllocatorError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    import uvicorn

    from architect.app import create_app
    from architect.cli.http_protocol import CoalescingHttpToolsProtocol
    from architect.runtime import Runtime

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = host or cfg.server.host
    port = cfg.server.port if port is None else port
    if not cfg.auth.admin_key and host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"[yellow]no admin key is set, so Architect binds to 127.0.0.1 instead of {host}; "
            "set ARCHITECT_ADMIN_KEY to listen elsewhere[/yellow]"
        )
        host = "127.0.0.1"
    store = open_cli_store(database_url, cfg)
    runtime = Runtime(
        cfg, store, config_path=path, ledger_quarantine=architect_home() / LEDGER_QUARANTINE_FILE
    )
    app = create_app(runtime)
    _banner(
        cfg,
        host,
        port,
        store.redacted_url if database_url or cfg.database_url else default_database_url(),
        memory,
    )
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        loop="uvloop" if os.name != "nt" else "asyncio",
        # joins a response's writes and bounds a request's head (cli/http_protocol.py)
        http=CoalescingHttpToolsProtocol.limited(cfg.server.max_header_bytes),
        ws="none",  # no WebSocket endpoint: an upgrade request is served as plain HTTP
        proxy_headers=False,  # spares a middleware per request; see auth.login.trusted_proxies
        server_header=False,  # no `server: uvicorn` on every response (less to send, less to advertise)
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(uv_config)
    # The ledger writer thread shares the GIL with the event loop; a short switch interval keeps it
    # from holding the loop up for long (the default is 5 ms: a p99 latency spike under load). The
    # writer runs at a lower priority (ledger.writer_nice); when the kernel preempts it holding the GIL,
    # 0.1 ms bounds how long the loop waits. Together the two narrowed the p99; neither did alone.
    sys.setswitchinterval(0.0001)
    on_glibc = memory.allocator == "system"
    if on_glibc:
        allocator.limit_malloc_arenas(allocator.MALLOC_ARENAS)
    trimmer = allocator.MallocTrimmer(cfg.server.malloc_trim_s if on_glibc else 0.0)
    trimmer.start()
    # Long-lived start-up objects are moved out of the collector's view, and young collections run
    # less often: fewer, shorter GC pauses on the request path.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def reload_config() -> None:
            async def do() -> None:
                try:
                    await runtime.reload(load_config(path))
                except Exception as exc:  # keep the old config
                    err_console.print(f"[red]config reload failed, keeping the old config:[/red] {exc}")

            runtime.spawn(do())

        try:
            loop.add_signal_handler(signal.SIGHUP, reload_config)
        except (NotImplementedError, RuntimeError):
            pass
        await server.serve()

    try:
        asyncio.run(main()) if os.name == "nt" else _run_uvloop(main)
    finally:
        trimmer.stop()
        store.close()


def _run_uvloop(main: object) -> None:
    import uvloop

    uvloop.run(main())  # type: ignore[operator]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
