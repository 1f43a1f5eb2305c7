"""The floor: a feature-less pass-through proxy (aiohttp server + one pooled aiohttp client).

    python bench/gateway/passthrough.py PORT UPSTREAM_BASE_URL     (e.g. http://127.0.0.1:18090)

Forwards POST /v1/chat/completions and streams the answer back; what a Python gateway costs at least."""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web


async def start(app: web.Application) -> None:
    app["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def stop(app: web.Application) -> None:
    await app["client"].close()


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    upstream = request.app["upstream"] + "/v1/chat/completions"
    async with request.app["client"].post(
        upstream, data=body, headers={"content-type": "application/json"}
    ) as up:
        ctype = up.headers.get("content-type", "application/json")
        if not ctype.startswith("text/event-stream"):
            return web.Response(status=up.status, body=await up.read(), content_type="application/json")
        resp = web.StreamResponse(status=up.status, headers={"content-type": ctype})
        await resp.prepare(request)
        async for chunk in up.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


async def health(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = web.Application()
    app["upstream"] = sys.argv[2].rstrip("/")
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/healthz", health)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
