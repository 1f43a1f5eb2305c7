"""The upstream HTTP client: pooled keep-alive HTTP/1.1 connections on asyncio, with httptools' parser
(the one uvicorn uses) doing the parsing.

Why this client and not a general one: docs/architecture.md (dependencies).

What it does: a request goes out in one write; a response is parsed as it arrives, in the event
loop, with no task per request. HTTP/1.1 over TCP or TLS, keep-alive pooling per origin with a cap on open connections
(callers wait for one), bodies framed by Content-Length, chunked encoding or the connection's end. A
request on a pooled connection that the server had closed is retried once on a new one, only when not
a byte of response had come. A caller that stops waiting (cancelled) or closes a response before its
end aborts the connection, so the upstream sees the request go away. A stream's reader that falls
more than 1 MiB behind pauses reading (the upstream is held back by TCP, not buffered). No proxies, redirects, cookies or
compression: upstreams are APIs called directly, and the gateway asks for identity bodies.

Timeouts (`HTTPRequest.timeout_s`): for a whole exchange, the time from sending to the last byte; for
a stream, each wait for more (the time to the headers, then every gap). Connecting takes at most
`connect_timeout_s` of that."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httptools

from architect.gateway.providers.transport import (
    ConnectError,
    HTTPRequest,
    HTTPResponse,
    ReadError,
    TransportError,
    TransportTimeout,
)

__all__ = ["HTTP1Transport"]

_Origin = tuple[str, str, int]  # scheme, host, port
_STREAM_BUFFER = 1 << 20  # bytes of a stream read ahead of its reader before reading pauses


class _Target:
    """A URL taken apart once: where to connect and what to put in the request line."""

    __slots__ = ("origin", "tail")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"not an http(s) URL: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.origin: _Origin = (parts.scheme, parts.hostname, port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]
        self.tail = f" {path} HTTP/1.1\r\nhost: {host}\r\n"  # after the method


class _Exchange:
    """One request/response on a connection: what has arrived, and who waits for more."""

    __slots__ = (
        "body",
        "buffered",
        "complete",
        "error",
        "framed",
        "got_bytes",
        "headers",
        "headers_done",
        "last",
        "status",
        "stream",
        "waiter",
    )

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.buffered = 0  # bytes in `body` (streams)
        self.headers_done = False
        self.complete = False
        self.framed = False  # Content-Length or chunked: the end is known without the connection's end
        self.got_bytes = False
        self.error: TransportError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.last = 0.0  # loop time of the last bytes (for a stream's gap timeout)

    def wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    def fail(self, error: TransportError) -> None:
        if not self.complete and self.error is None:
            self.error = error
        self.wake()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the parser calls the `on_*` methods."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.ex: _Exchange | None = None
        self.closed = False
        self.used = 0  # requests sent on it
        self.paused = False  # reading paused: a stream's reader is behind
        self._skip = False  # inside a 1xx interim response

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
        ex = self.ex
        if ex is None or ex.complete:
            return
        self.ex = None
        if ex.headers_done and not ex.framed:  # the body ran to the connection's end: that is its end
            ex.complete = True
            ex.wake()
        elif ex.headers_done:
            ex.fail(ReadError("upstream connection broke before the end of the response"))
        else:
            ex.fail(ConnectError("upstream closed the connection before responding"))

    def data_received(self, data: bytes) -> None:
        ex = self.ex
        if ex is None:  # nothing was asked: a server must not send; do not reuse the connection
            self.abort()
            return
        ex.got_bytes = True
        if ex.stream:
            ex.last = self.loop.time()
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # httptools.HttpParserError and its kind, e.g. an upgrade
            ex.fail(ReadError(f"invalid HTTP response from upstream: {exc}"))
            self.abort()

    # -- parser callbacks ---------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._skip = False
        if self.ex is None:  # more than the one response asked for: never reuse this connection
            self.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.ex
        if ex is not None and not self._skip:
            key = name.decode("latin-1").lower()
            ex.headers[key] = value.decode("latin-1")
            if key == "content-length" or (key == "transfer-encoding" and b"chunked" in value.lower()):
                ex.framed = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim response (100 Continue): the real one follows
            self._skip = True
            return
        ex = self.ex
        if ex is not None:
            ex.status = status
            ex.headers_done = True
            if ex.stream:
                ex.wake()

    def on_body(self, body: bytes) -> None:
        ex = self.ex
        if ex is not None:
            ex.body.append(body)
            if ex.stream:
                ex.buffered += len(body)
                if ex.buffered > _STREAM_BUFFER and not self.paused:
                    self.paused = True  # the reader is behind: stop reading until it catches up
                    self.transport.pause_reading()  # type: ignore[union-attr]
                ex.wake()

    def on_message_complete(self) -> None:
        if self._skip:
            self._skip = False
            return
        ex = self.ex
        if ex is None:
            return
        self.ex = None
        ex.complete = True
        ex.wake()
        if self.paused:  # the rest had arrived already: the connection reads again for the next one
            self.paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        if self.parser.should_keep_alive() and not self.closed:
            self.pool.release(self)
        else:
            self.abort()

    # -- use ----------------------------------------------------------------------------------------
    def start(self, ex: _Exchange, data: bytes) -> None:
        self.ex = ex
        self.used += 1
        self.transport.write(data)  # type: ignore[union-attr]

    def abort(self) -> None:
        """Close at once (nothing more will be read or reused)."""
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
        if self.transport is not None:
            self.transport.abort()


class _Pool:
    """Connections to one origin: idle ones (most recent first), a cap on how many are open."""

    def __init__(self, origin: _Origin, limit: int, connect_timeout: float, ssl_ctx: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self.origin = origin
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.ssl = ssl_ctx
        self.idle: list[_Connection] = []
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    async def acquire(self, timeout: float) -> _Connection:
        while True:
            idle = self.idle
            while idle:
                conn = idle.pop()
                if not conn.closed:
                    return conn
            if self.open < self.limit:
                return await self._connect(timeout)
            fut = self.loop.create_future()
            self.waiters.append(fut)
            try:
                async with asyncio.timeout(timeout):
                    await fut
            except TimeoutError:
                raise TransportTimeout(f"no connection to {self.origin[1]} free in time") from None
            finally:
                if fut in self.waiters:
                    self.waiters.remove(fut)

    async def _connect(self, timeout: float) -> _Connection:
        _, host, port = self.origin
        self.open += 1
        try:
            async with asyncio.timeout(min(self.connect_timeout, timeout)):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self),
                    host,
                    port,
                    ssl=self.ssl,
                    server_hostname=host if self.ssl else None,
                )
        except TimeoutError:
            self._closed_one()
            raise TransportTimeout(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.SSLError) as exc:
            self._closed_one()
            raise ConnectError(f"cannot connect to {host}:{port}: {exc.__class__.__name__}") from exc
        except BaseException:
            self._closed_one()
            raise
        return conn

    def release(self, conn: _Connection) -> None:
        if self.closed:  # the transport was closed while this request ran
            conn.abort()
            return
        self.idle.append(conn)
        self._wake_one()

    def forget(self, conn: _Connection) -> None:
        """`conn` is closed: it no longer counts towards the cap."""
        if conn in self.idle:
            self.idle.remove(conn)
        self._closed_one()

    def _closed_one(self) -> None:
        self.open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def close(self) -> None:
        self.closed = True
        for conn in list(self.idle):
            conn.abort()
        self.idle.clear()


class HTTP1Transport:
    """Pooled keep-alive HTTP/1.1 client (one per provider); see the module docstring."""

    def __init__(
        self,
        max_connections: int = 256,
        connect_timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context` for https origins (default: the system's trusted CAs, hostnames checked)."""
        self.max_connections = max_connections
        self.connect_timeout_s = connect_timeout_s
        self._pools: dict[_Origin, _Pool] = {}
        self._targets: dict[str, _Target] = {}
        self._ssl = ssl_context

    def _target(self, url: str) -> _Target:
        t = self._targets.get(url)
        if t is None:
            if len(self._targets) >= 1024:
                self._targets.clear()
            t = self._targets[url] = _Target(url)
        return t

    def _pool(self, origin: _Origin) -> _Pool:
        pool = self._pools.get(origin)
        if pool is None:
            ctx = None
            if origin[0] == "https":
                ctx = self._ssl = self._ssl or ssl.create_default_context()
            pool = self._pools[origin] = _Pool(origin, self.max_connections, self.connect_timeout_s, ctx)
        return pool

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        target = self._target(request.url)
        data = _encode(request, target)
        pool = self._pool(target.origin)
        for attempt in (0, 1):
            conn = await pool.acquire(request.timeout_s)
            reused = conn.used > 0
            ex = _Exchange(request.stream)
            try:
                if request.stream:
                    return await self._open_stream(conn, ex, data, request.timeout_s)
                return await self._exchange(conn, ex, data, request.timeout_s)
            except ConnectError:
                # a pooled connection the server had closed as the request went out: once more, anew
                if attempt == 0 and reused and not ex.got_bytes:
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, conn: _Connection, ex: _Exchange, data: bytes, timeout: float) -> HTTPResponse:
        loop = conn.loop
        waiter = ex.waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, ex)
        try:
            conn.start(ex, data)
            await waiter
        except BaseException:  # cancelled: the upstream must see the request go away
            conn.abort()
            raise
        finally:
            timer.cancel()
        if ex.error is not None:
            conn.abort()
            raise ex.error
        once = _Once(ex.body[0] if len(ex.body) == 1 else b"".join(ex.body))
        return HTTPResponse(ex.status, ex.headers, once, None, once.read)

    async def _open_stream(
        self, conn: _Connection, ex: _Exchange, data: bytes, timeout: float
    ) -> HTTPResponse:
        reader = _StreamReader(conn, ex, timeout)
        try:
            conn.start(ex, data)
            await reader.wait()
            while not ex.headers_done:  # an exchange completes only after its headers, or fails
                if ex.error is not None:
                    raise ex.error
                await reader.wait()
        except BaseException:
            reader.close()  # its gap timer too
            conn.abort()
            raise
        return HTTPResponse(ex.status, ex.headers, reader.chunks(), reader.close, reader.read_all)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _encode(request: HTTPRequest, target: _Target) -> bytes:
    lines = [request.method, target.tail]
    for name, value in request.headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise TransportError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    lines.append(f"content-length: {len(request.body)}\r\n\r\n")
    try:
        head = "".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise TransportError(f"a request header is not latin-1: {exc.reason}") from None
    return head + request.body if request.body else head


