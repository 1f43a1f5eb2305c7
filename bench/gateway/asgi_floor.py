"""The floor of Architect's own stack: a feature-less raw ASGI proxy on uvicorn (httptools, uvloop)
with Architect's upstream client (`HTTP1Transport`), run with the same server settings as `architect serve`.

    python bench/gateway/asgi_floor.py PORT UPSTREAM_BASE_URL     (e.g. http://127.0.0.1:18080)

What is left between this and Architect is Architect's own request path and ledger."""

from __future__ import annotations

import gc
import sys
from typing import Any

import uvicorn

from architect.gateway.providers.http1 import HTTP1Transport
from architect.gateway.providers.transport import HTTPRequest

PORT, UPSTREAM = int(sys.argv[1]), sys.argv[2].rstrip("/")
client = HTTP1Transport()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await client.aclose()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    headers = {"content-type": "application/json"}
    stream = b'"stream":true' in body.replace(b" ", b"")
    up = await client.send(HTTPRequest("POST", UPSTREAM + scope["path"], headers, body, 60.0, stream))
    ctype = up.headers.get("content-type", "application/json").encode()
    if ctype.startswith(b"text/event-stream"):
        await send(
            {"type": "http.response.start", "status": up.status, "headers": [(b"content-type", ctype)]}
        )
        async for chunk in up.iter_chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    data = await up.read()
    head = [(b"content-type", ctype), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": up.status, "headers": head})
    await send({"type": "http.response.body", "body": data})


if __name__ == "__main__":
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=PORT,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
    )
    sys.setswitchinterval(0.0001)  # as `architect serve`
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    uvicorn.Server(config).run()
