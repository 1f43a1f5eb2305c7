"""HTTP: the OpenAI-compatible `/v1` routes as a lean ASGI handler (the hot path); everything else
(health, readiness, /api/v1, /ui, /metrics) goes to the Starlette app the composition root builds
(`architect.app.create_app`). Errors are rendered in the OpenAI format; a client's mistake is never a
500 and no response carries a stack trace."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import orjson
from starlette.applications import Starlette

from architect.config import Config
from architect.errors import GatewayError, InvalidRequest, MethodNotAllowed, NotFound, PayloadTooLarge
from architect.gateway.apis.base import InboundAPI
from architect.gateway.apis.chat import CHAT, EMBEDDINGS
from architect.gateway.apis.messages import MESSAGES, count_tokens
from architect.gateway.apis.responses import RESPONSES
from architect.gateway.apis.responses_state import ResponseStore, page_query
from architect.gateway.body_limit import BodyLimit
from architect.gateway.call import Call, parse_body, parse_tags
from architect.gateway.feedback import Feedback
from architect.gateway.hooks import Authenticate
from architect.gateway.pipeline import Pipeline
from architect.gateway.routing import Group, Router

__all__ = ["GatewayApp", "Host"]

log = logging.getLogger("architect.gateway")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WATCH_AFTER_S = 0.05  # how long a call runs before the gateway starts watching for a disconnect
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_JSON_CT = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class Host(Protocol):
    """What the `/v1` handler reads from the runtime that serves it (`architect.runtime.Runtime`; its
    config and router change on a reload)."""

    started_at: float

    @property
    def config(self) -> Config: ...

    @property
    def router(self) -> Router: ...

    @property
    def pipeline(self) -> Pipeline: ...

    @property
    def auth(self) -> Authenticate: ...

    @property
    def responses(self) -> ResponseStore: ...

    @property
    def feedback(self) -> Feedback: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class GatewayApp:
    """The ASGI application: `/v1/*` handled here directly, the rest by `starlette` (behind the API's
    body limit); the lifespan starts and stops the runtime."""

    def __init__(self, runtime: Host, starlette: Starlette) -> None:
        self.runtime = runtime
        self.starlette = BodyLimit(starlette, lambda: runtime.config.server.max_api_body_bytes)
        self.state = starlette.state  # so tests and the API can reach app.state.runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self._v1(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.starlette(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.runtime.start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- /v1 -------------------------------------------------------------------------------------
    async def _v1(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid_in = headers.get("x-request-id")
        request_id = rid_in if rid_in and _REQUEST_ID.match(rid_in) else None
        call: Call | None = None
        path, method = scope["path"], scope["method"]
        api = _ENDPOINTS.get(path)
        if api is None:  # errors in the shape the client reads
            anthropic = path.startswith("/v1/messages") or "anthropic-version" in headers
            err_api: InboundAPI = MESSAGES if anthropic else CHAT
        else:
            err_api = api
        try:
            if path == "/v1/models":
                if method != "GET":
                    raise MethodNotAllowed("GET")
                anthropic = "anthropic-version" in headers
                principal = await self.runtime.auth.authenticate(_credentials(headers), anthropic=anthropic)
                await _send_json(send, 200, self._models(principal.models, anthropic=anthropic), [])
                return
            if path.startswith("/v1/models/"):
                if method != "GET":
                    raise MethodNotAllowed("GET")
                principal = await self.runtime.auth.authenticate(_credentials(headers))
                anthropic = "anthropic-version" in headers
                model = self._model(path[len("/v1/models/") :], principal.models, anthropic=anthropic)
                await _send_json(send, 200, model, [])
                return
            if path == "/v1/messages/count_tokens":
                if method != "POST":
                    raise MethodNotAllowed("POST")
                principal = await self.runtime.auth.authenticate(_credentials(headers), anthropic=True)
                raw = await self._read_body(headers, receive)
                body = parse_body(raw)

                def local_only(group: Group) -> bool:
                    """The caller's privacy (its route settings), before its prompt goes anywhere."""
                    tags = {**principal.tags, **parse_tags(headers.get("x-architect-tags"), None)}
                    call = Call("messages", body, raw, principal, tags, None, headers, MESSAGES)
                    route = headers.get("x-architect-route")
                    call.route_request = ("x-architect-route", route) if route is not None else None
                    call.group = group
                    self.runtime.pipeline.hooks.routes.resolve(call)
                    return call.local_only

                status, out, extra = await count_tokens(
                    body, principal, self.runtime.router, headers, local_only
                )
                await _send_json(send, status, out, extra)
                return
            if path == "/v1/feedback":
                if method != "POST":
                    raise MethodNotAllowed("POST")
                principal = await self.runtime.auth.authenticate(_credentials(headers))
                body = parse_body(await self._read_body(headers, receive))
                await _send_json(send, 200, await self.runtime.feedback.record(body, principal), [])
                return
            if path.startswith("/v1/responses/"):
                err_api = RESPONSES
                await self._stored_response(path, method, headers, scope["query_string"], send)
                return
            if api is None:
                raise NotFound(f"unknown path {path}", code="unknown_url")
            if method != "POST":
                raise MethodNotAllowed("POST")
            principal = await self.runtime.auth.authenticate(_credentials(headers), anthropic=api is MESSAGES)
            raw = await self._read_body(headers, receive)
            body = parse_body(raw)
            api.validate(body)
            route: tuple[str, str] | None = None
            if (text := headers.get("x-architect-route")) is not None:
                route = ("x-architect-route", text)
            if api is MESSAGES:  # kept for Anthropic deployments; its `user_id` is not a tag
                meta = body.get("metadata")
                metadata = (
                    {k: v for k, v in meta.items() if k != "user_id"} if isinstance(meta, dict) else meta
                )
            else:
                # kept for Responses (echoed, sent to Responses API deployments), not for chat
                metadata = body.get("metadata") if api is RESPONSES else body.pop("metadata", None)
                if isinstance(metadata, dict) and "architect_route" in metadata:
                    metadata = dict(metadata)  # route settings, not a tag
                    text = metadata.pop("architect_route")
                    if route is None:
                        route = ("metadata.architect_route", text if isinstance(text, str) else repr(text))
            tags = parse_tags(headers.get("x-architect-tags"), metadata)
            call = Call(api.name, body, raw, principal, tags, request_id, headers, api)
            call.route_request = route
            if api.streams and call.stream:
                await self._stream(call, receive, send)
            else:
                await self._complete(call, receive, send)
        except GatewayError as exc:
            await _send_error(send, exc, call.request_id if call else request_id, err_api)
        except Exception:
            rid = call.request_id if call else request_id
            log.exception("unexpected error handling %s (request %s)", scope.get("path"), rid)
            await _send_error(send, GatewayError(f"internal error; request id {rid}"), rid, err_api)

    async def _stored_response(
        self, path: str, method: str, headers: dict[str, str], query: bytes, send: Send
    ) -> None:
        """`GET /v1/responses/{id}` (and `/input_items`, paged by its query) and `DELETE
        /v1/responses/{id}`, scoped to the caller's key."""
        rest = path[len("/v1/responses/") :]
        response_id, _, sub = rest.partition("/")
        if not response_id or sub not in ("", "input_items"):
            raise NotFound(f"unknown path {path}", code="unknown_url")
        allowed = ("GET", "DELETE") if not sub else ("GET",)
        if method not in allowed:
            raise MethodNotAllowed(", ".join(allowed))
        principal = await self.runtime.auth.authenticate(_credentials(headers))
        store = self.runtime.responses
        if sub:
            out = await store.input_items(response_id, principal, *page_query(query))
        elif method == "GET":
            out = await store.get(response_id, principal)
        else:
            out = await store.delete(response_id, principal)
        await _send_json(send, 200, out, [])

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        """The request body, up to the configured size; a body with a `Content-Encoding` (compressed)
        is refused (415): the gateway reads plain UTF-8 JSON only."""
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            raise InvalidRequest(
                f"Content-Encoding '{encoding[:40]}' is not supported; send the JSON body uncompressed",
                param="content-encoding",
                code="unsupported_content_encoding",
                status=415,
            )
        limit = self.runtime.config.server.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise InvalidRequest("the client disconnected while sending the body")
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
            if not msg.get("more_body"):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _complete(self, call: Call, receive: Receive, send: Send) -> None:
        pipeline = self.runtime.pipeline
        run = pipeline.embeddings(call) if call.api is EMBEDDINGS else pipeline.chat(call)
        watch = _DisconnectWatch(receive)
        try:
            body = await run
        except asyncio.CancelledError:
            if watch.disconnected:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                return  # the client is gone: nothing to send
            raise
        finally:
            watch.stop()
        await _send_json(send, 200, body, _call_headers(call))

    async def _stream(self, call: Call, receive: Receive, send: Send) -> None:
        watch = _DisconnectWatch(receive)
        try:
            stream = await self.runtime.pipeline.chat_stream(
                call
            )  # an error here: the finally stops the watch
            try:
                # The head goes out with the first chunk, not before it: the server sends the writes of
                # one turn of the loop as one (cli/http_protocol.py), so a client is woken once for both.
                start: Message | None = {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": _SSE_HEADERS + _call_headers(call),
                }
                closed = False
                async for chunk in stream.events:
                    if start is not None:
                        await send(start)
                        start = None
                    if stream.ended:  # recorded: the relay's last chunk ends the response
                        watch.stop()  # everything is sent: from here on a disconnect changes nothing
                        await send({"type": "http.response.body", "body": chunk, "more_body": False})
                        closed = True
                    else:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if not closed:
                    watch.stop()
                    if start is not None:
                        await send(start)
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                await stream.aclose()  # ends the call unless its events already did
        except asyncio.CancelledError:
            if watch.disconnected:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                return
            raise
        finally:
            watch.stop()

    def _models(self, allowed: frozenset[str] | None, *, anthropic: bool = False) -> bytes:
        """The model groups a caller may use (`allowed`: its key's groups; None = every group), in
        OpenAI's list shape, or Anthropic's for a client that sends `anthropic-version`."""
        names = [n for n in self.runtime.router.groups if allowed is None or n in allowed]
        models = [self._model_object(n, anthropic=anthropic) for n in names]
        if anthropic:
            return orjson.dumps(
                {
                    "data": models,
                    "has_more": False,
                    "first_id": names[0] if names else None,
                    "last_id": names[-1] if names else None,
                }
            )
        return orjson.dumps({"object": "list", "data": models})

    def _model(self, name: str, allowed: frozenset[str] | None, *, anthropic: bool = False) -> bytes:
        """`GET /v1/models/{name}`: the model object of a group (or an alias of one) the caller may use.
        A group it may not use is the same 404 as one that does not exist."""
        group = self.runtime.router.group(name)
        if group is None or (allowed is not None and group.name not in allowed and name not in allowed):
            raise NotFound(
                f"model '{name}' does not exist; GET /v1/models lists the available ones", param="model"
            )
        return orjson.dumps(self._model_object(name, anthropic=anthropic))

    def _model_object(self, name: str, *, anthropic: bool) -> dict[str, Any]:
        now = int(self.runtime.started_at)
        if anthropic:
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
            return {"type": "model", "id": name, "display_name": name, "created_at": created}
        return {"id": name, "object": "model", "created": now, "owned_by": "architect"}


