"""The ordered request pipeline:

    authenticate (app) → key limits → cache lookup / coalescing → budget reservation
      → route and attempt(s) (executor) → settle cost → ledger

`Pipeline.chat` / `chat_stream` / `embeddings` run one call through it; `finish` settles and records
it (always, also on errors and client disconnects). A cache hit reserves no budget and is recorded
as a zero-cost call with the cost and latency it saved."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from architect.config import Config, PriceConfig
from architect.errors import ClientClosed, GatewayError, NotFound, PermissionDenied, ProviderError
from architect.events import EventBus
from architect.gateway.call import Call, parse_tags, tag_columns
from architect.gateway.costs import cost_usd, worst_case_cost
from architect.gateway.estimate import chat_prompt_size, text_prompt_size
from architect.gateway.executor import STREAM_DONE, Executor, transport_error
from architect.gateway.hooks import Hooks
from architect.gateway.ledger import LedgerWriter
from architect.gateway.providers.base import StreamTranslator, Usage, sse_error_event
from architect.gateway.providers.transport import HTTPRequest, HTTPResponse, TransportError
from architect.gateway.routing import Deployment, Router

__all__ = ["Pipeline", "StreamStart"]


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


class Pipeline:
    def __init__(
        self,
        config: Config,
        router: Router,
        ledger: LedgerWriter,
        events: EventBus,
        hooks: Hooks | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.ledger = ledger
        self.events = events
        self.executor = Executor(router, events=events)
        self.hooks = hooks or Hooks()
        self._redact = [re.compile(p) for p in config.ledger.redact]
        self.baseline_price: PriceConfig | None = None
        if config.baseline:
            g = router.group(config.baseline)
            self.baseline_price = g.deployments[0].config.price if g else None

    def reconfigure(self, config: Config, router: Router) -> None:
        """Swap in a new config/router (config reload); calls in flight keep their deployments."""
        self.config = config
        self.router = router
        self.executor = Executor(router, events=self.events)
        self._redact = [re.compile(p) for p in config.ledger.redact]
        g = router.group(config.baseline) if config.baseline else None
        self.baseline_price = g.deployments[0].config.price if g else None

    # -- steps before routing ------------------------------------------------------------------
    async def _prepare(self, call: Call) -> None:
        group = self.router.group(call.model)
        if group is None:
            raise NotFound(
                f"model '{call.model}' does not exist; GET /v1/models lists the available ones", param="model"
            )
        allowed = call.principal.models
        if allowed is not None and call.model not in allowed:
            raise PermissionDenied(
                f"this key may not use model '{call.model}'", param="model", code="model_not_allowed"
            )
        call.group = group
        _apply_key_tags(call)
        size = (
            chat_prompt_size(call.body.get("messages") or (), call.body)
            if call.endpoint == "chat"
            else text_prompt_size(call.raw_body)
        )
        call.prompt_size, call.est_prompt_tokens = size, size.estimate
        await self.hooks.key_limits.admit(call)

    async def _reserve(self, call: Call) -> None:
        """Reserve the call's worst case on its budgets: the prompt's upper bound (never below its
        real token count) and the completion's limit, at the dearest deployment it may reach."""
        if not self.hooks.budgets_active:
            return
        bound = call.prompt_size.bound if call.prompt_size is not None else 0
        worst = 0.0
        for g in self.executor.chain(call.group):
            for d in g.deployments:
                worst = max(worst, worst_case_cost(d.config.price, bound, call.max_tokens or 4096))
        await self.hooks.budgets.reserve(call, worst)

    # -- chat, non-streaming ---------------------------------------------------------------------
    async def chat(self, call: Call) -> bytes:
        try:
            await self._prepare(call)
            hit = await self.hooks.cache.lookup(call)
            if hit is not None:
                call.cache, call.saved_cost_usd, call.saved_ms = hit.tier, hit.cost_usd, hit.latency_ms
                call.usage = hit.usage  # a non-stream answer has no first token: ttft_ms stays None
                return hit.body
            await self._reserve(call)
            body = await self.executor.run(call, lambda d: self._send_chat(call, d))
            call.response_body = body
            if call.cache == "miss":
                await self.hooks.cache.store(call, body)
            return body
        except BaseException as exc:
            self._failed(call, exc)
            raise
        finally:
            await self.finish(call)

    @staticmethod
    async def _post(d: Deployment, request: tuple[str, bytes, dict[str, str]]) -> bytes:
        """One complete (non-stream) exchange with a deployment, bounded by its `timeout_s` (the
        transport enforces it, body included); a non-2xx answer raises its error."""
        resp = await d.transport.send(_http_request(d, request, stream=False))
        data = await resp.read()
        if resp.status >= 300:
            raise d.adapter.error(resp.status, resp.headers, data)
        return data

    async def _send_chat(self, call: Call, d: Deployment) -> bytes:
        t0 = time.perf_counter()
        data = await self._post(d, d.adapter.chat_request(dict(call.body), d.model, stream=False))
        result = d.adapter.chat_response(data)
        call.extra["attempt_ttft_ms"] = (time.perf_counter() - t0) * 1000.0
        call.deployment = d
        call.usage = result.usage
        return result.body

    # -- chat, streaming -------------------------------------------------------------------------
    async def chat_stream(self, call: Call) -> tuple[StreamStart | None, AsyncIterator[bytes]]:
        """Returns the started upstream (None for a cache hit) and the client's byte stream. Errors before
        the first byte raise (so the app can answer with a status); the call is recorded when the
        stream ends."""
        try:
            await self._prepare(call)
            hit = await self.hooks.cache.lookup(call)
            if hit is not None:
                call.cache, call.saved_cost_usd, call.saved_ms = hit.tier, hit.cost_usd, hit.latency_ms
                call.usage = hit.usage
                from architect.gateway.sse import completion_to_sse

                return None, self._replay(call, completion_to_sse(hit.body, call.include_usage))
            await self._reserve(call)
            start = await self.executor.run(call, lambda d: self._open_stream(call, d))
        except BaseException as exc:
            self._failed(call, exc)
            await self.finish(call)
            raise
        return start, self._relay(call, start)

    async def _open_stream(self, call: Call, d: Deployment) -> StreamStart:
        request = d.adapter.chat_request(dict(call.body), d.model, stream=True)
        t0 = time.perf_counter()
        async with asyncio.timeout(d.config.timeout_s):
            resp = await d.transport.send(_http_request(d, request, stream=True))
            if resp.status >= 300:
                raise d.adapter.error(resp.status, resp.headers, await resp.read())
            translator = d.adapter.stream_translator(call.include_usage, d.model)
            chunks = resp.iter_chunks()
            first = b""
            try:
                while not first:
                    first = translator.feed(await anext(chunks))
            except StopAsyncIteration:
                resp.close()
                raise ProviderError(
                    f"{d.name}: the stream ended before any data", kind="empty_stream"
                ) from None
            except BaseException:
                resp.close()
                raise
        if translator.error is not None:
            resp.close()
            raise translator.error
        call.extra["attempt_ttft_ms"] = (time.perf_counter() - t0) * 1000.0
        call.ttft_ms = call.elapsed_ms()
        call.deployment = d
        return StreamStart(d, resp, translator, first)

    async def _relay(self, call: Call, start: StreamStart) -> AsyncIterator[bytes]:
        """The client's bytes, passed on as they arrive, except that the events from the read that
        completes the stream (`[DONE]`) on are held until the upstream body ends; then the call is
        settled and recorded, and they are yielded last with `call.extra["stream_ended"]` set, for the
        app to send as the end of the response. So a client that has seen its stream end finds the call
        recorded, and a stream's response ends with its last events instead of an extra empty message
        (one write fewer). An upstream ends its body right after `[DONE]`; one that does not delays that
        last read's events by at most the deployment's read timeout, after which the stream ends with
        an error event as before. An error event (the upstream's, or the translator's for an event that
        is not valid JSON) ends the relay: nothing after it is read, and the call is recorded truncated."""
        tr = start.translator
        parts: list[bytes] | None = [] if call.cache == "miss" else None
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
                yield sse_error_event(
                    f"the upstream stream broke after it started ({err.kind}); the answer is incomplete"
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
                yield sse_error_event(
                    "the upstream stream ended before it was complete; the answer is incomplete"
                )
                return
            call.usage = tr.usage
            if parts is not None and call.cache == "miss":
                from architect.gateway.sse import sse_to_completion

                body = sse_to_completion(b"".join(parts))
                if body is not None:
                    await self.hooks.cache.store(call, body)
                else:  # nothing to store: wake any coalesced waiters
                    self.hooks.cache.abandon(call, None)
            await self.end_stream(call, start)
            yield held
        except BaseException as exc:  # client disconnect (GeneratorExit/CancelledError) or other
            if call.status == "ok" and not call.extra.get("stream_ended"):
                self._failed(call, exc)
            raise
        finally:
            await self.end_stream(call, start)

    async def end_stream(self, call: Call, start: StreamStart | None) -> None:
        """Settle and record a stream. Idempotent; the app also calls it, because a stream whose relay
        never started (the client left before the first byte was sent) runs no `finally` of its own."""
        if call.extra.get("stream_ended"):
            return
        call.extra["stream_ended"] = True
        if start is not None:
            tr = start.translator
            start.response.close()
            if call.status == "ok" and not tr.done and not call.truncated:
                self._failed(call, asyncio.CancelledError())  # never relayed to the end: the client left
            if call.usage is None:
                call.usage = tr.usage or Usage(
                    completion_tokens=_count_text(tr.completion_text(), call.model)
                )
                if tr.usage is None:
                    call.tokens_estimated = True
            done = call.extra.pop(STREAM_DONE, None)
            if done is not None:  # settle the deployment's slot and breaker outcome
                healthy = None if call.status == "cancelled" else (call.status == "ok" and not call.truncated)
                done(healthy, call.usage)
        await self.finish(call)

    async def _replay(self, call: Call, events: list[bytes]) -> AsyncIterator[bytes]:
        try:
            for ev in events:
                yield ev
        finally:
            await self.finish(call)

    # -- embeddings ------------------------------------------------------------------------------
    async def embeddings(self, call: Call) -> bytes:
        try:
            await self._prepare(call)
            await self._reserve(call)
            return await self.executor.run(call, lambda d: self._send_embeddings(call, d))
        except BaseException as exc:
            self._failed(call, exc)
            raise
        finally:
            await self.finish(call)

    async def _send_embeddings(self, call: Call, d: Deployment) -> bytes:
        data = await self._post(d, d.adapter.embeddings_request(dict(call.body), d.model))
        result = d.adapter.embeddings_response(data)
        call.deployment, call.usage = d, result.usage
        return result.body

    # -- settle and record -----------------------------------------------------------------------
    @staticmethod
    def _failed(call: Call, exc: BaseException) -> None:
        if isinstance(exc, GatewayError):
            call.status, call.http_status, call.error = "error", exc.status, exc
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit | ClientClosed):
            call.status, call.http_status = "cancelled", 499
            call.error = ClientClosed("the client disconnected")
        else:
            call.status, call.http_status = "error", 500
            call.error = exc

    async def finish(self, call: Call) -> None:
        """Settle the cost and queue the ledger row. Idempotent."""
        if call.extra.get("finished"):
            return
        call.extra["finished"] = True
        d: Deployment | None = call.deployment
        usage = call.usage
        if usage is None and call.status == "cancelled" and call.attempt_rows and call.endpoint == "chat":
            # the client went away mid-call: the prompt was sent, so count it
            usage = Usage(
                prompt_tokens=call.est_prompt_tokens
                or _count_messages(call.body.get("messages") or [], call.model)
            )
            call.tokens_estimated = True
        if usage is None and call.status == "ok" and call.response_body is not None and d is not None:
            usage = _estimate_from_body(call)
        call.usage = usage
        if d is not None and usage is not None and call.cache in (None, "miss", "bypass"):
            call.cost_usd = cost_usd(d.config.price, usage)
        baseline = cost_usd(self.baseline_price, usage) if self.baseline_price and usage else None
        if call.budget_reservation is not None:
            try:
                await asyncio.shield(self.hooks.budgets.settle(call, call.cost_usd))
            except asyncio.CancelledError:
                pass
        if call.cache == "miss" and call.status != "ok":
            self.hooks.cache.abandon(call, call.error)
        self.hooks.key_limits.release(
            call, (usage.prompt_tokens + usage.completion_tokens) if usage else None
        )
        row = self._row(call, d, usage, baseline)
        for a in call.attempt_rows:
            a.setdefault("status", "cancelled")
            a.setdefault("total_ms", row["total_ms"])
            if d is not None and a["deployment"] == d.name and a["status"] == "ok" and usage is not None:
                a["prompt_tokens"], a["completion_tokens"] = usage.prompt_tokens, usage.completion_tokens
                a["cost_usd"] = call.cost_usd
        row["attempt_log"] = call.attempt_rows or None
        self.ledger.submit(row)
        if self.events.subscribers:
            self.events.publish("call", {k: row[k] for k in _EVENT_FIELDS})

    def _row(
        self, call: Call, d: Deployment | None, usage: Usage | None, baseline: float | None
    ) -> dict[str, Any]:
        err = call.error
        row: dict[str, Any] = {
            "request_id": call.request_id,
            "ts": call.ts,
            "endpoint": call.endpoint,
            "key_id": call.principal.key_id,
            "tags": orjson.dumps(call.tags).decode() if call.tags else None,
            "model": call.model,
            "model_group": call.group.name if call.group is not None else None,
            "deployment": d.name if d else None,
            "provider": d.provider if d else None,
            "simulated": bool(d and d.simulated),
            "stream": call.stream,
            "attempts": len(call.attempt_rows),
            "fallbacks": call.fallbacks,
            "status": call.status,
            "http_status": call.http_status,
            "error_kind": getattr(err, "kind", None)
            or (getattr(err, "code", None) if err is not None else None),
            "error_message": (getattr(err, "message", None) or str(err))[:500] if err is not None else None,
            "truncated": call.truncated,
            "ttft_ms": call.ttft_ms,
            "total_ms": call.elapsed_ms(),
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "cached_tokens": usage.cached_tokens if usage else 0,
            "tokens_estimated": call.tokens_estimated,
            "cost_usd": call.cost_usd,
            "baseline_cost_usd": baseline,
            "cache": call.cache,
            "saved_cost_usd": call.saved_cost_usd,
            "saved_ms": call.saved_ms,
            "route_reason": call.route_reason,
        }
        if row["error_kind"] is None and call.status == "error" and err is not None:
            row["error_kind"] = type(err).__name__
        row.update(tag_columns(call.tags))
        self._bodies(call, row)
        return row

    def _bodies(self, call: Call, row: dict[str, Any]) -> None:
        mode = call.principal.extra.get("bodies") or self.config.ledger.bodies
        if mode == "off":
            return
        if mode == "hashed":
            row["body_hash"] = hashlib.sha256(call.raw_body).hexdigest()
            return
        req = call.raw_body.decode("utf-8", "replace")
        resp = (call.response_body or b"").decode("utf-8", "replace") or None
        for rx in self._redact:
            req = rx.sub("[REDACTED]", req)
            resp = rx.sub("[REDACTED]", resp) if resp else resp
        row["body_hash"] = hashlib.sha256(call.raw_body).hexdigest()
        row["request_body"], row["response_body"] = req, resp


