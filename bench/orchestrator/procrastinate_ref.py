"""procrastinate reference for bench.py: defer N no-op jobs, run K worker processes until the queue
is empty, print jobs/s. Runs in a separate throwaway venv (procrastinate is not a project dependency):

    python3 -m venv /tmp/procvenv && /tmp/procvenv/bin/pip install procrastinate 'psycopg[binary]'
    /tmp/procvenv/bin/python bench/orchestrator/procrastinate_ref.py postgresql://... 5000 4
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import time

import procrastinate

CONCURRENCY = 8


def make_app(url: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    def noop() -> None:
        return None

    return app


async def _setup(url: str, n: int) -> None:
    app = make_app(url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        task = app.tasks["noop"]
        for i in range(0, n, 1000):
            await task.batch_defer_async(*({} for _ in range(min(1000, n - i))))


def _work(url: str, ready: mp.synchronize.Event, go: mp.synchronize.Event) -> None:
    app = make_app(url)

    async def run() -> None:
        async with app.open_async():
            ready.set()
            go.wait()
            await app.run_worker_async(concurrency=CONCURRENCY, wait=False, install_signal_handlers=False)

    asyncio.run(run())


def main() -> None:
    url, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    asyncio.run(_setup(url, n))
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(workers)]
    procs = [ctx.Process(target=_work, args=(url, r, go)) for r in readies]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(60)
    t0 = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    print(n / (time.perf_counter() - t0))


if __name__ == "__main__":
    main()