_ENDPOINTS: dict[str, InboundAPI] = {
    "/v1/chat/completions": CHAT,
    "/v1/embeddings": EMBEDDINGS,
    "/v1/messages": MESSAGES,
    "/v1/responses": RESPONSES,
}


def _credentials(headers: dict[str, str]) -> str | None:
    """The `Authorization` header, or Anthropic's `x-api-key` as a bearer token."""
    auth = headers.get("authorization")
    if auth is None and (key := headers.get("x-api-key")):
        return f"Bearer {key}"
    return auth


class _DisconnectWatch:
    """Cancels the request's task when the client disconnects, so the upstream call stops and its
    partial usage is recorded. Watching costs a task and a pending `receive`, so it starts only once
    the call has run `WATCH_AFTER_S`: calls that finish sooner (cache hits, short answers) never pay
    for it, and a client that leaves earlier is noticed at most that much later. `stop()` drops every
    reference to the request's task and the watcher, so a finished request leaves no reference cycle
    behind (its objects are freed at once instead of waiting for the cyclic garbage collector)."""

    __slots__ = ("_disconnected", "_receive", "_task", "_timer", "_watcher")

    def __init__(self, receive: Receive) -> None:
        self._receive: Receive | None = receive
        self._task = asyncio.current_task()
        self._disconnected = False
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            WATCH_AFTER_S, self._start
        )

    def _start(self) -> None:
        self._timer = None
        if self._receive is not None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch(self._receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                self._disconnected = True
                if self._task is not None:
                    self._task.cancel()
                return

    @property
    def disconnected(self) -> bool:
        return self._disconnected

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()
        self._task = None
        self._receive = None


def _call_headers(call: Call) -> list[tuple[bytes, bytes]]:
    out = [
        (b"x-request-id", call.request_id.encode()),
        (b"x-architect-attempts", str(len(call.attempts)).encode()),
        (b"x-architect-cache", (call.cache_tier or "bypass").encode()),
    ]
    if call.dropped:
        out.append((b"x-architect-dropped", ",".join(call.dropped).encode()))
    if call.route_header is not None:
        out.append((b"x-architect-route", call.route_header.encode()))
    if call.deployment is not None:
        out.append((b"x-architect-deployment", call.deployment.name.encode()))
        if call.deployment.simulated:
            out.append((b"x-architect-simulated", b"true"))
    return out


async def _send_json(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON_CT, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, exc: GatewayError, request_id: str | None, api: InboundAPI) -> None:
    headers = [(k.encode(), v.encode()) for k, v in exc.headers.items()]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    status, body = api.error_response(exc)
    try:
        await _send_json(send, status, body, headers)
    except Exception:  # the response had already started or the client is gone
        log.debug("could not send error response", exc_info=True)
