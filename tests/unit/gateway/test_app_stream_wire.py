"""What the ASGI app hands the server for a stream: the events as they come, the last of them (from
[DONE] on) as the end of the response, sent only once the call is recorded (a client that reads the
ledger right after its stream finds the call, as it does after a complete answer); a stream without
[DONE] ends with an error event, then an empty closing message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from architect.app import create_app
from architect.gateway.providers.transport import HTTPRequest, HTTPResponse, MockTransport, TransportTimeout
from architect.runtime import Runtime
from architect.store import Store
from tests.helpers import make_config

CONTENT = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
USAGE = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3}}\n\n'
DONE = b"data: [DONE]\n\n"


async def _stream(chunks: list[bytes], then: Exception | None = None) -> tuple[list[dict[str, Any]], Store]:
    async def upstream(request: HTTPRequest) -> HTTPResponse:
        async def events() -> AsyncIterator[bytes]:
            for c in chunks:
                yield c
            if then is not None:
                raise then

        return HTTPResponse(200, {"content-type": "text/event-stream"}, events())

    config = make_config(
        {
            "providers": [{"name": "up", "kind": "openai", "base_url": "http://upstream.invalid/v1"}],
            "models": [{"name": "m", "deployments": [{"provider": "up", "model": "x"}]}],
        }
    )
    store = Store.memory()
    runtime = Runtime(config, store, transports={"up": MockTransport(upstream)})
    app = create_app(runtime)
    await runtime.start()
    raw = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
    }
    messages: list[dict[str, Any]] = []
    recorded_at_end: list[int] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        messages.append(msg)
        if msg["type"] == "http.response.body" and not msg.get("more_body"):
            recorded_at_end.append(runtime.ledger.depth + runtime.ledger.written)

    await app(scope, receive, send)
    await runtime.stop()  # drains the ledger
    assert recorded_at_end == [1]  # the call was queued for the ledger before the response ended
    return messages, store


async def test_the_response_ends_after_the_call_is_recorded() -> None:
    messages, store = await _stream([CONTENT, CONTENT + USAGE + DONE])
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert [m["more_body"] for m in bodies] == [True, False]
    assert bodies[0]["body"] == CONTENT
    assert bodies[1]["body"] == CONTENT + DONE  # the usage the client did not ask for is left out
    (row,) = store.ledger.calls_between(0, 1e12)
    assert row["status"] == "ok" and not row["truncated"]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (9, 3)


async def test_a_stream_without_done_ends_with_an_error_event() -> None:
    messages, store = await _stream([CONTENT, CONTENT])
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert [m["more_body"] for m in bodies] == [True, True, True, False]
    assert b'"error"' in bodies[2]["body"] and bodies[3]["body"] == b""
    (row,) = store.ledger.calls_between(0, 1e12)
    assert row["status"] == "error" and row["truncated"]


async def test_a_stream_that_arrives_whole_is_one_closing_message() -> None:
    messages, store = await _stream([CONTENT + CONTENT + USAGE + DONE])
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert [(m["body"], m["more_body"]) for m in bodies] == [(CONTENT + CONTENT + DONE, False)]
    (row,) = store.ledger.calls_between(0, 1e12)
    assert row["status"] == "ok" and row["completion_tokens"] == 3


async def test_bytes_after_done_are_held_until_the_upstream_body_ends() -> None:
    messages, _ = await _stream([CONTENT, DONE, b": keep-alive\n\n", b""])
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert [(m["body"], m["more_body"]) for m in bodies] == [
        (CONTENT, True),
        (DONE + b": keep-alive\n\n", False),
    ]


async def test_an_upstream_that_never_ends_its_body_after_done_gets_the_held_events_then_an_error() -> None:
    messages, store = await _stream([CONTENT, DONE], then=TransportTimeout("upstream stopped sending"))
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert [m["more_body"] for m in bodies] == [True, True, True, False]
    assert bodies[1]["body"] == DONE and b'"error"' in bodies[2]["body"] and bodies[3]["body"] == b""
    (row,) = store.ledger.calls_between(0, 1e12)
    assert row["status"] == "error" and row["truncated"]
