"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, with failure injection.

    with StubServer() as stub:             # random free port, background thread
        stub.url                           # "http://127.0.0.1:PORT/v1"
        stub.script.extend(["500", "429:2", "ok"])   # per-request modes, consumed in order
        stub.fail_rate, stub.fail_modes = 0.3, ["500", "timeout", "reset"]
        stub.requests                      # recorded {"path", "headers", "body"} dicts

Modes: "ok", "500", "503", "400", "400-param" (a 400 naming `param`, `code` null), "401", "context" (400
context_length_exceeded), "429" or "429:SECONDS" (Retry-After), "timeout" (sleeps `timeout_s`, default
30 s), "reset" (drops the connection), "truncate"
(a stream that stops mid-way without [DONE]), "slow:SECONDS" (delay then ok), "after:SECONDS:MODE" (delay
then MODE, e.g. a late 500), "stream-error" (an error event inside the stream after the first chunk),
"bad-json" (an event that is not valid JSON after the first chunk, then the rest of the stream and
[DONE], as a buggy upstream sends it), "bad-json-first" (the same event before the first chunk),
"length" (the answer cut at the token limit: finish_reason "length").
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web

__all__ = ["BAD_EVENT", "StubServer"]

# What the "bad-json" modes send: braces and quotes in place, but a bare word where a value belongs.
BAD_EVENT = b'data: {"id": "chatcmpl-stub-s", "choices": [{"index": 0, "delta": {"content": oops}}]}\n\n'


class StubServer:
    def __init__(self, *, seed: int = 0, content: str = "Hello from the stub.", usage: bool = True) -> None:
        self.script: deque[str] = deque()
        self.fail_rate = 0.0
        self.fail_modes: list[str] = ["500"]
        self.delay_s = 0.0
        self.timeout_s = 30.0
        self.content = content
        self.usage = usage
        self.chunks = 4
        self.chunk_delay_s = 0.0
        self.set_cookie: str | None = None  # a Set-Cookie header on every answer
        self.requests: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.cancelled = 0
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> StubServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            app.router.add_post("/v1/embeddings", self._embeddings)
            app.router.add_get("/health", self._health)
            self._runner = web.AppRunner(
                app, access_log=None, handle_signals=False, handler_cancellation=True
            )
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="openai-stub", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("stub server did not start")

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests.clear()
            self.counts.clear()
            self.fail_rate = 0.0
            self.cancelled = 0

    # -- behaviour -------------------------------------------------------------------------------
    def _mode(self) -> str:
        with self._lock:
            if self.script:
                return self.script.popleft()
            if self.fail_rate and self.rng.random() < self.fail_rate:
                return self.rng.choice(self.fail_modes)
        return "ok"

    def _record(self, request: web.Request, body: Any) -> None:
        with self._lock:
            self.requests.append(
                {
                    "path": request.path,
                    "headers": {k.lower(): v for k, v in request.headers.items()},
                    "body": body,
                }
            )
            self.counts[request.path] = self.counts.get(request.path, 0) + 1

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    @staticmethod
    def _error(
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        param: str | None = None,
    ) -> web.Response:
        body = {"error": {"message": message, "type": "stub_error", "param": param, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    async def _failure(self, mode: str, request: web.Request) -> web.StreamResponse | None:
        if mode.startswith("after:"):
            _, seconds, mode = mode.split(":", 2)
            await asyncio.sleep(float(seconds))
        if mode in ("500", "503"):
            return self._error(int(mode), f"stub {mode}")
        if mode == "400":
            return self._error(400, "stub bad request", "invalid_value")
        if mode == "400-param":  # OpenAI's shape for a bad field: `param` named, `code` null
            return self._error(400, "stub: 'messages' is too short", param="messages")
        if mode == "401":
            return self._error(401, "stub: invalid api key", "invalid_api_key")
        if mode == "context":
            return self._error(
                400, "This model's maximum context length is 10 tokens", "context_length_exceeded"
            )
        if mode.startswith("429"):
            ra = mode.split(":", 1)[1] if ":" in mode else "1"
            return self._error(429, "stub rate limit", "rate_limit_exceeded", {"retry-after": ra})
        if mode == "timeout":
            await asyncio.sleep(self.timeout_s)
            return self._error(504, "stub slept")
        if mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("stub reset")
        if mode.startswith("slow:"):
            await asyncio.sleep(float(mode.split(":", 1)[1]))
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self._record(request, body)
        mode = self._mode()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            failed = await self._failure(mode, request)
            if failed is not None:
                return failed
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if body.get("stream"):
                return await self._stream(request, body, mode)
            prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])) + 5
            out = {
                "id": f"chatcmpl-stub-{time.time_ns()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.content},
                        "finish_reason": "length" if mode == "length" else "stop",
                    }
                ],
            }
            if self.usage:
                out["usage"] = {"prompt_tokens": prompt, "completion_tokens": 7, "total_tokens": prompt + 7}
            resp = web.Response(body=orjson.dumps(out), content_type="application/json")
            if self.set_cookie:
                resp.headers["Set-Cookie"] = self.set_cookie
            return resp
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    async def _stream(self, request: web.Request, body: dict[str, Any], mode: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        base = {
            "id": "chatcmpl-stub-s",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
        }
        finish = "length" if mode == "length" else "stop"
        words = self.content.split(" ")
        step = max(1, len(words) // self.chunks)
        pieces = [
            " ".join(words[i : i + step]) + (" " if i + step < len(words) else "")
            for i in range(0, len(words), step)
        ]
        for i, piece in enumerate(pieces):
            if (mode == "bad-json" and i == 1) or (mode == "bad-json-first" and i == 0):
                await resp.write(BAD_EVENT)
            if mode == "truncate" and i == len(pieces) // 2 and i > 0:
                assert request.transport is not None
                request.transport.abort()
                return resp
            if mode == "stream-error" and i == 1:
                await resp.write(
                    b'data: {"error": {"message": "stub stream error", "type": "server_error"}}\n\n'
                )
                await resp.write_eof()
                return resp
            delta = {"content": piece} if i else {"role": "assistant", "content": piece}
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
        await resp.write(
            b"data: "
            + orjson.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            + b"\n\n"
        )
        if self.usage and (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(
                b"data: "
                + orjson.dumps(
                    {
                        **base,
                        "choices": [],
                        "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
                    }
                )
                + b"\n\n"
            )
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self._record(request, body)
        mode = self._mode()
        failed = await self._failure(mode, request)
        if failed is not None:
            return failed
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(inputs))]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)},
            }
        )
