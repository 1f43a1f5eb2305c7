"""HTTP transport behind one method, `send`, so adapters and the router are tested without I/O.

`AiohttpTransport` pools keep-alive connections per provider; `MockTransport` calls a handler.
aiohttp exceptions are converted here into `TransportError` subclasses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from yarl import URL

__all__ = [
    "AiohttpTransport",
    "ConnectError",
    "HTTPRequest",
    "HTTPResponse",
    "MockTransport",
    "ReadError",
    "Transport",
    "TransportError",
    "TransportTimeout",
]


class TransportError(Exception):
    """The request did not produce a complete HTTP response."""


class ConnectError(TransportError):
    pass


class ReadError(TransportError):
    """The connection broke while reading (reset, truncated body)."""


class TransportTimeout(TransportError):
    pass


@dataclass(slots=True)
class HTTPRequest:
    """`timeout_s` bounds the whole exchange, body included, when `stream` is false; for a stream it
    bounds each wait for more bytes (a stream may run for longer than any one gap)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""
    timeout_s: float = 60.0
    stream: bool = False


class HTTPResponse:
    """A response whose body is read once, whole (`read`) or in chunks (`iter_chunks`)."""

    __slots__ = ("_chunks", "_close", "_read_all", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        chunks: AsyncIterator[bytes],
        close: Callable[[], None] | None = None,
        read_all: Callable[[], Awaitable[bytes]] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers  # lower-cased names
        self._chunks = chunks
        self._close = close
        self._read_all = read_all  # a transport's faster whole-body read, if it has one

    async def read(self) -> bytes:
        if self._read_all is not None:
            try:
                return await self._read_all()
            finally:
                self.close()
        parts = [c async for c in self._chunks]
        self.close()
        return b"".join(parts)

    def iter_chunks(self) -> AsyncIterator[bytes]:
        return self._chunks

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None


class Transport(Protocol):
    """Sends one request. A real transport enforces `request.timeout_s` (see HTTPRequest) and raises
    `TransportTimeout` when it runs out; `MockTransport` leaves timing to its handler."""

    async def send(self, request: HTTPRequest) -> HTTPResponse: ...

    async def aclose(self) -> None: ...


@dataclass
class AiohttpTransport:
    """Pooled keep-alive HTTP client (one per provider)."""

    max_connections: int = 256
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    _timeouts: dict[tuple[float, bool], aiohttp.ClientTimeout] = field(
        default_factory=dict, init=False, repr=False
    )
    _urls: dict[str, URL] = field(default_factory=dict, init=False, repr=False)

    def _url(self, url: str) -> URL:
        """The parsed URL (a deployment's few endpoints are parsed once, not per request)."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= 1024:
                self._urls.clear()
            parsed = self._urls[url] = URL(url)
        return parsed

    def _timeout(self, seconds: float, stream: bool) -> aiohttp.ClientTimeout:
        t = self._timeouts.get((seconds, stream))
        if t is None:
            connect = min(10.0, seconds)
            t = self._timeouts[(seconds, stream)] = (
                aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=seconds)
                if stream
                else aiohttp.ClientTimeout(total=seconds, sock_connect=connect)
            )
        return t

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300),
                auto_decompress=True,
                # One session serves every tenant: a cookie an upstream sets must never ride along on
                # another client's request.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        session = self._session
        if session is None or session.closed:
            session = self._get_session()
        try:
            resp = await session.request(
                request.method,
                self._url(request.url),
                data=request.body or None,
                headers=request.headers,
                timeout=self._timeout(request.timeout_s, request.stream),
            )
        except TimeoutError as exc:
            raise TransportTimeout(f"timed out waiting for {request.url}") from exc
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise ConnectError(f"cannot connect to {request.url}: {exc.__class__.__name__}") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{exc.__class__.__name__}: {exc}") from exc
        headers = {k.lower(): v for k, v in resp.headers.items()}

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            except _READ_ERRORS as exc:
                raise _read_error(exc) from exc
            finally:
                resp.release()

        async def read_all() -> bytes:
            try:
                return await resp.read()
            except _READ_ERRORS as exc:
                raise _read_error(exc) from exc
            finally:
                resp.release()

        return HTTPResponse(resp.status, headers, chunks(), resp.close, read_all)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


_READ_ERRORS = (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError)


def _read_error(exc: BaseException) -> TransportError:
    """aiohttp's errors while reading a body, as this module's."""
    if isinstance(exc, TimeoutError):
        return TransportTimeout("upstream stopped sending (read timeout)")
    return ReadError(f"upstream connection broke: {exc.__class__.__name__}")


Handler = Callable[[HTTPRequest], Awaitable[HTTPResponse]]


class MockTransport:
    """Calls `handler(request)`; records requests. For unit tests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HTTPRequest] = []

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        self.requests.append(request)
        return await self.handler(request)

    async def aclose(self) -> None:
        return None


def response_from_bytes(status: int, body: bytes, headers: dict[str, str] | None = None) -> HTTPResponse:
    async def one() -> AsyncIterator[bytes]:
        yield body

    return HTTPResponse(status, {"content-type": "application/json", **(headers or {})}, one())