def _expire(ex: _Exchange) -> None:
    ex.fail(TransportTimeout("upstream took longer than the timeout"))


class _Once:
    """A body already read whole, as a chunk iterator and as `read_all`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data: bytes | None = data

    def __aiter__(self) -> _Once:
        return self

    async def __anext__(self) -> bytes:
        data = self.data
        if data is None:
            raise StopAsyncIteration
        self.data = None
        return data

    async def read(self) -> bytes:
        data, self.data = self.data or b"", None
        return data


class _StreamReader:
    """A streamed response's body: whatever has arrived since the last read, as one chunk; each wait for
    more is bounded by the timeout (one timer per stream, re-armed only when it fires)."""

    __slots__ = ("conn", "ex", "timeout", "timer")

    def __init__(self, conn: _Connection, ex: _Exchange, timeout: float) -> None:
        self.conn = conn
        self.ex = ex
        self.timeout = timeout
        ex.last = conn.loop.time()
        self.timer: asyncio.TimerHandle | None = conn.loop.call_later(timeout, self._check)

    def _check(self) -> None:
        ex = self.ex
        if ex.complete or ex.error is not None:
            self.timer = None
            return
        late = ex.last + self.timeout - self.conn.loop.time()
        if late <= 0:
            self.timer = None
            ex.fail(TransportTimeout("upstream stopped sending (read timeout)"))
            self.conn.abort()
        else:
            self.timer = self.conn.loop.call_later(late, self._check)

    async def wait(self) -> None:
        ex = self.ex
        if ex.complete or ex.error is not None or ex.body:
            return
        ex.waiter = self.conn.loop.create_future()
        await ex.waiter

    async def chunks(self) -> AsyncIterator[bytes]:
        ex = self.ex
        try:
            while True:
                if ex.body:
                    body = ex.body
                    out = body[0] if len(body) == 1 else b"".join(body)
                    body.clear()
                    ex.buffered = 0
                    conn = self.conn
                    if conn.paused and conn.ex is ex:
                        conn.paused = False
                        ex.last = conn.loop.time()
                        conn.transport.resume_reading()  # type: ignore[union-attr]
                    yield out
                    continue
                if ex.error is not None:
                    raise ex.error
                if ex.complete:
                    return
                await self.wait()
        finally:
            self.close()

    async def read_all(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.ex.complete:  # given up before the end: the connection cannot be reused
            self.conn.abort()
