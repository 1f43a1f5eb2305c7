"""HTTP1Transport against raw TCP servers on 127.0.0.1 that answer exactly as each test scripts: framing,
keep-alive reuse, timeouts, aborts, broken connections and the connection cap."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trustme

from architect.gateway.providers.http1 import HTTP1Transport
from architect.gateway.providers.transport import (
    ConnectError,
    HTTPRequest,
    ReadError,
    TransportError,
    TransportTimeout,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]
OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'


class Server:
    """Counts connections and requests; `handler` serves one connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()  # a connection was closed by the client
        self.url = ""

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request (head and Content-Length body); b"" when the client closed the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed.set()
            return b""
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


def post(url: str, *, stream: bool = False, timeout: float = 5.0) -> HTTPRequest:
    return HTTPRequest(
        "POST",
        url + "/v1/chat/completions",
        {"content-type": "application/json"},
        b'{"a":1}',
        timeout,
        stream,
    )


def answers_once(raw: bytes, *, then_wait: bool = False) -> Handler:
    """A handler that reads one request and sends `raw` (then, with `then_wait`, waits for the client
    to go away instead of closing)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        await srv.read_request(reader)
        writer.write(raw)
        await writer.drain()
        if then_wait:
            await srv.read_request(reader)

    return handler


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
    while await srv.read_request(reader):
        writer.write(OK)


async def test_one_write_per_request_and_connections_are_reused() -> None:
    async with Server(keep_alive) as srv:
        t = HTTP1Transport()
        for _ in range(3):
            resp = await t.send(post(srv.url))
            assert (resp.status, await resp.read()) == (200, b'{"ok":true}')
            assert resp.headers["content-type"] == "application/json"
        await t.aclose()
    assert srv.connections == 1
    first = srv.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"host: 127.0.0.1:" in first and b"content-length: 7\r\n" in first and first.endswith(b'{"a":1}')


async def test_chunked_stream_arrives_as_it_is_sent_and_the_connection_is_reused() -> None:
    gate = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        while await srv.read_request(reader):
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            writer.write(b"6\r\ndata:1\r\n")
            await writer.drain()
            await gate.wait()
            writer.write(b"6\r\ndata:2\r\n0\r\n\r\n")

    async with Server(handler) as srv:
        t = HTTP1Transport()
        resp = await t.send(post(srv.url, stream=True))
        chunks = resp.iter_chunks()
        assert await anext(chunks) == b"data:1"  # before the server sent the rest
        gate.set()
        assert [c async for c in chunks] == [b"data:2"]
        resp2 = await t.send(post(srv.url, stream=True))
        assert await resp2.read() == b"data:1data:2"
        await t.aclose()
    assert srv.connections == 1


async def test_a_body_framed_by_the_connection_end_is_read_whole() -> None:
    handler = answers_once(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
    async with Server(handler) as srv:
        t = HTTP1Transport()
        assert await (await t.send(post(srv.url))).read() == b"until the end"
        assert await (await t.send(post(srv.url))).read() == b"until the end"  # a new connection
        await t.aclose()
    assert srv.connections == 2


async def test_a_whole_exchange_times_out_and_the_connection_is_aborted() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        await srv.read_request(reader)
        await srv.read_request(reader)  # waits for the client to go away

    async with Server(handler) as srv:
        t = HTTP1Transport()
        with pytest.raises(TransportTimeout):
            await t.send(post(srv.url, timeout=0.2))
        await asyncio.wait_for(srv.closed.wait(), 2)
        await t.aclose()


async def test_a_stream_times_out_on_a_gap_not_on_its_total_length() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(5):  # 0.5 s in all, in gaps of 0.1 s
            await asyncio.sleep(0.1)
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
        await srv.read_request(reader)  # then silence

    async with Server(handler) as srv:
        t = HTTP1Transport()
        resp = await t.send(post(srv.url, stream=True, timeout=0.3))
        got = b""
        with pytest.raises(TransportTimeout):
            async for chunk in resp.iter_chunks():
                got += chunk
        assert got == b"xxxxx"
        await asyncio.wait_for(srv.closed.wait(), 2)
        await t.aclose()


async def test_a_cancelled_caller_aborts_the_upstream_request() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        await srv.read_request(reader)
        await srv.read_request(reader)

    async with Server(handler) as srv:
        t = HTTP1Transport()
        task = asyncio.create_task(t.send(post(srv.url)))
        while not srv.requests:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(srv.closed.wait(), 2)  # the upstream saw the request go away
        await t.aclose()


async def test_closing_a_stream_early_aborts_it_and_the_next_call_uses_a_new_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        while await srv.read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n")
            await writer.drain()

    async with Server(handler) as srv:
        t = HTTP1Transport()
        resp = await t.send(post(srv.url, stream=True))
        assert await anext(resp.iter_chunks()) == b"x"
        resp.close()
        await asyncio.wait_for(srv.closed.wait(), 2)
        resp = await t.send(post(srv.url, stream=True))
        resp.close()
        await t.aclose()
    assert srv.connections == 2


async def test_a_connection_broken_mid_body_is_a_read_error_and_before_headers_a_connect_error() -> None:
    mid_body = answers_once(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")

    async def no_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        await srv.read_request(reader)

    t = HTTP1Transport()
    async with Server(mid_body) as srv:
        with pytest.raises(ReadError):
            await t.send(post(srv.url))
    async with Server(no_answer) as srv:
        with pytest.raises(ConnectError):
            await t.send(post(srv.url))
    with pytest.raises(ConnectError):
        await t.send(post("http://127.0.0.1:9"))  # nothing listens there
    await t.aclose()


async def test_a_pooled_connection_the_server_closed_is_retried_once_on_a_new_one() -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        await srv.read_request(reader)
        writer.write(OK)  # says keep-alive, then closes after the next request arrives unanswered
        await writer.drain()
        await srv.read_request(reader)

    async with Server(one_then_close) as srv:
        t = HTTP1Transport()
        assert (await t.send(post(srv.url))).status == 200
        assert (await t.send(post(srv.url))).status == 200
        await t.aclose()
    assert srv.connections == 2 and len(srv.requests) == 3


async def test_the_connection_cap_makes_callers_wait_for_a_free_connection() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        while await srv.read_request(reader):
            started.set()
            await release.wait()
            writer.write(OK)

    async with Server(slow) as srv:
        t = HTTP1Transport(max_connections=1)
        calls = [asyncio.create_task(t.send(post(srv.url))) for _ in range(3)]
        await started.wait()
        await asyncio.sleep(0.05)
        assert len(srv.requests) == 1  # the others wait for the one connection
        release.set()
        assert [(await c).status for c in calls] == [200, 200, 200]
        await t.aclose()
    assert srv.connections == 1


async def test_bad_input_is_refused_before_anything_is_sent() -> None:
    t = HTTP1Transport()
    with pytest.raises(TransportError, match="line break"):
        await t.send(HTTPRequest("POST", "http://127.0.0.1:9/x", {"x-a": "1\r\nx-b: 2"}, b""))
    with pytest.raises(TransportError, match="not an http"):
        await t.send(HTTPRequest("POST", "ftp://127.0.0.1/x", {}, b""))
    await t.aclose()


async def test_an_invalid_response_is_a_read_error() -> None:
    async with Server(answers_once(b"NOT HTTP AT ALL\r\n\r\n", then_wait=True)) as srv:
        t = HTTP1Transport()
        with pytest.raises(ReadError, match="invalid HTTP response"):
            await t.send(post(srv.url))
        await t.aclose()


async def test_https_checks_the_certificate_and_the_host_name() -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    server = await asyncio.start_server(
        lambda r, w: keep_alive(r, w, Server(keep_alive)), "127.0.0.1", 0, ssl=server_ctx
    )
    port = server.sockets[0].getsockname()[1]
    try:
        t = HTTP1Transport(ssl_context=trusting)
        resp = await t.send(post(f"https://localhost:{port}"))
        assert (resp.status, await resp.read()) == (200, b'{"ok":true}')
        await t.aclose()
        untrusting = HTTP1Transport()  # the system's CAs do not know this one
        with pytest.raises(ConnectError):
            await untrusting.send(post(f"https://localhost:{port}"))
        wrong_name = HTTP1Transport(ssl_context=trusting)  # the certificate is for localhost only
        with pytest.raises(ConnectError):
            await wrong_name.send(post(f"https://127.0.0.1:{port}"))
    finally:
        server.close()


async def test_a_stream_read_slowly_pauses_the_upstream_instead_of_buffering_it_all() -> None:
    piece = b"x" * 65536
    sent = 0

    async def fast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        nonlocal sent
        while await srv.read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for _ in range(512):  # 32 MiB
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                sent += len(piece)
            writer.write(b"0\r\n\r\n")

    async with Server(fast) as srv:
        t = HTTP1Transport()
        resp = await t.send(post(srv.url, stream=True))
        await asyncio.sleep(0.3)
        assert sent < 16 << 20  # held back (socket buffers and 1 MiB read ahead), not read into memory
        total = sum([len(c) async for c in resp.iter_chunks()])
        assert total == 512 * len(piece)
        again = await t.send(post(srv.url, stream=True))  # the connection reads again after a pause
        assert len(await again.read()) == 512 * len(piece)
        await t.aclose()
    assert srv.connections == 1
