"""An OpenAI-compatible chat-completions upstream on 127.0.0.1 that answers by request content.

    def rule(body: dict) -> Answer | None: ...        # None: not mine, the next rule decides
    with ScriptedChatStub([rule, ...]) as stub:
        stub.url                                      # "http://127.0.0.1:PORT/v1"
        stub.exchanges                                # [(request body, Answer sent)] in arrival order

The first rule that returns an answer decides; a request no rule takes gets a 400 naming it (a test
then fails on the client's side, visibly). An answer is text or tool calls, streamed (with the usage
chunk when `stream_options.include_usage` asks for it) or not. Usage is the answer's own fixed figures,
so a test can check the ledger against what the upstream reported.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

__all__ = ["Answer", "Rule", "ScriptedChatStub", "last_message", "text_of", "tool_names"]


@dataclass(frozen=True)
class Answer:
    text: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, arguments)
    prompt_tokens: int = 100
    completion_tokens: int = 10


Rule = Callable[[dict[str, Any]], Answer | None]


def text_of(content: Any) -> str:
    """The text of a message's content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_message(body: dict[str, Any]) -> dict[str, Any]:
    msgs = body.get("messages") or [{}]
    return dict(msgs[-1])


def tool_names(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The function tools a request offers: name -> its `function` object."""
    return {
        t["function"]["name"]: t["function"]
        for t in body.get("tools") or []
        if t.get("type") == "function" and "function" in t
    }


class ScriptedChatStub:
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        self.exchanges: list[tuple[dict[str, Any], Answer]] = []
        self.unanswered: list[dict[str, Any]] = []
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ScriptedChatStub:
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

        self._thread = threading.Thread(target=run, name="scripted-chat-stub", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("scripted stub did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def answered(self, model: str) -> list[Answer]:
        """The answers sent to requests for an upstream `model`, in order."""
        with self._lock:
            return [a for b, a in self.exchanges if b.get("model") == model]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        answer = next((a for rule in self.rules if (a := rule(body)) is not None), None)
        if answer is None:
            with self._lock:
                self.unanswered.append(body)
            msg = f"no scripted answer for: {text_of(last_message(body).get('content'))[:200]!r}"
            return web.json_response({"error": {"message": msg, "type": "invalid_request_error"}}, status=400)
        with self._lock:
            self.exchanges.append((body, answer))
        usage = {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        }
        calls = [
            {
                "id": f"call_{i}_{time.time_ns()}",
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(args).decode()},
            }
            for i, (name, args) in enumerate(answer.tool_calls)
        ]
        finish = "tool_calls" if calls else "stop"
        base = {"id": f"chatcmpl-{time.time_ns()}", "created": int(time.time()), "model": body.get("model")}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": answer.text}
            if calls:
                message["tool_calls"] = calls
            out = {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
            return web.json_response(out)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        chunk = {**base, "object": "chat.completion.chunk"}

        async def send(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            await resp.write(b"data: " + orjson.dumps({**chunk, "choices": [choice]}) + b"\n\n")

        await send({"role": "assistant", "content": ""})
        if answer.text:
            half = len(answer.text) // 2
            await send({"content": answer.text[:half]})
            await send({"content": answer.text[half:]})
        for i, call in enumerate(calls):
            args = call["function"]["arguments"]
            head = {"index": i, "id": call["id"], "type": "function"}
            await send(
                {"tool_calls": [{**head, "function": {"name": call["function"]["name"], "arguments": ""}}]}
            )
            await send({"tool_calls": [{"index": i, "function": {"arguments": args[: len(args) // 2]}}]})
            await send({"tool_calls": [{"index": i, "function": {"arguments": args[len(args) // 2 :]}}]})
        await send({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(b"data: " + orjson.dumps({**chunk, "choices": [], "usage": usage}) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
