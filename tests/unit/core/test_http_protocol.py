"""`architect serve` writes each response through `CoalescingTransport`: the writes a connection makes
in one turn of the event loop reach the socket as one write, in order, and what is held is sent
before the connection closes. Checked on the transport alone, and under uvicorn's own protocol fed a
real request."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from architect.cli.http_protocol import FLUSH_BYTES, CoalescingHttpToolsProtocol, CoalescingTransport


class Recorder(asyncio.Transport):
    """The socket's side: every write and close, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.calls.append(("pause_reading", b""))

    def resume_reading(self) -> None:
        self.calls.append(("resume_reading", b""))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 4000)}.get(name, default)

    @property
    def writes(self) -> list[bytes]:
        return [data for kind, data in self.calls if kind == "write"]


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_the_writes_of_one_turn_leave_as_one_at_its_end() -> None:
    inner = Recorder()
    t = CoalescingTransport(inner, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(b"")  # nothing to send: no write of its own
    t.write(bytearray(b"hello"))
    t.write(memoryview(b" world"))
    assert inner.writes == []  # held until the turn ends
    assert t.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nhello world")
    await next_turn()
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello world"]
    t.write(b"later")
    await next_turn()
    t.writelines([b"a", b"b"])
    await next_turn()
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello world", b"later", b"ab"]
    await next_turn()
    assert len(inner.writes) == 3  # nothing held: the turns after send nothing


async def test_a_large_write_goes_out_at_once() -> None:
    inner = Recorder()
    t = CoalescingTransport(inner, asyncio.get_running_loop())
    t.write(b"x" * (FLUSH_BYTES - 1))
    assert inner.writes == []
    t.write(b"yz")  # the held bytes reach FLUSH_BYTES: written now, so flow control sees them
    assert inner.writes == [b"x" * (FLUSH_BYTES - 1) + b"yz"]
    assert t.get_write_buffer_size() == 0
    await next_turn()
    assert len(inner.writes) == 1


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    inner = Recorder()
    t = CoalescingTransport(inner, loop)
    t.write(b"last bytes")
    t.close()
    assert inner.calls == [("write", b"last bytes"), ("close", b"")]
    assert t.is_closing()
    t.write(b"after close")
    await next_turn()
    assert inner.writes == [b"last bytes"]  # a closing transport is sent nothing more

    inner = Recorder()
    t = CoalescingTransport(inner, loop)
    t.write(b"never sent")
    t.abort()
    await next_turn()
    assert inner.calls == [("abort", b"")]


async def test_reading_and_extra_info_pass_through() -> None:
    inner = Recorder()
    t = CoalescingTransport(inner, asyncio.get_running_loop())
    t.pause_reading()
    t.resume_reading()
    assert inner.calls == [("pause_reading", b""), ("resume_reading", b"")]
    assert t.get_extra_info("peername") == ("127.0.0.1", 50000)
    assert t.get_extra_info("socket", "none") == "none"


def _protocol(
    app: Any, loop: asyncio.AbstractEventLoop, max_head_bytes: int | None = None
) -> tuple[CoalescingHttpToolsProtocol, Recorder]:
    cls = CoalescingHttpToolsProtocol
    if max_head_bytes is not None:
        cls = cls.limited(max_head_bytes)
    config = Config(app, http=cls, ws="none", lifespan="off", log_level="warning")
    config.load()
    proto = cls(config, ServerState(), {}, loop)
    inner = Recorder()
    proto.connection_made(inner)
    return proto, inner


async def _served(proto: CoalescingHttpToolsProtocol, inner: Recorder) -> list[bytes]:
    """The writes that answer one request, once the response is complete."""
    proto.data_received(b"POST /v1/x HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}")
    for _ in range(100):
        await next_turn()
        if proto.cycle.response_complete and inner.writes:
            break
    await next_turn()
    return inner.writes


async def test_uvicorn_sends_a_response_head_and_body_in_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"7")]})
        await send({"type": "http.response.body", "body": b'{"a":1}'})

    proto, inner = _protocol(app, asyncio.get_running_loop())
    writes = await _served(proto, inner)
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b'\r\n\r\n{"a":1}')


async def test_a_streamed_event_leaves_before_the_app_waits_for_the_next() -> None:
    sent_second = asyncio.Event()
    seen_at_second: list[list[bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await asyncio.sleep(0.01)  # waiting for the upstream's next event
        seen_at_second.append(list(inner.writes))
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})
        sent_second.set()

    proto, inner = _protocol(app, asyncio.get_running_loop())
    proto.data_received(b"POST /v1/x HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}")
    await asyncio.wait_for(sent_second.wait(), 5)
    await next_turn()
    # The head and the first event went out together, before the app waited; the last event and the
    # chunked body's end went out together after it.
    assert len(seen_at_second[0]) == 1
    first = seen_at_second[0][0]
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"\r\n\r\n9\r\ndata: 1\n\n\r\n")
    assert inner.writes == [first, b"9\r\ndata: 2\n\n\r\n0\r\n\r\n"]


async def test_a_head_over_the_limit_is_answered_431_and_closed() -> None:
    served: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        served.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    proto, inner = _protocol(app, asyncio.get_running_loop(), max_head_bytes=4096)
    proto.data_received(b"GET /big HTTP/1.1\r\nhost: a\r\nx-big: ")
    for _ in range(10):  # the header keeps coming, 1 KiB a read
        proto.data_received(b"a" * 1024)
    await next_turn()
    assert served == []  # never reached the app
    assert inner.closing and inner.writes[0].startswith(b"HTTP/1.1 431 ")
    assert b"larger than the limit of 4096 bytes" in inner.writes[0]
    proto.data_received(b"a" * 1024)  # what arrives after the answer is not parsed
    assert len(inner.writes) == 1


async def test_a_head_under_the_limit_and_a_large_body_are_served() -> None:
    bodies: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        size = 0
        while True:
            msg = await receive()
            size += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        bodies.append(size)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    proto, inner = _protocol(app, asyncio.get_running_loop(), max_head_bytes=4096)
    body = b"b" * 100_000  # far over the head's limit: a body is not a head
    proto.data_received(b"POST /x HTTP/1.1\r\nhost: a\r\nx-ok: " + b"a" * 3000 + b"\r\n")
    proto.data_received(b"content-length: %d\r\n\r\n" % len(body) + body[:50_000])
    proto.data_received(body[50_000:])
    for _ in range(20):
        await next_turn()
        if bodies:
            break
    await next_turn()
    assert bodies == [len(body)] and not inner.closing
    assert inner.writes and inner.writes[0].startswith(b"HTTP/1.1 200 OK")
