"""The ordered request pipeline:

    authenticate (app) → key limits → cache lookup / coalescing → budget reservation
      → route and attempt(s) (executor) → settle cost → ledger

`Pipeline.chat` / `chat_stream` / `embeddings` run one call through it; `finish` settles and records
it (always, also on errors and client disconnects: a non-stream call when it returns or raises, a
stream when its `ChatStream` ends). A cache hit reserves no budget and is recorded as a zero-cost
call with the cost and latency it saved. The record is one `CallRecord` with its `AttemptRecord`s.

Prices are the deployments' resolved prices (`gateway.prices`): a call to a deployment whose price is
unknown is recorded with cost_source "unknown" (its cost_usd 0 is not a price) and no baseline, and
its budgets hold and are charged the dearest known price of its group (`Deployment.budget_price`)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from typing import Any

import orjson

from architect.config import Config, PriceConfig
from architect.errors import InvalidRequest, NotFound, PermissionDenied, ProviderError
from architect.events import EventBus
from architect.gateway.call import Call, parse_tags
from architect.gateway.constraints import admitted, check_chain, request_needs
from architect.gateway.costs import cost_usd, worst_case_cost
from architect.gateway.estimate import chat_prompt_size, text_prompt_size
from architect.gateway.executor import Executor
from architect.gateway.hooks import Hooks
from architect.gateway.ledger import LedgerWriter
from architect.gateway.providers.base import Usage
from architect.gateway.providers.transport import HTTPRequest
from architect.gateway.routing import Deployment, Group, Router
from architect.gateway.stream import ChatStream, StreamStart, failed
from architect.records import CallRecord

__all__ = ["Pipeline"]


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
        self.baseline_price: PriceConfig | None = router.baseline_price(config.baseline)

    def reconfigure(self, config: Config, router: Router) -> None:
        """Swap in a new config/router (config reload); calls in flight keep their deployments."""
        self.config = config
        self.router = router
        self.executor = Executor(router, events=self.events)
        self._redact = [re.compile(p) for p in config.ledger.redact]
        self.baseline_price = router.baseline_price(config.baseline)

    # -- steps before routing ------------------------------------------------------------------
    async def _prepare(self, call: Call) -> None:
        group = self.router.group(call.model)
        if group is None:
            raise NotFound(
                f"model '{call.model}' does not exist; GET /v1/models lists the available ones", param="model"
            )
        allowed = call.principal.models
        if allowed is not None and group.name not in allowed and call.model not in allowed:
            raise PermissionDenied(
                f"this key may not use model '{call.model}'", param="model", code="model_not_allowed"
            )
        call.group = group
        _apply_key_tags(call)
        if call.api.stateful:
            await self.hooks.conversations.resolve(call)  # may set the prompt's size (what it refers to)
        size = call.prompt_size or (
            chat_prompt_size(call.body.get("messages") or (), call.body)
            if call.endpoint == "chat"
            else text_prompt_size(call.raw_body)
        )
        call.prompt_size, call.est_prompt_tokens = size, size.estimate
        self._route(call, group)
        await self.hooks.key_limits.admit(call)

    def _route(self, call: Call, group: Group) -> None:
        """The call's hard constraints and route settings; for an `auto` group, its decision (the group
        the call goes to and the chain after it). Refuses (400 naming the constraint) a call no
        deployment of its chain may take."""
        tags = call.tags
        call.task_type = tags.get("type") or tags.get("role") or "unknown"
        if self.router.limited and call.endpoint != "embeddings":
            call.needs = request_needs(call.endpoint, call.body)
        routes = self.hooks.routes
        routes.resolve(call)
        if group.config.strategy != "auto":
            if call.needs or call.local_only:
                chain = self.executor.chain(group)
                extra = (self.router.group(n) for g in chain for n in g.config.context_window_fallbacks)
                chain += [g for g in extra if g is not None and g not in chain]
                check_chain(call.model, chain, call.needs, call.local_only)
            return
        candidates = [g for n in group.config.candidates if (g := self.router.groups.get(n)) is not None]
        eligible = [g for g in candidates if self._fits(call, g)]
        if not eligible:
            check_chain(call.model, candidates, call.needs, call.local_only)
            low = call.prompt_size.low if call.prompt_size is not None else call.est_prompt_tokens or 0
            raise InvalidRequest(
                f"context window: the request (at least about {low} prompt + {call.max_tokens} completion "
                f"tokens) is larger than the context window of every candidate of model '{call.model}'",
                param="messages",
                code="context_length_exceeded",
            )
        routes.decide(call, group, candidates, eligible)

    @staticmethod
    def _fits(call: Call, g: Group) -> bool:
        """Whether a deployment of `g` passes the call's hard constraints and its window fits the call."""
        low = call.prompt_size.low if call.prompt_size is not None else call.est_prompt_tokens or 0
        need = low + call.max_tokens
        return any(
            d.config.context_window is None or need <= d.config.context_window
            for d in admitted(g, call.needs, call.local_only)
        )

    async def _reserve(self, call: Call) -> None:
        """Reserve the call's worst case on its budgets: the prompt's upper bound (never below its
        real token count) and the completion's limit, at the dearest deployment it may reach (a
        deployment whose price is unknown counts at its `budget_price`; with none, it is skipped)."""
        if not self.hooks.budgets_active and not self.hooks.budgets.may_apply(call):
            return
        assert call.group is not None, "_prepare resolves the group"
        bound = call.prompt_size.bound if call.prompt_size is not None else 0
        worst = 0.0
        for g in self.executor.chain(call.group, call):
            for d in admitted(g, call.needs, call.local_only):
                if d.budget_price is not None:
                    worst = max(worst, worst_case_cost(d.budget_price, bound, call.max_tokens or 4096))
        await self.hooks.budgets.reserve(call, worst)

    # -- chat, non-streaming ---------------------------------------------------------------------
    async def chat(self, call: Call) -> bytes:
        try:
            await self._prepare(call)
            hit = await self.hooks.cache.lookup(call)
            if hit is not None:
                call.cache_tier, call.saved_cost_usd, call.saved_ms = hit.tier, hit.cost_usd, hit.latency_ms
                call.usage = hit.usage  # a non-stream answer has no first token: ttft_ms stays None
                return call.api.from_cache(call, hit.body)  # with this call's own ids
            await self._reserve(call)
            body = await self.executor.run(call, lambda d: self._send_chat(call, d))
            call.response_body = body
            if call.cache_tier == "miss":
                await self.hooks.cache.store(call, body)
            return body
        except BaseException as exc:
            failed(call, exc)
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
        api = call.api
        data = await self._post(d, api.request(call, d, False))
        result = api.response(call, d, data)
        call.attempt_ttft_ms = (time.perf_counter() - t0) * 1000.0
        call.deployment = d
        call.usage = result.usage
        return result.body

    # -- chat, streaming -------------------------------------------------------------------------
    async def chat_stream(self, call: Call) -> ChatStream:
        """The call's stream once its first bytes are there (from the upstream, or the cache). Errors
        before the first byte raise, so the app can answer with a status; the call is then recorded
        here. Otherwise it is recorded when the stream ends (`ChatStream.end`)."""
        try:
            await self._prepare(call)
            hit = await self.hooks.cache.lookup(call)
            if hit is not None:
                call.cache_tier, call.saved_cost_usd, call.saved_ms = hit.tier, hit.cost_usd, hit.latency_ms
                call.usage = hit.usage
                replay = call.api.replay(call, call.api.from_cache(call, hit.body))
                return ChatStream(call, self.finish, self.hooks.cache, None, replay)
            await self._reserve(call)
            start = await self.executor.run(call, lambda d: self._open_stream(call, d))
        except BaseException as exc:
            failed(call, exc)
            await self.finish(call)
            raise
        return ChatStream(call, self.finish, self.hooks.cache, start)

    async def _open_stream(self, call: Call, d: Deployment) -> StreamStart:
        request = call.api.request(call, d, True)
        t0 = time.perf_counter()
        async with asyncio.timeout(d.config.timeout_s):
            resp = await d.transport.send(_http_request(d, request, stream=True))
            if resp.status >= 300:
                raise d.adapter.error(resp.status, resp.headers, await resp.read())
            translator = call.api.stream_translator(call, d)
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
        call.attempt_ttft_ms = (time.perf_counter() - t0) * 1000.0
        call.ttft_ms = call.elapsed_ms()
        call.deployment = d
        return StreamStart(d, resp, translator, first)

    # -- embeddings ------------------------------------------------------------------------------
    async def embeddings(self, call: Call) -> bytes:
        try:
            await self._prepare(call)
            await self._reserve(call)
            return await self.executor.run(call, lambda d: self._send_embeddings(call, d))
        except BaseException as exc:
            failed(call, exc)
            raise
        finally:
            await self.finish(call)

    async def _send_embeddings(self, call: Call, d: Deployment) -> bytes:
        data = await self._post(d, call.api.request(call, d, False))
        result = call.api.response(call, d, data)
        call.deployment, call.usage = d, result.usage
        return result.body

    # -- settle and record -----------------------------------------------------------------------
    async def finish(self, call: Call) -> None:
        """Settle the cost, the budget, the cache's coalesced waiters and the key's limit, then queue
        the ledger record (and publish the call's event). Runs once per call: a non-stream call's
        when it returns or raises, a stream's from `ChatStream.end`."""
        d = call.deployment
        usage = call.usage
        if usage is None and call.status == "cancelled" and call.attempts and call.api.streams:
            # the client went away mid-call: the prompt was sent, so count it
            usage = Usage(
                prompt_tokens=call.est_prompt_tokens
                or _count_messages(call.body.get("messages") or [], call.model)
            )
            call.tokens_estimated = True
        if usage is None and call.status == "ok" and call.response_body is not None and d is not None:
            usage = _estimate_from_body(call)
        call.usage = usage
        tier = call.cache_tier
        charge = 0.0  # what budgets are charged: the cost, or for an unknown price its stand-in
        if d is not None and usage is not None and tier in (None, "miss", "bypass"):
            if d.price is not None:
                call.cost_usd = charge = cost_usd(d.price, usage)
            elif d.budget_price is not None:
                charge = cost_usd(d.budget_price, usage)
        source = _cost_source(call, d)
        baseline = (
            cost_usd(self.baseline_price, usage)
            if self.baseline_price and usage and source != "unknown"
            else None
        )
        if call.budget_reservation is not None:
            try:
                await asyncio.shield(self.hooks.budgets.settle(call, charge))
            except asyncio.CancelledError:
                pass
        if tier == "miss" and call.status != "ok":
            self.hooks.cache.abandon(call, call.error)
        if call.status == "ok" and call.api.stateful:
            self.hooks.conversations.keep(call)
        self.hooks.key_limits.release(
            call, (usage.prompt_tokens + usage.completion_tokens) if usage else None
        )
        record = self._record(call, d, usage, baseline)
        record.cost_source = source
        if call.routed_by is not None:
            self.hooks.routes.settled(call)
        self.ledger.submit(record)
        if self.events.subscribers:
            self.events.publish("call", {k: getattr(record, k) for k in _EVENT_FIELDS})

    def _record(
        self, call: Call, d: Deployment | None, usage: Usage | None, baseline: float | None
    ) -> CallRecord:
        total_ms = call.elapsed_ms()
        attempts = call.attempts
        for a in attempts:
            if a.status is None:  # never ended: the client left
                a.status = "cancelled"
            if a.total_ms is None:
                a.total_ms = total_ms
        if d is not None and usage is not None:
            for a in attempts:
                if a.deployment == d.name and a.status == "ok":
                    a.prompt_tokens, a.completion_tokens = usage.prompt_tokens, usage.completion_tokens
                    a.cost_usd = call.cost_usd
        err = call.error
        error_kind = error_message = None
        if err is not None:
            error_kind = getattr(err, "kind", None) or getattr(err, "code", None)
            if error_kind is None and call.status == "error":
                error_kind = type(err).__name__
            error_message = (getattr(err, "message", None) or str(err))[:500]
        tags = call.tags
        group = call.group
        record = CallRecord(
            request_id=call.request_id,
            ts=call.ts,
            endpoint=call.endpoint,
            key_id=call.principal.key_id,
            project=tags.get("project"),
            feature=tags.get("feature"),
            task=tags.get("task"),
            tags=tags or None,
            model=call.model,
            # the group asked for; for an auto route, the candidate that answered (it may be one its
            # chain fell back to): the one an outcome of the call judges
            model_group=(
                d.group
                if call.routed_by is not None and d is not None
                else group.name
                if group is not None
                else None
            ),
            deployment=d.name if d is not None else None,
            provider=d.provider if d is not None else None,
            simulated=d is not None and d.simulated,
            stream=call.stream,
            attempts=len(attempts),
            fallbacks=call.fallbacks,
            status=call.status,
            http_status=call.http_status,
            error_kind=error_kind,
            error_message=error_message,
            truncated=call.truncated,
            ttft_ms=call.ttft_ms,
            total_ms=total_ms,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cached_tokens=usage.cached_tokens if usage else 0,
            tokens_estimated=call.tokens_estimated,
            cost_usd=call.cost_usd,
            baseline_cost_usd=baseline,
            cache=call.cache_tier,
            saved_cost_usd=call.saved_cost_usd,
            saved_ms=call.saved_ms,
            route_reason=call.route_reason,
            attempt_log=attempts or None,
            dropped=",".join(call.dropped) if call.dropped else None,
            routed_by=call.routed_by,
            route_scores=call.route_scores,
            task_type=call.task_type,
            explored=call.explored,
        )
        self._bodies(call, record)
        return record

    def _bodies(self, call: Call, record: CallRecord) -> None:
        mode = call.principal.extra.get("bodies") or self.config.ledger.bodies
        if mode == "off":
            return
        record.body_hash = hashlib.sha256(call.raw_body).hexdigest()
        if mode == "hashed":
            return
        req = call.raw_body.decode("utf-8", "replace")
        resp = (call.response_body or b"").decode("utf-8", "replace") or None
        for rx in self._redact:
            req = rx.sub("[REDACTED]", req)
            resp = rx.sub("[REDACTED]", resp) if resp else resp
        record.request_body, record.response_body = req, resp


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
    "cost_source",
    "cache",
    "key_id",
    "project",
)


