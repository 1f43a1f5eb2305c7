"""What holds the memory of a gateway process: resident memory added by each import on the way to
serving (in the order `architect serve` takes them), and the Python heap by package (tracemalloc)
when idle and after load.

    python bench/memory_profile.py imports
    python bench/memory_profile.py stages [--config bench/gateway/architect-bench.yaml]
    python bench/memory_profile.py heap [--seconds 20] [--conc 32] [--config bench/gateway/architect-bench.yaml]

`imports` runs in a fresh interpreter and prints VmRSS after each step. `stages` follows `architect
serve`'s start-up in a fresh interpreter (CLI import, config, store, runtime, app, start; the store
is the config's or ARCHITECT_HOME's) and prints VmRSS after each. `heap` runs the gateway in
this process under tracemalloc (which slows it down), sends non-streaming load with wrk from a thread
against the shared mock upstream, and prints the traced heap grouped by package before and after;
native memory (shared libraries, tiktoken's Rust tables, SQLite's page cache) is in RSS, not in the
traced heap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from memory_bench import free_port, shared_mock, status_kb, wait_up, wrk  # noqa: E402

STEPS = [
    ("interpreter + asyncio, ssl", "import asyncio, ssl"),
    ("uvloop, httptools, uvicorn", "import uvloop, httptools, uvicorn"),
    ("typer, rich (the CLI)", "import typer, rich.console"),
    ("pydantic + architect.config", "import architect.config"),
    ("sqlalchemy + architect.store", "import architect.store"),
    ("starlette + architect.gateway.app", "import architect.gateway.app"),
    ("architect.cli.main (every command group)", "import architect.cli.main"),
    ("the composition root (access, cache, metrics services)", "import architect.runtime"),
    ("web routes, prometheus", "import architect.web.routes, architect.metrics.prometheus"),
    ("the /api/v1 app (fastapi + routers)", "import architect.api, architect.api.core, architect.api.access, architect.api.metrics, architect.api.orchestrator, architect.api.cache"),
    ("alembic (only to migrate)", "import alembic.command, alembic.script"),
    ("aiohttp (no longer used)", "import aiohttp"),
    ("psycopg (PostgreSQL only)", "import psycopg"),
    ("redis (L2 cache only)", "import redis.asyncio"),
    ("tiktoken + o200k_base (no usage only)", "from architect.gateway import tokens; tokens.count_text('x')"),
]  # fmt: skip


def imports() -> None:
    code = "\n".join(
        [
            "import sys",
            "def rss():",
            "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024",
            "prev = rss(); print(f'| bare interpreter | {prev:.1f} | |')",
            "for name, stmt in " + repr(STEPS) + ":",
            "    exec(stmt)",
            "    now = rss(); print(f'| {name} | {now:.1f} | +{now - prev:.1f} |'); prev = now",
        ]
    )
    print("| step | VmRSS MiB | added |\n|---|---:|---:|")
    subprocess.run([sys.executable, "-c", code], check=True)


STAGES = """
import asyncio, sys
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024
prev = rss()
print(f"| interpreter + asyncio | {prev:.1f} | |")
def step(name):
    global prev
    now = rss(); print(f"| {name} | {now:.1f} | +{now - prev:.1f} |"); prev = now
import architect.cli.main; step("import architect.cli.main (the command line)")
from architect.cli.common import open_cli_store
from architect.config import load_config
cfg = load_config(sys.argv[1]); step("load the config")
store = open_cli_store(None, cfg); step("open the store (migrated or checked)")
from architect.app import create_app
from architect.runtime import Runtime
runtime = Runtime(cfg, store); step("build the runtime")
app = create_app(runtime); step("build the app")
async def main():
    await runtime.start(); step("start the runtime")
    await asyncio.sleep(3); step("3 s later (background start-up work)")
    await runtime.stop()
