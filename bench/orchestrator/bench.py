"""Orchestrator benchmark: scheduling overhead (no-op tasks) and throughput of a 10,000-task DAG on
SQLite and PostgreSQL with 1 and 4 worker processes, plus, in the same run and on the same
PostgreSQL, a raw `FOR UPDATE SKIP LOCKED` claim-and-complete loop (the floor) and, when a
procrastinate venv is given, procrastinate (a bench-only dependency, never a project one).

    .venv/bin/python bench/orchestrator/bench.py --pg postgresql://postgres@127.0.0.1:5432/test \
        [--procrastinate-python /tmp/procvenv/bin/python] [--tasks 10000] [--runs 3]

Architect workers run with leases, heartbeats, events and dependency propagation all on.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent


class Noop:
    name = "noop"

    async def health(self) -> str | None:
        return None

    async def run(self, ctx: Any) -> Any:
        from architect.orchestrator.executors.base import ExecResult

        return ExecResult(True, None)


def _dag(n: int, width: int) -> list[dict[str, Any]]:
    """n tasks in `width` chains: task i depends on task i - width (a layered DAG)."""
    lines = ["# Feature: Bench", "## Phase 1: All"]
    for i in range(n):
        after = f" (after T{i - width:05d})" if i >= width else ""
        lines.append(f"- [ ] T{i:05d} task{after} `$ true`")
    from architect.orchestrator.plans import parse_markdown

    return parse_markdown("\n".join(lines))


def _worker_proc(url: str, slots: int, ready: Any, go: Any) -> None:
    from architect.orchestrator.manager import Manager
    from architect.orchestrator.worker import Worker, WorkerOptions
    from architect.store import open_store

    store = open_store(url, migrate="none")
    m = Manager(store.tasks)
    w = Worker(
        m, {"command": Noop()}, WorkerOptions(slots=slots, lease_s=30, poll_s=0.01, exit_when_idle=True)
    )
    ready.set()
    go.wait()
    asyncio.run(w.run())
    store.close()


def _fresh_pg(admin_url: str) -> str:
    name = f"bench_orch_{uuid.uuid4().hex[:8]}"
    eng = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _drop_pg(admin_url: str, url: str) -> None:
    eng = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    eng.dispose()


def architect_run(url: str, n: int, workers: int, slots: int, width: int) -> float:
    from architect.orchestrator.manager import Manager
    from architect.store import open_store

    store = open_store(url, migrate="upgrade")
    Manager(store.tasks).import_plans(_dag(n, width))
    f = store.tasks.get_feature("bench")
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(workers)]
    procs = [ctx.Process(target=_worker_proc, args=(url, slots, r, go)) for r in readies]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(120)
    t0 = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    done = sum(1 for t in store.tasks.tasks(f["id"]) if t["status"] == "succeeded")
    store.close()
    assert done == n, f"only {done}/{n} tasks succeeded"
    return n / elapsed


def _raw_proc(url: str, ready: Any, go: Any) -> None:
    import psycopg

    conn = psycopg.connect(url, autocommit=False)
    ready.set()
    go.wait()
    while True:
        with conn.transaction():
            row = conn.execute(
                "UPDATE raw_jobs SET status='running' WHERE id = (SELECT id FROM raw_jobs WHERE status='todo' "
                "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
            ).fetchone()
        if row is None:
            break
        with conn.transaction():
            conn.execute("UPDATE raw_jobs SET status='done' WHERE id = %s", (row[0],))
    conn.close()


def raw_run(url: str, n: int, workers: int) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS raw_jobs")
        c.execute("CREATE TABLE raw_jobs (id serial primary key, status text not null)")
        c.execute("CREATE INDEX ON raw_jobs (status, id)")
        c.execute("INSERT INTO raw_jobs (status) SELECT 'todo' FROM generate_series(1, %s)", (n,))
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(workers)]
    procs = [ctx.Process(target=_raw_proc, args=(url, r, go)) for r in readies]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(60)
    t0 = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    return n / (time.perf_counter() - t0)


def procrastinate_run(python: str, url: str, n: int, workers: int) -> float | None:
    out = subprocess.run(
        [python, str(HERE / "procrastinate_ref.py"), url, str(n), str(workers)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--pg", required=True, help="admin URL of a PostgreSQL server (a database is created per run)"
    )
    ap.add_argument("--procrastinate-python", default=None)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--ref-jobs", type=int, default=5_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--width", type=int, default=100, help="parallel chains in the DAG")
    ap.add_argument("--only", default="", help="comma list: sqlite,pg,raw,procrastinate")
    a = ap.parse_args()
    only = set(filter(None, a.only.split(",")))
    results: dict[str, list[float]] = {}

    def record(name: str, fn: Any) -> None:
        for _ in range(a.runs):
            v = fn()
            if v is not None:
                results.setdefault(name, []).append(v)
                print(f"{name}: {v:,.0f}/s", flush=True)

    for workers in (1, 4):
        if not only or "sqlite" in only:

            def sq(workers: int = workers) -> float:
                with tempfile.TemporaryDirectory() as d:
                    return architect_run(f"sqlite:///{d}/bench.db", a.tasks, workers, a.slots, a.width)

            record(f"architect sqlite, {workers} worker(s), {a.tasks} DAG tasks/s", sq)
        if not only or "pg" in only:

            def pg(workers: int = workers) -> float:
                url = _fresh_pg(a.pg)
                try:
                    return architect_run(url, a.tasks, workers, a.slots, a.width)
                finally:
                    _drop_pg(a.pg, url)

            record(f"architect postgresql, {workers} worker(s), {a.tasks} DAG tasks/s", pg)
        if not only or "raw" in only:

            def raw(workers: int = workers) -> float:
                url = _fresh_pg(a.pg)
                try:
                    return raw_run(url, a.ref_jobs, workers)
                finally:
                    _drop_pg(a.pg, url)

            record(f"raw SKIP LOCKED loop, {workers} process(es), jobs/s", raw)
        if a.procrastinate_python and (not only or "procrastinate" in only):

            def proc(workers: int = workers) -> float | None:
                url = _fresh_pg(a.pg)
                try:
                    return procrastinate_run(a.procrastinate_python, url, a.ref_jobs, workers)
                finally:
                    _drop_pg(a.pg, url)

            record(f"procrastinate, {workers} process(es), no-op jobs/s", proc)
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}")  # fmt: skip
    print("| measurement | median | runs |")
    print("|---|---|---|")
    for name, vals in results.items():
        print(f"| {name} | {statistics.median(vals):,.0f} | {', '.join(f'{v:,.0f}' for v in vals)} |")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent / "src"))
    main()
