"""A fast OpenAI-compatible upstream for the gateway benchmark (aiohttp, uvloop when installed).

    python bench/gateway/upstream.py PORT

Answers POST /v1/chat/completions at once: a fixed completion, or an 8-chunk SSE stream with a usage
chunk when asked; GET /health for readiness."""

from __future__ import annotations

import sys
import time

import orjson
from aiohttp import web

_WORDS = ["Hello", " from", " the", " benchmark", " upstream", ",", " friend", "."]


async def chat(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    model = body.get("model", "mock-model")
    usage = {"prompt_tokens": 12, "completion_tokens": len(_WORDS), "total_tokens": 12 + len(_WORDS)}
    base = {"id": "chatcmpl-bench", "created": int(time.time()), "model": model}
    if not body.get("stream"):
        out = {
            **base,
            "object": "chat.completion",
            "usage": usage,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(_WORDS)},
                    "finish_reason": "stop",
                }
            ],
        }
        return web.Response(body=orjson.dumps(out), content_type="application/json")
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    parts = []
    for i, w in enumerate(_WORDS):
        delta = {"role": "assistant", "content": w} if i == 0 else {"content": w}
        parts.append(
            b"data: "
            + orjson.dumps(
                {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
            )
        )
    parts.append(
        b"data: "
        + orjson.dumps(
            {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        )
    )
    if (body.get("stream_options") or {}).get("include_usage"):
        parts.append(
            b"data: "
            + orjson.dumps({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        )
    parts.append(b"data: [DONE]")
    for p in parts:
        await resp.write(p + b"\n\n")
    await resp.write_eof()
    return resp


async def health(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