def _cost_source(call: Call, d: Deployment | None) -> str | None:
    """Where a call's cost came from: "cache" for a cache hit (it cost nothing); the answering
    deployment's price source ("config", "catalogue", "unknown"); None when no deployment answered
    (nothing billable happened)."""
    tier = call.cache_tier
    if tier is not None and tier.startswith("hit"):
        return "cache"
    return d.pricing.source if d is not None else None


def _apply_key_tags(call: Call) -> None:
    """A key's default tags fill in the tags the client did not send (a temporary key minted for a
    task attempt pins its tags: the attempt's spend always lands on its task); the project the call is
    then tagged with must be one the key is granted (`Principal.projects`; None = every project), or
    the call is refused (403 project_not_allowed), never re-tagged. The refusal names only the project
    the client sent and where it came from."""
    p = call.principal
    if p.extra.get("temporary"):
        call.tags.update(p.tags)
    for k, v in p.tags.items():
        call.tags.setdefault(k, v)
    project = call.tags.get("project")
    if project is None or p.projects is None or project in p.projects:
        return
    header = call.headers.get("x-architect-tags")
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
        text = _answer_text(orjson.loads(call.response_body or b""))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return None
    call.tokens_estimated = True
    return Usage(
        prompt_tokens=_count_messages(call.body.get("messages") or [], call.model),
        completion_tokens=_count_text(text, call.model),
    )


def _answer_text(obj: dict[str, Any]) -> str:
    """The generated text of a complete answer in any inbound API's format: a chat completion's
    choices, a Messages `content`, a Responses `output`."""
    if "choices" in obj:
        return "".join((c.get("message") or {}).get("content") or "" for c in obj["choices"] or ())
    if isinstance(obj.get("content"), list):
        return "".join(b.get("text") or "" for b in obj["content"] if b.get("type") == "text")
    parts = [c for item in obj.get("output") or () for c in item.get("content") or ()]
    return "".join(c.get("text") or "" for c in parts if c.get("type") == "output_text")


# tiktoken is loaded only when an upstream reports no usage (rare): its tables take ~80 MiB.
def _count_text(text: str, model: str) -> int:
    from architect.gateway.tokens import count_text

    return count_text(text, model)


def _count_messages(messages: list[object], model: str) -> int:
    from architect.gateway.tokens import count_messages

    return count_messages(messages, model)
