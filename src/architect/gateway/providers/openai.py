"""The `openai` provider kind: any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp,
OpenRouter, Groq, ...). Bodies pass through untouched except for the model name, `metadata`
(removed by the pipeline) and `stream_options.include_usage` (always asked for on streams)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from architect.errors import ProviderError, UpstreamError
from architect.gateway.providers.base import (
    ChatResult,
    Usage,
    error_details,
    error_message,
    sse_error_event,
    upstream_error,
)

__all__ = ["OpenAIAdapter", "OpenAIStream", "usage_from"]

_JSON = {"content-type": "application/json"}


def usage_from(obj: dict[str, Any] | None) -> Usage | None:
    if not isinstance(obj, dict):
        return None
    details = obj.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(obj.get("prompt_tokens") or 0),
        completion_tokens=int(obj.get("completion_tokens") or 0),
        cached_tokens=int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0),
    )


class _Keys(msgspec.Struct, gc=False):
    """The two keys of a stream event the gateway acts on. Decoding an event into it checks that the
    whole event is valid JSON (an object) while skipping every other key without building it."""

    usage: Any = None
    error: Any = None


_EVENT = msgspec.json.Decoder(_Keys).decode
_EVENTS = msgspec.json.Decoder(list[_Keys]).decode
_SEP = b"\n\ndata: "
_DONE_TAIL = b"\n\ndata: [DONE]"


def _notable(keys: _Keys) -> bool:
    """An event with a usage object or an error object: it is parsed, and perhaps rewritten."""
    return type(keys.usage) is dict or type(keys.error) is dict


class OpenAIStream:
    """Passes SSE events through byte-for-byte, except usage the client did not ask for. Every event's
    data is checked to be a JSON object (with msgspec, which skips what it does not keep); only events
    that carry usage or an error are parsed. An event that is not valid JSON breaks the stream: the
    client gets the events before it and then an error event, never `[DONE]`, and `error` is set."""

    __slots__ = ("_buf", "_include_usage", "_texts", "broken", "done", "error", "usage")

    def __init__(self, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._buf = b""
        self._texts: list[bytes] = []
        self.usage: Usage | None = None
        self.done = False
        self.broken = False
        self.error: ProviderError | None = None

    def feed(self, chunk: bytes) -> bytes:
        """The complete events received so far, to forward; an incomplete one waits for the rest. The
        bytes pass through as they are (line ends normalised to LF) unless an event carries a usage
        object or an error, or is not valid JSON."""
        if self.broken:
            return b""  # nothing after a broken event reaches the client
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._buf = buf
            return b""
        head, self._buf = buf[: end + 2], buf[end + 2 :]
        self._texts.append(head)
        if self.done or not head.startswith(b"data: "):  # after [DONE] nothing is checked
            return head if self.done else self._each(head)
        if head.find(b"\n") == end:  # one single-line event: the usual read of a token stream
            data = head[6:end]
            if data == b"[DONE]":
                self.done = True
                return head
            try:
                keys = _EVENT(data)
            except msgspec.DecodeError:
                return self._each(head)  # the exact path decides (and refuses it)
            if not _notable(keys):
                return head
            kept = self._inspect(head[:end], data)
            return b"" if kept is None else kept + b"\n\n"
        # Several events: when each is one `data: ` line, they are checked in one decode as a JSON array
        # (the separators become commas). Anything else, or a failure, takes the event-by-event path.
        body = head[6:end]
        done = body.endswith(_DONE_TAIL)
        if done:
            body = body[: -len(_DONE_TAIL)]
        joined = body.replace(_SEP, b",")
        count = (len(body) - len(joined)) // (len(_SEP) - 1) + 1
        try:
            keys_list = _EVENTS(b"[" + joined + b"]")
        except msgspec.DecodeError:
            return self._each(head)
        if len(keys_list) != count:
            return self._each(head)
        events: list[bytes] | None = None
        for i, keys in enumerate(keys_list):
            if type(keys.usage) is dict or type(keys.error) is dict:  # rare (the usage chunk): rewritten
                if events is None:
                    events = head[:end].split(b"\n\n")
                ev = events[i]
                if len(events) != count + done or not ev.startswith(b"data: "):
                    return self._each(head)
                kept = self._inspect(ev, ev[6:])
                events[i] = kept if kept is not None else b""
        self.done = done
        if events is None:
            return head
        return b"\n\n".join(filter(None, events)) + b"\n\n"

    def _each(self, head: bytes) -> bytes:
        """Event by event (comments, `event:` lines, multi-line data): the exact path."""
        out: list[bytes] = []
        changed = False
        for ev in head[:-2].split(b"\n\n"):
            data = None if self.done else _data(ev)
            if data is None:
                out.append(ev)
                continue
            if data == b"[DONE]":
                self.done = True
                out.append(ev)
                continue
            try:
                keys = _EVENT(data)
            except msgspec.DecodeError:
                return self._broken(b"\n\n".join(out) + b"\n\n" if out else b"")
            if _notable(keys):
                kept = self._inspect(ev, data)
                changed = True
                if kept is None:
                    continue
                ev = kept
            out.append(ev)
        return b"\n\n".join(out) + b"\n\n" if changed else head

    def _broken(self, before: bytes) -> bytes:
        """The events before a broken one, then an error event; the stream ends there."""
        self.broken = True
        self.error = UpstreamError(
            "the upstream sent a stream event that is not valid JSON; the answer is incomplete",
            kind="invalid_stream_event",
        )
        return before + sse_error_event(self.error)

    def _inspect(self, ev: bytes, data: bytes) -> bytes | None:
        """An event with a usage object or an error: the event to forward (possibly rewritten), or
        None to drop it."""
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:  # checked already; orjson alone also refuses invalid UTF-8
            return ev
        if not isinstance(obj, dict):
            return ev
        if isinstance(obj.get("error"), dict):
            msg, code = error_message(data)
            self.error = ProviderError(msg, kind="stream_error", retryable=False, code=code)
            return ev
        usage = usage_from(obj.get("usage"))
        if usage is None or self._include_usage:
            self.usage = usage or self.usage
            return ev
        self.usage = usage
        if not obj.get("choices"):
            return None  # the usage-only chunk the client did not ask for
        del obj["usage"]
        return b"data: " + orjson.dumps(obj)

    def completion_text(self) -> str:
        """The streamed text, parsed only when it is needed (the upstream sent no usage)."""
        parts: list[str] = []
        for blob in self._texts:
            for ev in blob.replace(b"\r\n", b"\n").split(b"\n\n"):
                data = _data(ev)
                if data is not None and data != b"[DONE]":
                    _delta_text(data, parts)
        return "".join(parts)


def _data(ev: bytes) -> bytes | None:
    """An event's data (its `data:` lines joined by newlines, as SSE defines), or None without any;
    surrounding whitespace is stripped."""
    if b"\n" not in ev.strip():
        ev = ev.strip()
        return ev[5:].strip() if ev.startswith(b"data:") else None
    lines = [line[5:] for line in ev.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(line[1:] if line[:1] == b" " else line for line in lines).strip() if lines else None


def _delta_text(data: bytes, parts: list[str]) -> None:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    if not isinstance(obj, dict):
        return
    for ch in obj.get("choices") or ():
        content = (ch.get("delta") or {}).get("content") if isinstance(ch, dict) else None
        if isinstance(content, str):
            parts.append(content)


class OpenAIAdapter:
    kind = "openai"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def chat_request(
        self, body: dict[str, Any], model: str, stream: bool
    ) -> tuple[str, bytes, dict[str, str]]:
        body["model"] = model
        if stream:
            opts = body.get("stream_options")
            body["stream_options"] = (
                {**opts, "include_usage": True} if isinstance(opts, dict) else {"include_usage": True}
            )
        return "/chat/completions", orjson.dumps(body), _JSON

    def chat_response(self, data: bytes) -> ChatResult:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProviderError("the provider returned a body that is not JSON", kind="bad_response") from exc
        if not isinstance(obj, dict):
            raise ProviderError("the provider returned an unexpected body", kind="bad_response")
        choices = obj.get("choices") or ()
        finish = choices[0].get("finish_reason") if choices and isinstance(choices[0], dict) else None
        return ChatResult(data, usage_from(obj.get("usage")), finish, obj)

    def stream_translator(self, include_usage: bool, model: str) -> OpenAIStream:
        return OpenAIStream(include_usage)

    def embeddings_request(self, body: dict[str, Any], model: str) -> tuple[str, bytes, dict[str, str]]:
        body["model"] = model
        return "/embeddings", orjson.dumps(body), _JSON

    def embeddings_response(self, data: bytes) -> ChatResult:
        return self.chat_response(data)

    def error(self, status: int, headers: dict[str, str], data: bytes) -> ProviderError:
        message, code, param = error_details(data)
        return upstream_error(status, headers, message, code, param)
