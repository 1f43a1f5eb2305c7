"""A small Anthropic-shaped HTTP server on 127.0.0.1 for tests (Messages API): checks `x-api-key` and
`anthropic-version`, answers from recorded fixtures (text; with cache reads and writes when the request
has a `system` prompt; a streamed tool use when it has `tools`), fails on request (`script`:
"overloaded" → 529, "bad-json" → an invalid event mid-stream), and records every request with its raw
body (`requests[i]["raw"]`). `/v1/messages/count_tokens` answers 42."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["FIX", "AnthropicStub"]

FIX = Path(__file__).parents[1] / "unit" / "gateway" / "fixtures" / "anthropic"


class AnthropicStub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[str] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def _count(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            {"path": request.path, "headers": dict(request.headers), "body": await request.json()}
        )
        return web.json_response({"input_tokens": 42})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = await request.json()
        self.requests.append(
            {
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
                "raw": raw,
                "path": request.path,
                "query": request.query_string,
            }
        )
        if request.headers.get("x-api-key") != "sk-ant-test" or "anthropic-version" not in request.headers:
            return web.Response(
                status=401, body=(FIX / "error_auth.json").read_bytes(), content_type="application/json"
            )
        mode = self.script.pop(0) if self.script else "ok"
        if mode == "overloaded":
            return web.Response(
                status=529, body=(FIX / "error_overloaded.json").read_bytes(), content_type="application/json"
            )
        if body.get("stream"):
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            name = (
                "stream_tool_use.sse"
                if body.get("tools")
                else "stream_cache.sse"
                if body.get("system")
                else "stream_text.sse"
            )
            for i, event in enumerate((FIX / name).read_bytes().split(b"\n\n")):
                if mode == "bad-json" and i == 4:  # after the first text delta, in a later read
                    await asyncio.sleep(0.05)
                    await resp.write(b'event: content_block_delta\ndata: {"type": oops}\n\n')
                if event.strip():
                    await resp.write(event + b"\n\n")
            await resp.write_eof()
            return resp
        name = "message_cache.json" if body.get("system") else "message_text.json"
        return web.Response(body=(FIX / name).read_bytes(), content_type="application/json")

    def __enter__(self) -> AnthropicStub:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/v1/messages", self._messages)
            app.router.add_post("/v1/messages/count_tokens", self._count)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
