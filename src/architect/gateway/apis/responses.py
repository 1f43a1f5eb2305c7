"""`/v1/responses`: OpenAI's Responses API (as the openai SDK's `client.responses.create` and Codex CLI
speak it) in front of the one pipeline.

Per attempt, a deployment whose provider has the Responses API (`kind: openai` with
`responses: true`) gets the client's request natively at `{base_url}/responses` (model name replaced,
a `previous_response_id` already expanded into `input` by `responses_state`), and its answer and
stream are relayed as they are, their usage read from the response (`response.completed`). Any other
deployment gets the request translated to a chat completion (`responses_translate`, whose table says
what is dropped and what is refused) and its answer translated back (`responses_stream` for streams).
Errors are in OpenAI's format."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from architect.errors import GatewayError, ProviderError
from architect.gateway.apis.base import HTTPParts, cached_object
from architect.gateway.apis.chat import CHAT, need_model
from architect.gateway.apis.responses_native import NativeStream, sse_to_response
from architect.gateway.apis.responses_stream import FromChatStream, error_event, response_to_sse
from architect.gateway.apis.responses_translate import (
    Turn,
    output_from_chat,
    reissue,
    response_object,
    to_chat,
    usage_of,
)
from architect.gateway.apis.responses_validation import check_responses_body
from architect.gateway.providers.base import ChatResult, StreamTranslator

if TYPE_CHECKING:
    from architect.gateway.call import Call
    from architect.gateway.routing import Deployment

__all__ = ["RESPONSES", "ResponsesAPI", "native", "turn"]

_JSON = {"content-type": "application/json"}
_GATEWAY_ONLY = ("previous_response_id",)  # resolved by the gateway, never sent upstream


def native(d: Deployment) -> bool:
    """Whether `d` takes the Responses API as it is."""
    return d.responses and d.adapter.kind == "openai"


def turn(call: Call) -> Turn:
    """The call's `Turn` (`Call.state`), made on first use."""
    state = call.state
    if isinstance(state, Turn):
        return state
    t = Turn(f"resp_{call.call_id}", call.body)
    call.state = t
    return t


class ResponsesAPI:
    """OpenAI's Responses API."""

    name = "responses"
    streams = True
    stateful = True

    def validate(self, body: dict[str, Any]) -> None:
        need_model(body)
        check_responses_body(body)

    def _chat(self, call: Call) -> dict[str, Any]:
        """The call's body as a chat completion (translated once per call), recording what it drops."""
        if call.translated is None:
            call.translated, call.translation_dropped, turn(call).custom = to_chat(call.body)
        call.dropped = call.translation_dropped
        return call.translated

    def request(self, call: Call, d: Deployment, stream: bool) -> HTTPParts:
        if native(d):
            call.dropped = []
            out = {k: v for k, v in call.body.items() if k not in _GATEWAY_ONLY}
            out["model"] = d.model
            if stream:
                out["stream"] = True
            else:
                out.pop("stream", None)
            return "/responses", orjson.dumps(out), _JSON
        return d.adapter.chat_request(dict(self._chat(call)), d.model, stream)

    def response(self, call: Call, d: Deployment, data: bytes) -> ChatResult:
        t = turn(call)
        if native(d):
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise ProviderError(
                    "the provider returned a body that is not JSON", kind="bad_response"
                ) from exc
            if not isinstance(obj, dict):
                raise ProviderError("the provider returned an unexpected body", kind="bad_response")
            t.response, t.encoded = obj, (obj, data)  # kept as the deployment sent it: not encoded again
            return ChatResult(data, usage_of(obj.get("usage")), obj.get("status"))
        result = d.adapter.chat_response(data)
        chat = result.parsed if result.parsed is not None else orjson.loads(result.body)
        output, finish = output_from_chat(chat, t.response_id, t.custom)
        resp = response_object(call.body, t, call.model, output, result.usage, finish)
        body = orjson.dumps(resp)
        t.response, t.encoded = resp, (resp, body)
        return ChatResult(body, result.usage, resp["status"])

    def stream_translator(self, call: Call, d: Deployment) -> StreamTranslator:
        t = turn(call)
        if native(d):
            return NativeStream(t)
        self._chat(call)  # the custom tools' names
        inner = d.adapter.stream_translator(True, d.model)
        return FromChatStream(inner, t, call.body, call.model, int(time.time()))

    def error_response(self, exc: GatewayError) -> tuple[int, bytes]:
        return CHAT.error_response(exc)

    def stream_error(self, message: str, kind: str, translator: StreamTranslator) -> bytes:
        if isinstance(translator, FromChatStream | NativeStream):
            return translator.error_event(message, kind)  # numbered after the stream's events
        return error_event(message, kind)

    def from_cache(self, call: Call, body: bytes) -> bytes:
        """The cached response with this call's id, item ids and echoed fields (`reissue`), left on
        the call's `Turn` (kept by `responses_state` unless the call said `store: false`)."""
        t = turn(call)
        obj = cached_object(body)
        if obj is None:
            return body
        reissue(obj, t, call.body)
        data = orjson.dumps(obj)
        t.response, t.encoded = obj, (obj, data)
        return data

    def replay(self, call: Call, body: bytes) -> list[bytes]:
        encoded = turn(call).encoded
        response = encoded[0] if encoded is not None and encoded[1] is body else orjson.loads(body)
        return response_to_sse(response)

    def assemble(self, stream: bytes) -> bytes | None:
        response = sse_to_response(stream)
        return orjson.dumps(response) if response is not None else None


RESPONSES = ResponsesAPI()
