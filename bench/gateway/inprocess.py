"""CPU per call of Architect's own request path, without the network: the ASGI app is called directly
(16 concurrent callers) and the upstream is a `MockTransport` answering at once. Ledger writes (SQLite, a
temporary file) and metrics are on; the figure includes the ledger thread.

    OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python bench/gateway/inprocess.py [--calls 20000] [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import uvloop

from architect.app import create_app
from architect.config import load_config
from architect.gateway.providers.transport import HTTPRequest, HTTPResponse, MockTransport
from architect.runtime import Runtime
from architect.store import open_store

CONFIG = Path(__file__).with_name("architect-bench.yaml")
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "mock-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
)
CHUNK = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
EVENTS = [b"data: " + orjson.dumps(CHUNK) + b"\n\n"] * 3 + [
    b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}\n\n',
    b"data: [DONE]\n\n",
]


async def upstream(request: HTTPRequest) -> HTTPResponse:
    if request.stream:

        async def events() -> AsyncIterator[bytes]:
            for ev in EVENTS:
                yield ev

        return HTTPResponse(200, {"content-type": "text/event-stream"}, events())

    async def one() -> AsyncIterator[bytes]:
        yield ANSWER

    async def whole() -> bytes:
        return ANSWER

    return HTTPResponse(200, {"content-type": "application/json"}, one(), None, whole)


async def main(calls: int, stream: bool, concurrency: int = 16) -> None:
    os.environ.setdefault("BENCH_UPSTREAM_PORT", "18080")
    store = open_store(f"sqlite:///{tempfile.mkdtemp(prefix='inprocess-')}/a.db")
    runtime = Runtime(load_config(str(CONFIG)), store, transports={"mock": MockTransport(upstream)})
    app = create_app(runtime)
    await runtime.start()
    body: dict[str, Any] = {"model": "mock-model", "messages": [{"role": "user", "content": "Say hello."}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    raw = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers}
    ok = 0

    async def call() -> None:
        nonlocal ok
        sent = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.Event().wait()  # never disconnects
            return {"type": "http.disconnect"}

        async def send(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                status.append(msg["status"])

        await app(dict(scope), receive, send)
        ok += status == [200]

    async def caller(n: int) -> None:
        for _ in range(n):
            await call()

    await asyncio.gather(*(caller(200) for _ in range(concurrency)))  # warm-up
    ok = 0
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    sys.setswitchinterval(0.0001)  # as `architect serve`
    t0, m0 = time.process_time(), time.thread_time()
    await asyncio.gather(*(caller(calls // concurrency) for _ in range(concurrency)))
    cpu, main_cpu = time.process_time() - t0, time.thread_time() - m0
    await runtime.stop()
    store.close()
    n = calls // concurrency * concurrency
    print(
        f"{'stream' if stream else 'nonstream'}: {ok}/{n} ok, {cpu / n * 1e6:.1f} us CPU per call "
        f"({main_cpu / n * 1e6:.1f} on the event loop's thread, {(cpu - main_cpu) / n * 1e6:.1f} on others)"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--stream", action="store_true")
    a = ap.parse_args()
    uvloop.run(main(a.calls, a.stream))
