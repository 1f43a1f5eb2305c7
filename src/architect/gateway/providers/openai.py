"""The `openai` provider kind: any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp,
OpenRouter, Groq, ...). Bodies pass through untouched except for the model name, `metadata`
(removed by the pipeline) and `stream_options.include_usage` (always asked for on streams)."""

from __future__ import annotations

import re
from typing import Any

import orjson

from architect.errors import ProviderError
from architect.gateway.providers.base import ChatResult, Usage, error_message, upstream_error

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


class OpenAIStream:
    """Passes SSE events through byte-for-byte, except usage the client did not ask for. Parses only
    events that carry usage or an error."""

    __slots__ = ("_buf", "_include_usage", "_texts", "done", "error", "usage")

    def __init__(self, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._buf = b""
        self._texts: list[bytes] = []
        self.usage: Usage | None = None
        self.done = False
        self.error: ProviderError | None = None

    def feed(self, chunk: bytes) -> bytes:
        """The complete events received so far, to forward; an incomplete one waits for the rest. The
        bytes pass through as they are (line ends normalised to LF) unless they carry a usage object
        or an error: only those events are parsed."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._buf = buf
            return b""
        head, self._buf = buf[: end + 2], buf[end + 2 :]
        self._texts.append(head)
        if b"[DONE]" in head and _has_done(head):
            self.done = True
        found = _NOTABLE.search(head)
        if found is None:
            return head
        # Only the events holding a match are parsed; the bytes around them pass through as they are.
        out: list[bytes] = []
        pos = 0
        while found is not None:
            start = head.rfind(b"\n\n", pos, found.start())
            start = start + 2 if start >= 0 else pos
            end = head.find(b"\n\n", found.end())  # found: `head` ends with a blank line
            out.append(head[pos:start])
            kept = self._inspect(head[start:end])
            if kept is not None:
                out.append(kept)
                out.append(b"\n\n")
            pos = end + 2
            found = _NOTABLE.search(head, pos)
        out.append(head[pos:])
        return b"".join(out)

    def _inspect(self, ev: bytes) -> bytes | None:
        """An event with a usage object or an error: the event to forward (possibly rewritten), or
        None to drop it."""
        data = _data(ev)
        if data is None or data == b"[DONE]":
            return ev
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
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


# An error object, or a usage object that is not null (some servers send `"usage": null` on every
# chunk). Inside a JSON string a quote is escaped, so these match keys only.
_NOTABLE = re.compile(rb'"(?:usage"\s*:\s*\{|error"\s*:)')


def _has_done(events: bytes) -> bool:
    """Whether one of the events is `data: [DONE]` (not merely text that contains it); only the events
    around each occurrence are looked at."""
    at = events.find(b"[DONE]")
    while at >= 0:
        start = events.rfind(b"\n\n", 0, at)
        end = events.find(b"\n\n", at)
        if _data(events[start + 2 if start >= 0 else 0 : end if end >= 0 else len(events)]) == b"[DONE]":
            return True
        at = events.find(b"[DONE]", at + 6)
    return False


def _data(ev: bytes) -> bytes | None:
    ev = ev.strip()
    if ev.startswith(b"data:"):
        return ev[5:].lstrip()
    return None


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
        return ChatResult(data, usage_from(obj.get("usage")), finish)

    def stream_translator(self, include_usage: bool, model: str) -> OpenAIStream:
        return OpenAIStream(include_usage)

    def embeddings_request(self, body: dict[str, Any], model: str) -> tuple[str, bytes, dict[str, str]]:
        body["model"] = model
        return "/embeddings", orjson.dumps(body), _JSON

    def embeddings_response(self, data: bytes) -> ChatResult:
        return self.chat_response(data)

    def error(self, status: int, headers: dict[str, str], data: bytes) -> ProviderError:
        message, code = error_message(data)
        return upstream_error(status, headers, message, code)
