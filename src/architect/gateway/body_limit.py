"""`BodyLimit`: the request-body cap for everything outside /v1 (the REST API, the dashboard's forms),
`server.max_api_body_bytes`. A body declared larger (Content-Length) is refused before a byte of it is
read; a chunked body is counted as it arrives and refused as soon as it passes the limit, so no more
than the limit is ever held. The refusal is a 413 in the API's error format, and the connection is
closed (the rest of the body is never read). /v1 has its own limit, `server.max_body_bytes`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from architect.errors import PayloadTooLarge

__all__ = ["BodyLimit"]

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    """Raised into the application by `receive` once the body passes the limit."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            if text.isascii() and text.isdigit():
                return int(text) if len(text) <= 18 else 10**18
    return None


async def _refuse(send: Send, limit: int) -> None:
    err = PayloadTooLarge(
        f"the request body is larger than the limit of {limit} bytes (server.max_api_body_bytes)"
    )
    body = orjson.dumps(err.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Wraps an ASGI app so that no request body larger than `limit()` bytes reaches it."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0
        over = started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    over = True
                    raise _TooLarge()
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if over:  # the application's own answer to the aborted read; the 413 is sent instead
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _refuse(send, limit)
