"""A Responses API deployment's stream (`kind: openai` with `responses: true`), relayed as it is, and
the complete response a finished stream made (to cache it)."""

from __future__ import annotations

from typing import Any

import orjson

from architect.errors import ProviderError, UpstreamError
from architect.gateway.apis.responses_stream import TERMINAL, data_of, error_event
from architect.gateway.apis.responses_translate import Turn, usage_of
from architect.gateway.providers.base import Usage

__all__ = ["NativeStream", "sse_to_response"]


class NativeStream:
    """A Responses API deployment's stream, passed on byte for byte (complete events only). Each
    event's data is checked to be a JSON object; the end (`response.completed` /
    `response.incomplete`, whose response and usage are read and left on the call's `Turn`) and
    failures (`response.failed`, `error`) are read. An event that is not valid JSON ends the stream
    with an error event."""

    __slots__ = ("_buf", "_texts", "_turn", "broken", "done", "error", "usage")

    def __init__(self, turn: Turn) -> None:
        self._turn = turn
        self._buf = b""
        self._texts: list[str] = []
        self.usage: Usage | None = None
        self.done = False
        self.broken = False
        self.error: ProviderError | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self.broken:
            return b""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._buf = buf
            return b""
        head, self._buf = buf[: end + 2], buf[end + 2 :]
        for i, ev in enumerate(head[:-2].split(b"\n\n")):
            data = data_of(ev)
            if not data:
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                self.broken = True
                self.error = UpstreamError(
                    "the upstream sent a stream event that is not valid JSON; the answer is incomplete",
                    kind="invalid_stream_event",
                )
                kept = b"\n\n".join(head.split(b"\n\n")[:i])
                return (kept + b"\n\n" if kept else b"") + error_event(self.error.message)
            self._read(obj)
        return head

    def _read(self, obj: dict[str, Any]) -> None:
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

    def completion_text(self) -> str:
        return "".join(self._texts)


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
