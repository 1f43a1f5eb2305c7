"""The byte-for-byte relay of a deployment's own stream of JSON events, shared by the native paths
of the Messages and Responses APIs: complete events are passed on as they are (line ends normalised
to LF), each one's data is checked to be a JSON object and handed to the subclass's `_read`; an event
that is not valid JSON ends the stream with the API's error event (`_error_event`)."""

from __future__ import annotations

from typing import Any

import orjson

from architect.errors import ProviderError, UpstreamError
from architect.gateway.providers.base import Usage

__all__ = ["JSONEventRelay", "data_of"]


def data_of(ev: bytes) -> bytes:
    """An event's data (its `data:` lines joined)."""
    return b"\n".join(line[5:].lstrip() for line in ev.split(b"\n") if line.startswith(b"data:"))


class JSONEventRelay:
    """A stream translator that passes events through; subclasses read what they need of each
    (`_read`: usage, the end, errors) and say how the API writes an error event."""

    __slots__ = ("_buf", "_texts", "broken", "done", "error", "usage")

    def __init__(self) -> None:
        self._buf = b""
        self._texts: list[str] = []  # the generated text, for counting when no usage came
        self.usage: Usage | None = None
        self.done = False
        self.broken = False
        self.error: ProviderError | None = None

    def _read(self, obj: dict[str, Any]) -> None:
        """Read one event (every event is passed on whatever this does)."""

    def _error_event(self, message: str) -> bytes:
        """The API's event that ends a stream the gateway cannot continue."""
        return b""

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
                return (kept + b"\n\n" if kept else b"") + self._error_event(self.error.message)
            self._read(obj)
        return head

    def completion_text(self) -> str:
        return "".join(self._texts)
