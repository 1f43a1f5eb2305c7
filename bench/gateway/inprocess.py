"""CPU per call of Architect's own request path, without the network: the ASGI app is called directly
(16 concurrent callers) and the upstream is a `MockTransport` answering at once. Ledger writes (SQLite, a
temporary file) and metrics are on; the figure includes the ledger thread, and the thread that writes
stored responses (the run ends when they are all written).

    OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python bench/gateway/inprocess.py [--calls 20000] [--stream]
        [--api chat|messages|responses|responses-nostore] [--one-read] [--profile FILE]

`--api` sends the same one-sentence request through another inbound API (translated to the mock's chat
completions); `--one-read` delivers the mock's stream in one read (as the shared instrument's mock
upstream writes it) instead of one read per event; `--profile FILE` runs the measured calls under cProfile (the event loop's thread only)
and writes its stats to FILE (read them with `python -m pstats FILE`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
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


READS = EVENTS  # what each read of a stream gets (`--one-read`: all of it at once)


async def upstream(request: HTTPRequest) -> HTTPResponse:
    if request.stream:

        async def events() -> AsyncIterator[bytes]:
            for ev in READS:
                yield ev

        return HTTPResponse(200, {"content-type": "text/event-stream"}, events())

    async def one() -> AsyncIterator[bytes]:
        yield ANSWER

    async def whole() -> bytes:
        return ANSWER

    return HTTPResponse(200, {"content-type": "application/json"}, one(), None, whole)


PROMPT = "Say hello."
BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": (
        "/v1/chat/completions",
        {"model": "mock-model", "messages": [{"role": "user", "content": PROMPT}]},
    ),
    "messages": (
        "/v1/messages",
        {"model": "mock-model", "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]},
    ),
    "responses": ("/v1/responses", {"model": "mock-model", "input": PROMPT}),
    "responses-nostore": ("/v1/responses", {"model": "mock-model", "input": PROMPT, "store": False}),
}


async def main(
    calls: int, stream: bool, concurrency: int = 16, api: str = "chat", profile: str | None = None
) -> None:
    os.environ.setdefault("BENCH_UPSTREAM_PORT", "18080")
    store = open_store(f"sqlite:///{tempfile.mkdtemp(prefix='inprocess-')}/a.db")
    runtime = Runtime(load_config(str(CONFIG)), store, transports={"mock": MockTransport(upstream)})
    app = create_app(runtime)
    await runtime.start()
    path, body = BODIES[api]
    body = dict(body)
    if stream:
        body["stream"] = True
        if api == "chat":
            body["stream_options"] = {"include_usage": True}
    raw = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
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
    prof = cProfile.Profile() if profile else None
    t0, m0 = time.process_time(), time.thread_time()
    if prof is not None:
        prof.enable()
    await asyncio.gather(*(caller(calls // concurrency) for _ in range(concurrency)))
    await runtime.responses.drain()  # stored responses the writer thread has not written yet
    if prof is not None:
        prof.disable()
    cpu, main_cpu = time.process_time() - t0, time.thread_time() - m0
    await runtime.stop()
    store.close()
    n = calls // concurrency * concurrency
    if prof is not None and profile:
        prof.dump_stats(profile)
    print(
        f"{api} {'stream' if stream else 'nonstream'}: {ok}/{n} ok, {cpu / n * 1e6:.1f} us CPU per call "
        f"({main_cpu / n * 1e6:.1f} on the event loop's thread, {(cpu - main_cpu) / n * 1e6:.1f} on others)"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--api", choices=list(BODIES), default="chat")
    ap.add_argument("--one-read", action="store_true", help="the stream arrives in one read")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the measured calls; stats to FILE")
    a = ap.parse_args()
    if a.one_read:
        READS = [b"".join(EVENTS)]
    uvloop.run(main(a.calls, a.stream, api=a.api, profile=a.profile))
