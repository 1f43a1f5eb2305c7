"""Streams of `/v1/messages` calls, in Anthropic's event sequence: `message_start`, then per content
block `content_block_start`, `content_block_delta`s (`text_delta`, `input_json_delta`,
`thinking_delta`, `signature_delta`), `content_block_stop`; then `message_delta` (stop reason and
usage) and `message_stop`; `ping`s may come between. A stream that fails after its first byte ends
with an `error` event, never `message_stop`.

`NativeStream` relays an Anthropic deployment's stream as it is, reading its usage and end;
`FromChatStream` turns a chat-completions stream (from any adapter) into these events;
`message_to_sse` and `sse_to_message` convert a complete message and its stream (cache replay and
store)."""

from __future__ import annotations

from typing import Any

import orjson

from architect.errors import ProviderError
from architect.gateway.apis.messages_translate import STOP_REASONS, _tool_input, anthropic_usage
from architect.gateway.apis.relay import JSONEventRelay, data_of
from architect.gateway.providers.anthropic import usage_of
from architect.gateway.providers.base import StreamTranslator, Usage

__all__ = ["FromChatStream", "NativeStream", "error_event", "message_to_sse", "sse_to_message"]

_RETRYABLE = ("overloaded_error", "api_error", "rate_limit_error")


def event(kind: str, obj: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def error_event(message: str, kind: str = "api_error") -> bytes:
    return event("error", {"type": "error", "error": {"type": kind, "message": message}})


class NativeStream(JSONEventRelay):
    """An Anthropic deployment's stream, passed on byte for byte (complete events only) but for its
    `message_start`, whose message gets the call's own id and the model name the client asked for.
    Each event's data is checked to be a JSON object; the usage of `message_start` and
    `message_delta`, the end (`message_stop`) and `error` events are read. An event that is not valid
    JSON ends the stream with an error event."""

    __slots__ = ("_id", "_model", "_started")

    def __init__(self, message_id: str, model: str) -> None:
        super().__init__()
        self._id = message_id
        self._model = model
        self._started = False  # message_start passed (and rewritten)

    def feed(self, chunk: bytes) -> bytes:
        out = super().feed(chunk)
        if self._started or not out:
            return out
        events = out.split(b"\n\n")
        for i, ev in enumerate(events):
            data = data_of(ev)
            obj = orjson.loads(data) if b'"message_start"' in data else None
            if isinstance(obj, dict) and obj.get("type") == "message_start":
                message = obj.get("message")
                if isinstance(message, dict):
                    obj["message"] = {**message, "id": self._id, "model": self._model}
                events[i] = event("message_start", obj)[:-2]
                self._started = True
                return b"\n\n".join(events)
        return out

    def _error_event(self, message: str) -> bytes:
        return error_event(message)

    def _read(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._texts.append(str(delta.get("text") or ""))
        elif kind == "message_start":
            self.usage = usage_of((obj.get("message") or {}).get("usage"))
        elif kind == "message_delta":
            u = obj.get("usage")
            if isinstance(u, dict):  # cumulative: what it omits keeps its message_start value
                self.usage = usage_of(u, self.usage or Usage())
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            err = obj.get("error") or {}
            etype = str(err.get("type") or "api_error")
            message = str(err.get("message") or "the provider reported an error in the stream")
            self.error = ProviderError(message, kind=etype, retryable=etype in _RETRYABLE, code=etype)


class FromChatStream:
    """A chat-completions stream (the adapter's translator's output) as Messages events. `usage`,
    `done`, `error` and the completion text are the inner translator's; `[DONE]` closes the open
    block and sends `message_delta` (stop reason, usage) and `message_stop`."""

    __slots__ = ("_block", "_id", "_inner", "_model", "_next", "_prompt", "_started", "_stop", "_tools")

    def __init__(self, inner: StreamTranslator, message_id: str, model: str, prompt_estimate: int) -> None:
        self._inner = inner
        self._id = message_id
        self._model = model
        self._prompt = prompt_estimate
        self._started = False
        self._block: str | None = None  # the open block: "text", "thinking" or "tool:<index>"
        self._next = 0  # the next content block index
        self._tools: dict[int, int] = {}  # chat tool_calls index -> content block index
        self._stop: str | None = None

    @property
    def usage(self) -> Usage | None:
        return self._inner.usage

    @property
    def done(self) -> bool:
        return self._inner.done

    @property
    def error(self) -> ProviderError | None:
        return self._inner.error

    def completion_text(self) -> str:
        return self._inner.completion_text()

    def feed(self, chunk: bytes) -> bytes:
        raw = self._inner.feed(chunk)
        if not raw:
            return b""
        out: list[bytes] = []
        for ev in raw.split(b"\n\n"):
            if not ev:
                continue
            # the inner translator's events are single `data: ` lines; anything else takes the exact path
            data = ev[6:] if ev.startswith(b"data: ") and b"\n" not in ev else data_of(ev)
            if not data:
                continue
            if data == b"[DONE]":
                self._finish(out)
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue  # the inner translator refused it and set its error
            if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
                err = self._inner.error
                out.append(error_event(err.message if err else str(obj["error"].get("message")), "api_error"))
                continue
            if isinstance(obj, dict):
                self._chunk(obj, out)
        return b"".join(out)

    def _start(self, out: list[bytes]) -> None:
        self._started = True
        usage = {"input_tokens": self._prompt, "output_tokens": 0}
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        out.append(event("message_start", {"type": "message_start", "message": message}))
        out.append(event("ping", {"type": "ping"}))

    def _open(self, kind: str, block: dict[str, Any], out: list[bytes]) -> int:
        self._close(out)
        index = self._next
        self._next += 1
        self._block = kind
        out.append(
            event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
            )
        )
        return index

    def _close(self, out: list[bytes]) -> None:
        if self._block is not None:
            out.append(event("content_block_stop", {"type": "content_block_stop", "index": self._next - 1}))
            self._block = None

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        out.append(
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": self._next - 1, "delta": delta},
            )
        )

    def _text(self, text: str, out: list[bytes]) -> None:
        """A `text_delta` (the most frequent event), written without building its object."""
        out.append(
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
            b'"delta":{"type":"text_delta","text":%b}}\n\n' % (self._next - 1, orjson.dumps(text))
        )

    def _chunk(self, obj: dict[str, Any], out: list[bytes]) -> None:
        if not self._started:
            self._start(out)
        for ch in obj.get("choices") or ():
            if not isinstance(ch, dict):
                continue
            delta = ch.get("delta") or {}
            reasoning = delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                if self._block != "thinking":
                    self._open("thinking", {"type": "thinking", "thinking": ""}, out)
                self._delta({"type": "thinking_delta", "thinking": reasoning}, out)
            text = delta.get("content")
            if type(text) is str and text:
                if self._block != "text":
                    self._open("text", {"type": "text", "text": ""}, out)
                self._text(text, out)
            for tc in delta.get("tool_calls") or ():
                if not isinstance(tc, dict):
                    continue
                i = int(tc.get("index") or 0)
                fn = tc.get("function") or {}
                if i not in self._tools:
                    tool_id = tc.get("id") or f"toolu_{self._id}_{i}"
                    block: dict[str, Any] = {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": fn.get("name") or "",
                        "input": {},
                    }
                    self._tools[i] = self._open(f"tool:{i}", block, out)
                elif self._block != f"tool:{i}":
                    continue  # arguments of a call whose block was closed: nothing can carry them
                args = fn.get("arguments")
                if isinstance(args, str) and args:
                    self._delta({"type": "input_json_delta", "partial_json": args}, out)
            finish = ch.get("finish_reason")
            if finish:
                self._stop = STOP_REASONS.get(str(finish), "end_turn")

    def _finish(self, out: list[bytes]) -> None:
        if not self._started:
            self._start(out)
        self._close(out)
        usage = anthropic_usage(self._inner.usage)
        delta = {"stop_reason": self._stop or "end_turn", "stop_sequence": None}
        out.append(event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(event("message_stop", {"type": "message_stop"}))


def message_to_sse(message: dict[str, Any]) -> list[bytes]:
    """The events that stream a complete message."""
    start: dict[str, Any] = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**(message.get("usage") or {}), "output_tokens": 0}
    out = [event("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(message.get("content") or ()):
        kind = block.get("type")
        if kind == "text":
            first: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": block.get("text") or ""}]
        elif kind == "tool_use":
            first = {**block, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": orjson.dumps(block.get("input") or {}).decode()}
            ]
        elif kind == "thinking":
            first = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": block.get("thinking") or ""}]
            if block.get("signature"):
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            first, deltas = dict(block), []
        out.append(
            event("content_block_start", {"type": "content_block_start", "index": i, "content_block": first})
        )
        for d in deltas:
            out.append(event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}))
        out.append(event("content_block_stop", {"type": "content_block_stop", "index": i}))
    delta = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    out.append(
        event("message_delta", {"type": "message_delta", "delta": delta, "usage": message.get("usage") or {}})
    )
    out.append(event("message_stop", {"type": "message_stop"}))
    return out


