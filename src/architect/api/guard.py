"""`ParamGuard`: the default rule for every path and query string of /api/v1, before any endpoint runs:
no control characters (`architect.identifiers`). Endpoints narrow their parameters further with the
types of `architect.api.params`; this guard covers a parameter an endpoint left as a plain `str`, and
the spec shows the same rule on every such parameter (`architect.api.spec`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from architect.identifiers import first_forbidden

__all__ = ["ParamGuard"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _bad_param(scope: Scope) -> tuple[str, str, int] | None:
    """(param, value, position) of the first path or query string with a control character."""
    path = scope.get("path", "")
    at = first_forbidden(path)
    if at is not None:
        return "path", path, at
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        for text in (name, value):
            at = first_forbidden(text)
            if at is not None:
                return name, text, at
    return None


class ParamGuard:
    """Refuses (400, in the API's error format) a request whose path or query holds a control character."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bad = _bad_param(scope) if scope["type"] == "http" else None
        if bad is None:
            await self.app(scope, receive, send)
            return
        param, text, at = bad
        body = orjson.dumps(
            {
                "error": {
                    "message": f"{param}: must not contain control characters "
                    f"(found U+{ord(text[at]):04X} at position {at})",
                    "type": "invalid_request_error",
                    "param": param,
                    "code": None,
                }
            }
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
