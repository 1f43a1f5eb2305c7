"""A streamed chat call from its first byte on: `ChatStream` holds the client's events (relayed from
the upstream, or replayed from the cache) and is the one owner of the call's end. Its `end` settles
the deployment's slot and breaker, the cost, the budget and the ledger exactly once, whatever ends
the stream: the upstream's `[DONE]`, a broken upstream, an error event, the client leaving before
or after the first byte, or the end of a cache replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable

from architect.errors import ClientClosed, GatewayError, ProviderError
from architect.gateway.call import Call
from architect.gateway.executor import transport_error
from architect.gateway.hooks import ResponseCache
from architect.gateway.providers.base import StreamTranslator, Usage
from architect.gateway.providers.transport import HTTPResponse, TransportError
from architect.gateway.routing import Deployment

__all__ = ["ChatStream", "StreamStart", "failed"]


class StreamStart:
    """An upstream stream that has produced its first bytes: headers can be sent."""

    __slots__ = ("deployment", "first", "response", "translator")

    def __init__(
        self, deployment: Deployment, response: HTTPResponse, translator: StreamTranslator, first: bytes
    ) -> None:
        self.deployment = deployment
        self.response = response
        self.translator = translator
        self.first = first


def failed(call: Call, exc: BaseException) -> None:
    """Record on `call` how it failed: a gateway error with its status, the client leaving (499,
    `cancelled`) or anything else (500)."""
    if isinstance(exc, GatewayError):
        call.status, call.http_status, call.error = "error", exc.status, exc
    elif isinstance(exc, asyncio.CancelledError | GeneratorExit | ClientClosed):
        call.status, call.http_status = "cancelled", 499
        call.error = ClientClosed("the client disconnected")
    else:
        call.status, call.http_status = "error", 500
        call.error = exc


class ChatStream:
    """The client's byte stream of one call (`events`) and the end of that call (`end`).

    `ended` is set once the call is settled and recorded; the app then sends the chunk it is given
    as the last one of the response. `aclose` is what the app calls when it is done with the stream
    for any reason (sent, failed or the client left): it closes the events and ends the call, which
    covers a stream whose events never started (the client left before the first byte was sent)."""

    __slots__ = ("_cache", "_finish", "call", "ended", "events", "start")

    def __init__(
        self,
        call: Call,
        finish: Callable[[Call], Awaitable[None]],
        cache: ResponseCache,
        start: StreamStart | None,
        replay: list[bytes] | None = None,
    ) -> None:
        """`start`: the upstream stream to relay; None for a cache hit, whose `replay` events are sent.
        `finish` settles the cost and budget and queues the ledger record (`Pipeline.finish`)."""
        self.call = call
        self.start = start
        self.ended = False
        self._finish = finish
        self._cache = cache
        self.events: AsyncGenerator[bytes, None] = (
            self._relay(start) if start is not None else self._replay(replay or [])
        )

    async def aclose(self) -> None:
        await self.events.aclose()
        await self.end()

    async def end(self) -> None:
        """Settle and record the call, once: close the upstream response, count a stream that was
        never relayed to its end as cancelled, take the usage the upstream reported (or estimate the
        completion from the text relayed), settle the deployment's slot and breaker, then the cost,
        the budget and the ledger."""
        if self.ended:
            return
        self.ended = True
        call, start = self.call, self.start
        if start is not None:
            tr = start.translator
            start.response.close()
            if call.status == "ok" and not tr.done and not call.truncated:
                failed(call, asyncio.CancelledError())  # never relayed to the end: the client left
            if call.usage is None:
                call.usage = tr.usage or Usage(
                    completion_tokens=_count_text(tr.completion_text(), call.model)
                )
                if tr.usage is None:
                    call.tokens_estimated = True
            settle, call.settle_stream = call.settle_stream, None
            if settle is not None:  # the deployment's slot and breaker outcome
                healthy = None if call.status == "cancelled" else (call.status == "ok" and not call.truncated)
                settle(healthy, call.usage)
        await self._finish(call)

    async def _replay(self, events: list[bytes]) -> AsyncGenerator[bytes, None]:
        try:
            for ev in events:
                yield ev
        finally:
            await self.end()

    async def _relay(self, start: StreamStart) -> AsyncGenerator[bytes, None]:
        """The client's bytes, passed on as they arrive, except that the events from the read that
        completes the stream (`[DONE]`) on are held until the upstream body ends; then the call is
        ended (settled and recorded), and they are yielded last with `ended` set, for the app to send
        as the end of the response. So a client that has seen its stream end finds the call recorded,
        and a stream's response ends with its last events instead of an extra empty message (one
        write fewer). An upstream ends its body right after `[DONE]`; one that does not delays that
        last read's events by at most the deployment's read timeout, after which the stream ends with
        an error event as before. An error event (the upstream's, or the translator's for an event
        that is not valid JSON) ends the relay: nothing after it is read, and the call is recorded
        truncated."""
        call = self.call
        tr = start.translator
        parts: list[bytes] | None = [] if call.cache_tier == "miss" else None
        try:
            if parts is not None:
                parts.append(start.first)
            held = start.first if tr.done else b""
            if not held:
                yield start.first
            try:
                async for chunk in start.response.iter_chunks():
                    out = tr.feed(chunk)
                    if not out:
                        continue
                    if parts is not None:
                        parts.append(out)
                    if tr.done:  # from the read that completes the stream on, held
                        held += out
                    else:
                        yield out
                    if tr.error is not None:
                        break  # an error event ended the stream for the client: read no further
            except TransportError as exc:
                err = transport_error(exc, start.deployment)
                call.truncated, call.status, call.error = True, "error", err
                if held:
                    yield held
                yield call.api.stream_error(
                    f"the upstream stream broke after it started ({err.kind}); the answer is incomplete",
                    "stream_error",
                    tr,
                )
                return
            if tr.error is not None:
                call.status, call.error, call.truncated = "error", tr.error, True
                if held:
                    yield held
                return
            if not tr.done:
                call.truncated, call.status = True, "error"
                call.error = ProviderError("stream ended without [DONE]", kind="truncated")
                yield call.api.stream_error(
                    "the upstream stream ended before it was complete; the answer is incomplete",
                    "stream_error",
                    tr,
                )
                return
            call.usage = tr.usage
            if parts is not None and call.cache_tier == "miss":
                body = call.api.assemble(b"".join(parts))
                if body is not None:
                    await self._cache.store(call, body)
                else:  # nothing to store: wake any coalesced waiters
                    self._cache.abandon(call, None)
            await self.end()
            yield held
        except BaseException as exc:  # client disconnect (GeneratorExit/CancelledError) or other
            if call.status == "ok" and not self.ended:
                failed(call, exc)
            raise
        finally:
            await self.end()


def _count_text(text: str, model: str) -> int:
    """tiktoken, loaded only when an upstream streamed no usage (rare): its tables take ~80 MiB."""
    from architect.gateway.tokens import count_text

    return count_text(text, model)
