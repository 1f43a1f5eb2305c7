"""A scripted upstream on 127.0.0.1 for agent-API tests: OpenAI chat completions and, when asked, the
Responses API, answering by request content, not by order.

    with AgentStub() as stub:
        stub.url                      # "http://127.0.0.1:PORT/v1"
        stub.requests                 # recorded {"path", "headers", "body"} dicts
        stub.delay_s = 0.5            # each answer waits this long first (0 by default)

Chat completions (`POST /v1/chat/completions`): when the request offers tools and its last message is
not a tool result, the answer calls a tool: the first custom-translated one (a single string parameter
`input`) with a patch as its input, else the first tool with `{"path": "greet.txt"}`; otherwise it is
the text `ANSWER` followed by the last user or tool message's text (so a test sees what reached the
upstream). Streams (with `stream_options.include_usage`, a usage chunk) and complete answers alike;
usage is prompt 11, completion 7.

Responses API (`POST /v1/responses`, the native passthrough): a fixed response with text `NATIVE`,
streamed as the Responses events when `stream` is true; usage input 13 (cached 3), output 5."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson
from aiohttp import web

__all__ = ["ANSWER", "PATCH", "AgentStub"]

ANSWER = "Done:"
PATCH = "*** Begin Patch\n*** Update File: greet.txt\n@@\n-hello\n+hello world\n*** End Patch\n"


def _last_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") in ("user", "tool"):
            c = m.get("content")
            if isinstance(c, str):
                return c
            return " ".join(p.get("text", "") for p in c or () if isinstance(p, dict))
    return ""


def _chat_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message for a chat body: a tool call or text."""
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    if tools and messages and messages[-1].get("role") != "tool":
        fns = [t["function"] for t in tools]
        free = [f for f in fns if list((f.get("parameters") or {}).get("properties") or {}) == ["input"]]
        fn = (free or fns)[0]
        args = {"input": PATCH} if free else {"path": "greet.txt"}
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": fn["name"], "arguments": orjson.dumps(args).decode()},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"role": "assistant", "content": f"{ANSWER} {_last_text(messages)}"}


_NATIVE = {
    "id": "resp_native_1",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": "native-model",
    "output": [
        {
            "type": "message",
            "id": "msg_native_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "NATIVE", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 13,
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 18,
    },
}


def _event(obj: dict[str, Any]) -> bytes:
    return b"event: " + obj["type"].encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


class AgentStub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.delay_s = 0.0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == path]

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(await request.read())
        self.requests.append(
            {
                "path": request.path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
            }
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return body

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        msg = _chat_answer(body)
        finish = "tool_calls" if msg.get("tool_calls") else "stop"
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        base = {"id": "chatcmpl-agent", "created": int(time.time()), "model": body.get("model")}
        if not body.get("stream"):
            out = {
                **base,
                "object": "chat.completion",
                "usage": usage,
                "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            }
            return web.Response(body=orjson.dumps(out), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        chunk = {**base, "object": "chat.completion.chunk"}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if msg.get("tool_calls"):
            tc = msg["tool_calls"][0]
            args = tc["function"]["arguments"]
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": tc["id"],
                            "type": "function",
                            "function": {"name": tc["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            half = len(args) // 2
            for piece in (args[:half], args[half:]):
                deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        else:
            words = msg["content"].split(" ")
            deltas += [{"content": w + (" " if i < len(words) - 1 else "")} for i, w in enumerate(words)]
        for d in deltas:
            ev = {**chunk, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
            await resp.write(b"data: " + orjson.dumps(ev) + b"\n\n")
        ev = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        await resp.write(b"data: " + orjson.dumps(ev) + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(b"data: " + orjson.dumps({**chunk, "choices": [], "usage": usage}) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(_NATIVE), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        item = _NATIVE["output"][0]
        start = {**_NATIVE, "status": "in_progress", "output": [], "usage": None}
        events = [
            {"type": "response.created", "response": start},
            {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
            {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": "NATIVE",
            },
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": _NATIVE},
        ]
        for i, ev in enumerate(events):
            await resp.write(_event({**ev, "sequence_number": i}))
        await resp.write_eof()
        return resp

    def __enter__(self) -> AgentStub:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            app.router.add_post("/v1/responses", self._responses)
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