asyncio.run(main())
"""


def stages(config: Path) -> None:
    print("| stage | VmRSS MiB | added |\n|---|---:|---:|")
    env = {**os.environ, "BENCH_UPSTREAM_PORT": os.environ.get("BENCH_UPSTREAM_PORT", "18080")}
    subprocess.run([sys.executable, "-c", STAGES, str(config)], check=True, env=env)


def _package(filename: str) -> str:
    parts = Path(filename).parts
    if "architect" in parts:
        i = len(parts) - 1 - parts[::-1].index("architect")
        sub = parts[i + 1] if i + 1 < len(parts) - 1 else parts[i + 1].removesuffix(".py")
        return f"architect.{sub}"
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    return "stdlib/other" if "lib" in parts else filename


def _by_package(snap: tracemalloc.Snapshot) -> Counter[str]:
    out: Counter[str] = Counter()
    for stat in snap.statistics("filename"):
        out[_package(stat.traceback[0].filename)] += stat.size
    return out


def heap(args: argparse.Namespace) -> None:
    tracemalloc.start(1)
    import uvicorn

    from architect.app import create_app
    from architect.config import load_config
    from architect.runtime import Runtime
    from architect.store import open_store

    up, gw = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp(prefix="memprof-"))
    os.environ["BENCH_UPSTREAM_PORT"] = str(up)
    mock = subprocess.Popen([sys.executable, str(shared_mock()), str(up)], stdout=subprocess.DEVNULL)
    url = f"sqlite:///{tmp / 'a.db'}"
    # migrated by another process, as for a server restarting on its database (no Alembic here)
    subprocess.run([sys.executable, "-m", "architect", "db", "upgrade", "--database-url", url], check=True,
                   capture_output=True)  # fmt: skip
    store = open_store(url)
    runtime = Runtime(load_config(str(args.config)), store)
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=gw, log_level="warning", lifespan="on")
    )
    body = tmp / "body.json"
    body.write_text(
        json.dumps(
            {"model": "mock-model", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
        )
    )
    snaps: dict[str, tuple[tracemalloc.Snapshot, int]] = {}

    def drive() -> None:
        wait_up(f"http://127.0.0.1:{up}/health")
        wait_up(f"http://127.0.0.1:{gw}/healthz")
        time.sleep(1)
        snaps["idle"] = (tracemalloc.take_snapshot(), status_kb(os.getpid(), "VmRSS"))
        r = wrk(f"http://127.0.0.1:{gw}/v1/chat/completions", body, args.conc, args.seconds, "bench")
        print(f"load: {r['rps']} req/s, {r['requests']} requests, {r['errors']} errors", flush=True)
        time.sleep(1)
        snaps["after load"] = (tracemalloc.take_snapshot(), status_kb(os.getpid(), "VmRSS"))
        server.should_exit = True

    threading.Thread(target=drive, daemon=True).start()
    try:
        asyncio.run(server.serve())
    finally:
        mock.terminate()
        store.close()
    idle, after = _by_package(snaps["idle"][0]), _by_package(snaps["after load"][0])
    print(f"\nVmRSS idle {snaps['idle'][1] / 1024:.1f} MiB, after load {snaps['after load'][1] / 1024:.1f} MiB "
          f"(tracemalloc's own bookkeeping included); traced Python heap by package, MiB:\n")  # fmt: skip
    print("| package | idle | after load |\n|---|---:|---:|")
    for pkg, _ in (after + idle).most_common(18):
        print(f"| {pkg} | {idle[pkg] / 2**20:.2f} | {after[pkg] / 2**20:.2f} |")
    print(f"| total traced | {sum(idle.values()) / 2**20:.1f} | {sum(after.values()) / 2**20:.1f} |")
    growth = snaps["after load"][0].compare_to(snaps["idle"][0], "lineno")[:8]
    print("\nlargest growth by line:")
    for stat in growth:
        print(f"  {stat.size_diff / 1024:+.0f} KiB  {stat.traceback[0].filename}:{stat.traceback[0].lineno}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["imports", "stages", "heap"])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--conc", type=int, default=32)
    ap.add_argument("--config", type=Path, default=HERE / "gateway" / "architect-bench.yaml")
    args = ap.parse_args()
    if args.what == "imports":
        imports()
    elif args.what == "stages":
        stages(args.config)
    else:
        heap(args)


if __name__ == "__main__":
    main()