_EVENT_FIELDS = (
    "request_id",
    "ts",
    "model",
    "deployment",
    "status",
    "http_status",
    "total_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cache",
    "key_id",
    "project",
)


def _apply_key_tags(call: Call) -> None:
    """A key's default tags fill in the tags the client did not send; the project the call is then
    tagged with must be one the key is granted (`Principal.projects`; None = every project), or the
    call is refused (403 project_not_allowed), never re-tagged. The refusal names only the project the
    client sent and where it came from."""
    p = call.principal
    for k, v in p.tags.items():
        call.tags.setdefault(k, v)
    project = call.tags.get("project")
    if project is None or p.projects is None or project in p.projects:
        return
    header = call.extra.get("headers", {}).get("x-architect-tags")
    source = "x-architect-tags" if parse_tags(header, None).get("project") == project else "metadata.project"
    raise PermissionDenied(
        f"{source}: this key may not tag calls with project '{project}' (it is not granted that project)",
        param=source,
        code="project_not_allowed",
    )


def _http_request(d: Deployment, request: tuple[str, bytes, dict[str, str]], *, stream: bool) -> HTTPRequest:
    """The adapter's (path, body, headers) as a POST to the deployment, with its headers and timeout."""
    path, payload, headers = request
    return HTTPRequest(
        "POST", d.base_url + path, {**d.headers, **headers}, payload, d.config.timeout_s, stream
    )


def _estimate_from_body(call: Call) -> Usage | None:
    try:
        obj = orjson.loads(call.response_body or b"")
        text = "".join((c.get("message") or {}).get("content") or "" for c in obj.get("choices") or ())
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return None
    call.tokens_estimated = True
    return Usage(
        prompt_tokens=_count_messages(call.body.get("messages") or [], call.model),
        completion_tokens=_count_text(text, call.model),
    )


# tiktoken is loaded only when an upstream reports no usage (rare): its tables take ~80 MiB.
def _count_text(text: str, model: str) -> int:
    from architect.gateway.tokens import count_text

    return count_text(text, model)


def _count_messages(messages: list[Any], model: str) -> int:
    from architect.gateway.tokens import count_messages

    return count_messages(messages, model)