def sse_to_message(stream: bytes) -> dict[str, Any] | None:
    """The complete message a finished stream made; None if it has no `message_stop` or an error."""
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}  # by index
    partial: dict[int, str] = {}
    for ev in stream.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = data_of(ev)
        if not data:
            continue
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "message_start":
            message = dict(obj.get("message") or {})
        elif kind == "content_block_start":
            blocks[int(obj.get("index") or 0)] = dict(obj.get("content_block") or {})
        elif kind == "content_block_delta":
            i = int(obj.get("index") or 0)
            b, d = blocks.get(i), obj.get("delta") or {}
            if b is None:
                return None
            dt = d.get("type")
            if dt == "text_delta":
                b["text"] = (b.get("text") or "") + str(d.get("text") or "")
            elif dt == "thinking_delta":
                b["thinking"] = (b.get("thinking") or "") + str(d.get("thinking") or "")
            elif dt == "signature_delta":
                b["signature"] = (b.get("signature") or "") + str(d.get("signature") or "")
            elif dt == "input_json_delta":
                partial[i] = partial.get(i, "") + str(d.get("partial_json") or "")
        elif kind == "message_delta" and message is not None:
            message.update(obj.get("delta") or {})
            message["usage"] = {**(message.get("usage") or {}), **(obj.get("usage") or {})}
        elif kind == "message_stop" and message is not None:
            for i, raw in partial.items():
                blocks[i]["input"] = _tool_input(raw)
            message["content"] = [blocks[i] for i in sorted(blocks)]
            return message
        elif kind == "error":
            return None
    return None
