"""The outbound client off the hot path (the gateway's HTTP1Transport) as the alert webhook and the
`llm` executor use it, against real servers on 127.0.0.1: retries with backoff, a timeout per attempt,
TLS verified against the system's trusted CAs, and the error messages a user reads."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

import orjson
import pytest
import trustme

from architect.gateway.providers.http1 import HTTP1Transport
from architect.metrics.alerts import Alerter
from architect.orchestrator.executors.base import TaskContext
from architect.orchestrator.executors.llm import LLMExecutor

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A server on 127.0.0.1 running `handler` per connection; on exit its connections are closed."""
    running: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            running.discard(task)

    server = await asyncio.start_server(connection, "127.0.0.1", 0, ssl=ssl_ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head, await reader.readexactly(length)


def _alerter(**kw: float) -> Alerter:
    runtime = SimpleNamespace(store=SimpleNamespace(alerts=None, budgets=None))
    return Alerter(runtime, webhook_backoff_s=0.01, **kw)  # type: ignore[arg-type]


async def test_the_webhook_is_retried_until_the_server_accepts_and_carries_the_alert_as_json() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                _, body = await _read_request(reader)
            except asyncio.IncompleteReadError:
                break
            seen.append(body)
            status = b"503 Busy" if len(seen) < 3 else b"204 No Content"
            writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    async for port in _serve(handler):
        alerter = _alerter()
        client = HTTP1Transport()
        try:
            ok = await alerter._post(client, f"http://127.0.0.1:{port}/hook", {"id": 7, "rule": "r"})
        finally:
            await client.aclose()
    assert ok and alerter.webhook_sent == 1 and alerter.webhook_failures == 0
    assert len(seen) == 3
    assert orjson.loads(seen[-1]) == {"type": "architect.alert", "alert": {"id": 7, "rule": "r"}}


async def test_a_webhook_that_never_answers_times_out_per_attempt_and_is_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; returns when the client goes away
        writer.close()

    async for port in _serve(silent):
        alerter = _alerter(webhook_attempts=2, webhook_timeout_s=0.2)
        t0 = time.monotonic()
        client = HTTP1Transport()
        try:
            ok = await alerter._post(client, f"http://127.0.0.1:{port}/hook", {"id": 1})
        finally:
            await client.aclose()
        took = time.monotonic() - t0
    assert not ok and alerter.webhook_failures == 1
    assert 0.4 <= took < 5
    assert "attempt 1/2 failed: TransportTimeout" in caplog.text
    assert "gave up on alert 1 after 2 attempts" in caplog.text


async def test_a_webhook_with_an_untrusted_certificate_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    reached: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reached.append((await _read_request(reader))[1])
        except (asyncio.IncompleteReadError, ssl.SSLError, ConnectionError):
            pass
        writer.close()

    async for port in _serve(handler, server_ctx):
        alerter = _alerter(webhook_attempts=1)
        client = HTTP1Transport()
        try:
            ok = await alerter._post(client, f"https://localhost:{port}/hook", {"id": 2})
        finally:
            await client.aclose()
    assert not ok and not reached
    assert "SSLCertVerificationError" in caplog.text


def _ctx() -> TaskContext:
    task = {"key": "T1", "title": "t", "params": {"prompt": "Hi {title}", "model": "m"}}
    return TaskContext(task=task, feature={"title": "f", "project": "p", "slug": "f"})


async def test_the_llm_executor_posts_through_the_gateway_and_reports_errors_it_meets() -> None:
    got: list[tuple[bytes, bytes]] = []
    answers = [
        (b"200 OK", b'{"model":"m","choices":[{"message":{"content":"done"}}],"usage":{"total_tokens":3}}'),
        (b"429 Too Many Requests", b'{"error":{"message":"slow down"}}'),
        (b"200 OK", b"not json"),
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await _read_request(reader))
        status, body = answers[len(got) - 1]
        writer.write(b"HTTP/1.1 %s\r\ncontent-length: %d\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()
        writer.close()

    async for port in _serve(handler):
        ex = LLMExecutor(f"http://127.0.0.1:{port}/v1", "sk-key")
        ok = await ex.run(_ctx())
        limited = await ex.run(_ctx())
        garbled = await ex.run(_ctx())
    assert ok.ok and ok.result == {"model": "m", "output": "done", "usage": {"total_tokens": 3}}
    head, body = got[0]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1")
    assert b"authorization: Bearer sk-key" in head
    assert orjson.loads(body)["messages"] == [{"role": "user", "content": "Hi t"}]
    assert not limited.ok and limited.reason == "gateway answered 429: slow down"
    assert not garbled.ok and (garbled.reason or "").startswith("gateway call failed: JSONDecodeError")


async def test_the_llm_executors_health_names_an_unreachable_gateway() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    port = 0
    async for port in _serve(handler):  # noqa: B007 (the port is closed again after: nothing listens there)
        pass
    why = await LLMExecutor(f"http://127.0.0.1:{port}/v1").health()
    assert why is not None
    assert why.startswith(f"gateway http://127.0.0.1:{port}/readyz unreachable: ConnectError: cannot connect")
