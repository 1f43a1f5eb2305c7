"""A Responses API deployment's stream (`kind: openai` with `responses: true`), relayed as it is, and
the complete response a finished stream made (to cache it)."""

from __future__ import annotations

from typing import Any

import orjson

from architect.errors import ProviderError
from architect.gateway.apis.relay import JSONEventRelay, data_of
from architect.gateway.apis.responses_stream import TERMINAL, error_event
from architect.gateway.apis.responses_translate import Turn, usage_of

__all__ = ["NativeStream", "sse_to_response"]


class NativeStream(JSONEventRelay):
    """A Responses API deployment's stream, passed on byte for byte (complete events only). Each
    event's data is checked to be a JSON object; the end (`response.completed` /
    `response.incomplete`, whose response and usage are read and left on the call's `Turn`) and
    failures (`response.failed`, `error`) are read. An event that is not valid JSON ends the stream
    with an error event, as does a stream that breaks (`error_event`), numbered after the upstream's
    last event (its `sequence_number` + 1, or the count of events when it sent none)."""

    __slots__ = ("_next_seq", "_turn")

    def __init__(self, turn: Turn) -> None:
        super().__init__()
        self._turn = turn
        self._next_seq = 0

    def error_event(self, message: str, code: str) -> bytes:
        """The `error` event that ends this stream when it cannot go on."""
        return error_event(message, code, self._next_seq)

    def _error_event(self, message: str) -> bytes:
        return error_event(message, "server_error", self._next_seq)

    def _read(self, obj: dict[str, Any]) -> None:
        seq = obj.get("sequence_number")
        self._next_seq = seq + 1 if type(seq) is int else self._next_seq + 1
        kind = obj.get("type")
        if kind == "response.output_text.delta":
            self._texts.append(str(obj.get("delta") or ""))
        elif kind in TERMINAL:
            response = obj.get("response")
            if isinstance(response, dict):
                self.usage = usage_of(response.get("usage"))
                self._turn.response = response
            self.done = True
        elif kind == "response.failed":
            err = (obj.get("response") or {}).get("error") or {}
            message = str(err.get("message") or "the provider reported a failed response")
            self.error = ProviderError(message, kind="stream_error", retryable=False, code=err.get("code"))
        elif kind == "error":
            message = str(obj.get("message") or "the provider reported an error in the stream")
            self.error = ProviderError(message, kind="stream_error", retryable=False, code=obj.get("code"))


def sse_to_response(stream: bytes) -> dict[str, Any] | None:
    """The complete response a finished stream made (its `response.completed` or
    `response.incomplete` event's); None if it has neither, or failed."""
    for ev in reversed(stream.replace(b"\r\n", b"\n").split(b"\n\n")):
        data = data_of(ev)
        if not data:
            continue
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind in TERMINAL and isinstance(obj.get("response"), dict):
            return dict(obj["response"])
        if kind in ("response.failed", "error"):
            return None
    return None
