"""`/v1/messages`: Anthropic's Messages API in front of the one pipeline.

Per attempt, an Anthropic deployment gets the client's request natively (the body as sent, only the
model name replaced; the client's `anthropic-version` and `anthropic-beta` headers forwarded), and
its answer and stream are relayed as they are but for the message's `id` (the gateway's own,
`message_id`) and `model` (the name the client asked for). Any other deployment gets the request
translated to a chat completion (`messages_translate`, whose table says what is dropped and what is
refused), and its answer translated back (`messages_stream` for streams), with the same `id` and
`model`. Errors are in Anthropic's shape, with its status codes (an upstream's 529 is passed on as
`overloaded_error`).

`count_tokens` answers `/v1/messages/count_tokens`: from the Anthropic deployment of the model's
group when it has one, otherwise an estimate that says so (`"estimate": true` in the body and an
`x-architect-estimate: true` header)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from architect.errors import GatewayError, NotFound, PermissionDenied, ProviderError
from architect.gateway.apis.base import HTTPParts, cached_object
from architect.gateway.apis.chat import need_model
from architect.gateway.apis.messages_stream import (
    FromChatStream,
    NativeStream,
    error_event,
    message_to_sse,
    sse_to_message,
)
from architect.gateway.apis.messages_translate import message_from_chat, message_id, reissue, to_chat
from architect.gateway.apis.messages_validation import check_count_tokens_body, check_messages_body
from architect.gateway.estimate import chat_prompt_size
from architect.gateway.providers.anthropic import usage_of
from architect.gateway.providers.base import ChatResult, StreamTranslator
from architect.gateway.providers.transport import HTTPRequest
from architect.principal import Principal

if TYPE_CHECKING:
    from architect.gateway.call import Call
    from architect.gateway.routing import Deployment, Group, Router

__all__ = ["MESSAGES", "MessagesAPI", "count_tokens"]

_JSON = {"content-type": "application/json"}
_FORWARDED = ("anthropic-version", "anthropic-beta")
# Anthropic's error types by status (https://docs.anthropic.com/en/api/errors)
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def native(d: Deployment) -> bool:
    return d.adapter.kind == "anthropic"


class MessagesAPI:
    """Anthropic's Messages API."""

    name = "messages"
    streams = True
    stateful = False

    def validate(self, body: dict[str, Any]) -> None:
        need_model(body)
        check_messages_body(body)

    def _chat(self, call: Call) -> dict[str, Any]:
        """The call's body as a chat completion (translated once per call), recording what it drops."""
        if call.translated is None:
            call.translated, call.translation_dropped = to_chat(call.body, call.headers)
        call.dropped = call.translation_dropped
        return call.translated

    def request(self, call: Call, d: Deployment, stream: bool) -> HTTPParts:
        if native(d):
            call.dropped = []
            body = call.body
            if body.get("model") == d.model and bool(body.get("stream")) == stream:
                payload = call.raw_body  # byte for byte as the client sent it
            else:
                out = {**body, "model": d.model}
                if stream:
                    out["stream"] = True
                else:
                    out.pop("stream", None)
                payload = orjson.dumps(out)
            headers = dict(_JSON)
            for h in _FORWARDED:
                if h in call.headers:
                    headers[h] = call.headers[h]
            return "/messages", payload, headers
        return d.adapter.chat_request(dict(self._chat(call)), d.model, stream)

    def response(self, call: Call, d: Deployment, data: bytes) -> ChatResult:
        if native(d):
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise ProviderError(
                    "the provider returned a body that is not JSON", kind="bad_response"
                ) from exc
            if not isinstance(obj, dict):
                raise ProviderError("the provider returned an unexpected body", kind="bad_response")
            obj["id"], obj["model"] = message_id(call.call_id), call.model
            return ChatResult(orjson.dumps(obj), usage_of(obj.get("usage")), obj.get("stop_reason"))
        result = d.adapter.chat_response(data)
        msg = message_from_chat(orjson.loads(result.body), message_id(call.call_id), call.model, result.usage)
        return ChatResult(orjson.dumps(msg), result.usage, msg["stop_reason"])

    def stream_translator(self, call: Call, d: Deployment) -> StreamTranslator:
        if native(d):
            return NativeStream(message_id(call.call_id), call.model)
        inner = d.adapter.stream_translator(True, d.model)
        return FromChatStream(inner, message_id(call.call_id), call.model, call.est_prompt_tokens or 0)

    def error_response(self, exc: GatewayError) -> tuple[int, bytes]:
        status = exc.status
        if isinstance(exc, ProviderError) and exc.upstream_status == 529:
            status = 529
        kind = _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
        return status, orjson.dumps({"type": "error", "error": {"type": kind, "message": exc.message}})

    def stream_error(self, message: str, kind: str, translator: StreamTranslator) -> bytes:
        return error_event(message, "api_error")

    def from_cache(self, call: Call, body: bytes) -> bytes:
        """The cached message with this call's id (and the tool_use ids made from it)."""
        message = cached_object(body)
        if message is None:
            return body
        reissue(message, message_id(call.call_id))
        return orjson.dumps(message)

    def replay(self, call: Call, body: bytes) -> list[bytes]:
        return message_to_sse(orjson.loads(body))

    def assemble(self, stream: bytes) -> bytes | None:
        try:
            message = sse_to_message(stream)
        except ProviderError:
            return None
        return orjson.dumps(message) if message is not None else None


MESSAGES = MessagesAPI()


async def count_tokens(
    body: dict[str, Any],
    principal: Principal,
    router: Router,
    headers: dict[str, str],
    local_only: Callable[[Group], bool] | None = None,
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """(status, body, headers) of a count_tokens request: asked of the group's Anthropic deployment
    when it has one, else estimated from the translated prompt's size. `local_only(group)`: whether
    the caller's route settings allow only `local: true` deployments (then the prompt is sent to no
    other one)."""
    need_model(body)
    check_count_tokens_body(body)
    model = body["model"]
    group = router.group(model)
    if group is None:
        raise NotFound(
            f"model '{model}' does not exist; GET /v1/models lists the available ones", param="model"
        )
    if principal.models is not None and group.name not in principal.models and model not in principal.models:
        raise PermissionDenied(
            f"this key may not use model '{model}'", param="model", code="model_not_allowed"
        )
    local = local_only is not None and local_only(group)
    for d in group.deployments:
        if native(d) and d.breaker.allow() and (d.config.local or not local):
            req_headers = {**d.headers, **_JSON, **{h: headers[h] for h in _FORWARDED if h in headers}}
            payload = orjson.dumps({**body, "model": d.model})
            try:
                resp = await d.transport.send(
                    HTTPRequest(
                        "POST",
                        d.base_url + "/messages/count_tokens",
                        req_headers,
                        payload,
                        d.config.timeout_s,
                        False,
                    )
                )
                data = await resp.read()
            except Exception:  # the estimate below still answers
                continue
            if resp.status < 300:
                return 200, data, []
            raise d.adapter.error(resp.status, resp.headers, data)
    prompt = {k: v for k, v in body.items() if k != "stop_sequences"}  # not part of the prompt's size
    chat, _ = to_chat({**prompt, "max_tokens": 1}, {})
    estimate = chat_prompt_size(chat["messages"], chat).estimate
    out = orjson.dumps({"input_tokens": estimate, "estimate": True})
    return 200, out, [(b"x-architect-estimate", b"true")]
