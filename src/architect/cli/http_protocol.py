"""The HTTP/1.1 protocol `architect serve` runs: uvicorn's httptools protocol, with the writes a
connection makes in one turn of the event loop sent as one.

uvicorn writes a response's status line and headers as soon as the app sends `http.response.start`,
and then each body message: two `send` system calls or more per response. Each write that finds the
client waiting wakes it (on another CPU: an interrupt, dear in a virtual machine), and a client woken
for the headers alone is woken again for the body. `CoalescingTransport` holds a connection's writes
until the end of the current turn of the loop, or until `FLUSH_BYTES` are held, and sends them in one
call. The events of a stream still leave as soon as the app sends them: the app awaits the upstream
between them, which ends the turn. Nothing is reordered, and `close` sends what is held first.

`CoalescingHttpToolsProtocol` also bounds a request's head (request line and headers), which uvicorn's
httptools protocol does not: a head larger than `max_head_bytes` (counted from the read after the one
it began in) is answered 431 and the connection closed, so the parser buffers at most that and a read."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["FLUSH_BYTES", "MAX_HEAD_BYTES", "CoalescingHttpToolsProtocol", "CoalescingTransport"]

FLUSH_BYTES = 65536  # held this much, the writes go out at once (and the transport's flow control sees them)
MAX_HEAD_BYTES = 65536  # a request's line and headers, by default (`server.max_header_bytes`)
_TOO_LARGE = "the request's headers are larger than the limit of {} bytes"


class CoalescingTransport(asyncio.Transport):
    """Joins the writes made to `transport` in one turn of `loop` into one write; everything else
    passes through. What is held is sent before the transport closes, stops writing or changes
    protocol, and dropped if it aborts."""

    __slots__ = ("_held", "_loop", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_BYTES:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held, in one write (nothing once the transport is closing)."""
        held = self._held
        if not held:
            return
        self._held = []
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._size = 0
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a `CoalescingTransport`, with a request's head
    bounded by `max_head_bytes` (`limited` makes the class for another bound)."""

    max_head_bytes = MAX_HEAD_BYTES
    _head: int | None = None  # bytes of the current message's head received so far, until its headers end
    _began = False  # a message began in the read being parsed (its share of that read is not known)
    _refused = False  # answered 431: nothing more is parsed

    @classmethod
    def limited(cls, max_head_bytes: int) -> type[CoalescingHttpToolsProtocol]:
        """The protocol with a request's head bounded by `max_head_bytes`."""
        return type(cls.__name__, (cls,), {"max_head_bytes": max_head_bytes})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._began = False
        super().data_received(data)
        head = self._head
        if head is not None and not self._began:  # reads after the one it began in count whole
            self._head = head = head + len(data)
            if head > self.max_head_bytes and not self.transport.is_closing():
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head = 0
        self._began = True

    def on_headers_complete(self) -> None:
        self._head = None
        super().on_headers_complete()

    def _refuse_head(self) -> None:
        self._refused = True
        msg = _TOO_LARGE.format(self.max_head_bytes).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%b" % (len(msg), msg)
        )
        self.transport.close()
