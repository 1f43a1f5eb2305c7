"""`/v1/chat/completions` and `/v1/embeddings`: the OpenAI format the adapters speak, so the request
goes to each deployment's adapter as it is."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from architect.errors import GatewayError, InvalidRequest
from architect.gateway.apis.base import HTTPParts, cached_object
from architect.gateway.providers.base import ChatResult, StreamTranslator, sse_error_event
from architect.gateway.sse import completion_to_sse, sse_to_completion
from architect.gateway.validation import check_chat_body, check_embeddings_body
from architect.identifiers import check_identifier

if TYPE_CHECKING:
    from architect.gateway.call import Call
    from architect.gateway.routing import Deployment

__all__ = ["CHAT", "EMBEDDINGS", "ChatAPI", "EmbeddingsAPI", "need_model"]


def need_model(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    check_identifier(model, "model")


class ChatAPI:
    """OpenAI chat completions."""

    name = "chat"
    streams = True
    stateful = False

    def validate(self, body: dict[str, Any]) -> None:
        need_model(body)
        check_chat_body(body)

    def request(self, call: Call, d: Deployment, stream: bool) -> HTTPParts:
        return d.adapter.chat_request(dict(call.body), d.model, stream)

    def response(self, call: Call, d: Deployment, data: bytes) -> ChatResult:
        return d.adapter.chat_response(data)

    def stream_translator(self, call: Call, d: Deployment) -> StreamTranslator:
        return d.adapter.stream_translator(call.include_usage, d.model)

    def error_response(self, exc: GatewayError) -> tuple[int, bytes]:
        return exc.status, orjson.dumps(exc.body())

    def stream_error(self, message: str, kind: str, translator: StreamTranslator) -> bytes:
        return sse_error_event(message) if kind == "stream_error" else _coded(message, kind)

    def from_cache(self, call: Call, body: bytes) -> bytes:
        """The cached completion as this call's own: its id (`chatcmpl-<the call's id>`: every
        completion's id is unique) and its creation time; the answer itself as it was given."""
        completion = cached_object(body)
        if completion is None:
            return body
        completion["id"] = f"chatcmpl-{call.call_id}"
        completion["created"] = int(time.time())
        return orjson.dumps(completion)

    def replay(self, call: Call, body: bytes) -> list[bytes]:
        return completion_to_sse(body, call.include_usage)

    def assemble(self, stream: bytes) -> bytes | None:
        return sse_to_completion(stream)


def _coded(message: str, kind: str) -> bytes:
    payload = {"error": {"message": message, "type": "upstream_error", "param": None, "code": kind}}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class EmbeddingsAPI(ChatAPI):
    """OpenAI embeddings (never streamed)."""

    name = "embeddings"
    streams = False
    stateful = False

    def validate(self, body: dict[str, Any]) -> None:
        need_model(body)
        check_embeddings_body(body)

    def request(self, call: Call, d: Deployment, stream: bool) -> HTTPParts:
        return d.adapter.embeddings_request(dict(call.body), d.model)

    def response(self, call: Call, d: Deployment, data: bytes) -> ChatResult:
        return d.adapter.embeddings_response(data)

    def from_cache(self, call: Call, body: bytes) -> bytes:
        return body  # an embeddings list has no id or creation time


CHAT = ChatAPI()
EMBEDDINGS = EmbeddingsAPI()
