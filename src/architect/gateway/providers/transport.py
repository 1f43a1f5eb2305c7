"""HTTP transport behind one method, `send`, so adapters and the router are tested without I/O.

`HTTP1Transport` (providers/http1.py) pools keep-alive connections per provider; `MockTransport`
calls a handler. A transport raises only this module's `TransportError` subclasses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
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
