"""An OpenAI-compatible chat completions server on 127.0.0.1 that answers by the request's content:
`reply(body)` returns the assistant message to send (`{"content": ..., "tool_calls": [...]}`), or an
awaitable of it (a reply that holds the request until the test lets it go, without holding the
others), so a test scripts a conversation by what it sees (a tool result present → the final answer),
not by the order of requests. Streams send the message in pieces (text in words, tool call arguments in two
halves), then `finish_reason`, the usage chunk when asked for, and `[DONE]`. Usage: prompt tokens
are the words of the request's messages, completion tokens the words of the answer (tool call
arguments count one per 4 characters)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

__all__ = ["ScriptedChat", "last_tool_result"]

Reply = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]


def last_tool_result(body: dict[str, Any]) -> str | None:
    """The content of the last tool result after the last assistant message, if there is one."""
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "assistant":
            return None
        if m.get("role") == "tool":
            return str(m.get("content"))
    return None


class ScriptedChat:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @staticmethod
    def usage(body: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
        prompt = sum(len(orjson.dumps(m.get("content")).split()) for m in body.get("messages") or ())
        text = message.get("content") or ""
        args = sum(len(tc["function"]["arguments"]) for tc in message.get("tool_calls") or ())
        completion = len(text.split()) + args // 4
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body})
        answer = self.reply(body)
        if inspect.isawaitable(answer):
            answer = await answer
        message = {"role": "assistant", "content": None, **answer}
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        usage = self.usage(body, message)
        base = {"id": f"chatcmpl-{time.time_ns()}", "created": int(time.time()), "model": body.get("model")}
        if not body.get("stream"):
            out = {**base, "object": "chat.completion", "usage": usage}
            out["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
            return web.Response(body=orjson.dumps(out), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        base["object"] = "chat.completion.chunk"

        async def send(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")

        await send({"role": "assistant", "content": ""})
        words = (message.get("content") or "").split(" ")
        for i, w in enumerate(words):
            if w:
                await send({"content": w if i == len(words) - 1 else w + " "})
        for i, tc in enumerate(message.get("tool_calls") or ()):
            args = tc["function"]["arguments"]
            head = {
                "index": i,
                "id": tc["id"],
                "type": "function",
                "function": {"name": tc["function"]["name"]},
            }
            await send(
                {
                    "tool_calls": [
                        {**head, "function": {**head["function"], "arguments": args[: len(args) // 2]}}
                    ]
                }
            )
            await send({"tool_calls": [{"index": i, "function": {"arguments": args[len(args) // 2 :]}}]})
        await send({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def __enter__(self) -> ScriptedChat:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="scripted-chat", daemon=True)
        self._thread.start()
        assert ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
