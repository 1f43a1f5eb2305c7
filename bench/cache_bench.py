"""Response-cache benchmark.

    .venv/bin/python bench/cache_bench.py [--requests 2000] [--conc 16] [--entries 100000] [--skip-semantic]

1. Hit vs miss through the real gateway app (ASGI, driven in process, no client-side HTTP) against
   the zero-delay stub upstream running in a separate process, so the CPU measured (process time of
   this process) is the gateway's alone. A miss is a distinct deterministic request (upstream call +
   store), a hit is a repeated one served from L1. Reports CPU per request and throughput.
2. Semantic vector search: p50/p95 of one top-3 search in a usearch index holding `--entries`
   384-dim unit vectors (MiniLM's size), f16 as in production; the embedding of one query is timed
   separately for both offline models.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STUB = """
import sys, time
sys.path.insert(0, {root!r})
from tests.stubs.openai_stub import StubServer
s = StubServer(); s.start(); print(s.url, flush=True)
while True: time.sleep(3600)
"""


def start_stub() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUB.format(root=str(ROOT))], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


class Driver:
    """Sends requests straight into the ASGI app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def post(self, body: bytes) -> tuple[int, dict[bytes, bytes]]:
        sent = False
        out: dict[str, Any] = {}
        forever = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await forever.wait()
            return {"type": "http.disconnect"}

        async def send(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                out["status"] = msg["status"]
                out["headers"] = dict(msg["headers"])

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/chat/completions",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
        await self.app(scope, receive, send)
        return out["status"], out["headers"]


def _body(i: int) -> bytes:
    return orjson.dumps(
        {
            "model": "m",
            "temperature": 0,
            "max_tokens": 32,
            "messages": [{"role": "user", "content": f"Summarise ticket number {i} in one line."}],
        }
    )


async def _phase(driver: Driver, bodies: list[bytes], conc: int, expect: str) -> dict[str, float]:
    queue = list(reversed(bodies))
    tiers: dict[str, int] = {}

    async def worker() -> None:
        while queue:
            status, headers = await driver.post(queue.pop())
            assert status == 200, status
            t = headers[b"x-architect-cache"].decode()
            tiers[t] = tiers.get(t, 0) + 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(conc)])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert tiers.get(expect, 0) == len(bodies), tiers
    return {"requests": len(bodies), "cpu_us_per_req": cpu / len(bodies) * 1e6, "rps": len(bodies) / wall}


async def hit_vs_miss(n: int, conc: int) -> dict[str, Any]:
    from architect.app import create_app
    from architect.config import parse_config
    from architect.runtime import Runtime
    from architect.store import Store

    proc, url = start_stub()
    try:
        cfg = parse_config(
            {
                "providers": [{"name": "stub", "kind": "openai", "base_url": url}],
                "models": [
                    {
                        "name": "m",
                        "deployments": [
                            {
                                "provider": "stub",
                                "model": "stub-model",
                                "price": {"input_per_mtok": 1, "output_per_mtok": 2},
                            }
                        ],
                    }
                ],
                "ledger": {"retention_days": None},
            },
            env={},
        )
        runtime = Runtime(cfg, Store.memory())
        driver = Driver(create_app(runtime))
        await runtime.start()
        try:
            await _phase(driver, [_body(-i - 1) for i in range(200)], conc, "miss")  # warm-up
            miss = await _phase(driver, [_body(i) for i in range(n)], conc, "miss")
            hit = await _phase(driver, [_body(i % 50) for i in range(n)], conc, "hit-l1")
        finally:
            await runtime.stop()
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "miss": miss,
        "hit": hit,
        "cpu_ratio_hit_over_miss": hit["cpu_us_per_req"] / miss["cpu_us_per_req"],
        "throughput_ratio_hit_over_miss": hit["rps"] / miss["rps"],
        "concurrency": conc,
    }


def semantic(entries: int, searches: int = 2000) -> dict[str, Any]:
    import numpy as np

    from architect.cache.semantic import VectorIndex

    rng = np.random.default_rng(0)
    dim = 384
    vecs = rng.standard_normal((entries, dim), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(dim)
    t0 = time.perf_counter()
    index.add(np.arange(entries), vecs)
    build_s = time.perf_counter() - t0
    queries = vecs[rng.integers(0, entries, searches)] + 0.05 * rng.standard_normal(
        (searches, dim), dtype=np.float32
    )
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    times = []
    found = 0
    for q in queries:
        t = time.perf_counter()
        res = index.search(q, 3)
        times.append((time.perf_counter() - t) * 1000)
        found += bool(res)
    times.sort()
    out: dict[str, Any] = {
        "entries": entries,
        "dim": dim,
        "build_s": build_s,
        "searches": searches,
        "search_ms_p50": times[len(times) // 2],
        "search_ms_p95": times[int(len(times) * 0.95)],
        "search_ms_p99": times[int(len(times) * 0.99)],
    }
    from architect.cache.embedders import load_embedder

    for name in ("static", "minilm"):
        try:
            emb = load_embedder(name)
        except Exception as exc:  # the extra may be partly installed
            out[f"embed_{name}"] = f"unavailable: {exc}"
            continue
        emb.embed(["warm up"])
        ts = []
        for i in range(30):
            t = time.perf_counter()
            emb.embed([f"How do I configure the retry policy for deployment number {i}?"])
            ts.append((time.perf_counter() - t) * 1000)
        ts.sort()
        out[f"embed_{name}_ms_p50"] = statistics.median(ts)
        out[f"embed_{name}_ms_p95"] = ts[int(len(ts) * 0.95)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--skip-semantic", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result: dict[str, Any] = {"hit_vs_miss": asyncio.run(hit_vs_miss(args.requests, args.conc))}
    if not args.skip_semantic:
        result["semantic"] = semantic(args.entries)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    hv = result["hit_vs_miss"]
    ok = hv["cpu_ratio_hit_over_miss"] <= 1 / 3 and hv["throughput_ratio_hit_over_miss"] >= 2
    print(
        f"hit/miss CPU ratio {hv['cpu_ratio_hit_over_miss']:.3f} (bar <= 0.333), throughput ratio "
        f"{hv['throughput_ratio_hit_over_miss']:.2f} (bar >= 2): {'PASS' if ok else 'FAIL'}"
    )
    if "semantic" in result:
        s = result["semantic"]
        print(
            f"vector search p95 {s['search_ms_p95']:.2f} ms at {s['entries']:,} entries (bar <= 5 ms): "
            f"{'PASS' if s['search_ms_p95'] <= 5 else 'FAIL'}"
        )


if __name__ == "__main__":
    main()
