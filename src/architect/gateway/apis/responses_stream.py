"""Streams of `/v1/responses` calls, in the Responses API's event sequence, as the openai SDK and
Codex CLI read it: `response.created`, `response.in_progress`; per output item
`response.output_item.added`, its content events, `response.output_item.done`; then
`response.completed` (or `response.incomplete`, as for a completion cut at `max_output_tokens`) with
the whole response and its usage. Each event is `event: <type>` + `data: <json>` and carries a
`sequence_number`. Content events: a message's `response.content_part.added`,
`response.output_text.delta`s, `response.output_text.done`, `response.content_part.done`; a function
call's `response.function_call_arguments.delta`s and `.done`; a custom tool call's
`response.custom_tool_call_input.delta` and `.done` (one delta with the whole input: the translated
call's arguments are JSON, decoded at its end); a reasoning item's `response.reasoning_summary_*`
events. A stream that fails after its first byte ends with `response.failed` (an upstream error
inside the stream) or `error` (a broken upstream), never `response.completed`.

`FromChatStream` turns a chat-completions stream (from any adapter) into these events;
`response_to_sse` streams a complete response (a cache replay). A Responses API deployment's own
stream is relayed by `responses_native.NativeStream`. The events are written by
`responses_events.Events`.

`FromChatStream` reads the chat chunks of one read at once: when they are all single `data: ` lines
(the inner translators write them so), they are decoded in one call, as a JSON array, into structs
that keep only the fields it reads (`_Chunk`); anything else (other lines, shapes the structs do not
take) takes the exact path, one `orjson.loads` per event, with the same outcome. In front of an
OpenAI-compatible deployment (whose translator, `OpenAIStream`, passes the chunks through) it reads
the upstream's bytes itself, with that same decoding, which also checks each event is a JSON object
and reads its usage: the upstream's stream is decoded once instead of twice. From the first read
that is anything else (a comment, an `event:` or CRLF line, an error, an event that is not JSON) on,
everything goes through `OpenAIStream`, as for any other deployment."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from architect.errors import ProviderError
from architect.gateway.apis.relay import data_of
from architect.gateway.apis.responses_events import Events, summary_delta
from architect.gateway.apis.responses_translate import (
    Turn,
    custom_input,
    finished,
    item_status,
    message_item,
    reasoning_item,
    response_object,
    tool_item,
)
from architect.gateway.providers.base import StreamTranslator, Usage
from architect.gateway.providers.openai import OpenAIStream, usage_from

__all__ = ["TERMINAL", "FromChatStream", "error_event", "response_to_sse"]

TERMINAL = ("response.completed", "response.incomplete")
_SEP = b"\n\ndata: "
_DONE = b"data: [DONE]\n\n"


class _Delta(msgspec.Struct, gc=False):
    """The fields of a chat chunk's `delta` that are read (any JSON value: checked where used)."""

    content: Any = None
    reasoning_content: Any = None
    reasoning: Any = None
    tool_calls: Any = None


class _Choice(msgspec.Struct, gc=False):
    delta: _Delta | None = None
    finish_reason: Any = None


class _Chunk(msgspec.Struct, gc=False):
    """A chat chunk as `FromChatStream` reads it."""

    choices: list[_Choice] | None = None
    error: Any = None
    usage: Any = None


_CHUNK = msgspec.json.Decoder(_Chunk).decode
_CHUNKS = msgspec.json.Decoder(list[_Chunk]).decode


def _decode(raw: bytes) -> tuple[list[_Chunk], bool] | None:
    """The chunks of `raw` (complete events from the inner translator) and whether it ends with
    `[DONE]`, when every event is one `data: ` line that the structs take; else None."""
    if raw.find(b"\n") == len(raw) - 2 and raw.startswith(b"data: "):  # one event: a read per event
        if raw == _DONE:
            return [], True
        try:
            return [_CHUNK(raw[6:-2])], False
        except msgspec.DecodeError:
            return None
    done = raw.endswith(_DONE)
    if done:
        raw = raw[: -len(_DONE)]
        if not raw:
            return [], True
    if not raw.startswith(b"data: ") or not raw.endswith(b"\n\n"):
        return None
    parts = raw[6:-2].split(_SEP)
    parts[0] = b"[" + parts[0]
    parts[-1] += b"]"
    array = b",".join(parts)
    if b"\n" in array:
        return None
    try:
        chunks = _CHUNKS(array)
    except msgspec.DecodeError:  # also a shape the structs do not take (a ValidationError)
        return None
    if len(chunks) != len(parts):
        return None  # a comma inside an event's data: it was not one JSON object
    return chunks, done


def error_event(message: str, code: str = "server_error", sequence_number: int = 0) -> bytes:
    """The `error` event that ends a stream the gateway cannot continue, numbered after the events
    the stream sent before it (`sequence_number`: their count)."""
    obj = {
        "type": "error",
        "code": code,
        "message": message,
        "param": None,
        "sequence_number": sequence_number,
    }
    return b"event: error\ndata: " + orjson.dumps(obj) + b"\n\n"


class _Open:
    """The output item being streamed."""

    __slots__ = ("call_id", "chat_index", "iid_json", "index", "item_id", "kind", "name", "parts")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind  # "message", "reasoning", "function_call" or "custom_tool_call"
        self.index = index
        self.item_id = item_id
        self.iid_json = orjson.dumps(item_id)
        self.parts: list[str] = []
        self.chat_index = -1
        self.call_id = ""
        self.name = ""


class FromChatStream:
    """A chat-completions stream (the adapter's translator's output) as Responses events. `usage`,
    `done`, `error` and the completion text are the inner translator's; `[DONE]` closes the open item
    and sends `response.completed` (or `response.incomplete`) with the whole response, which it also
    leaves on the call's `Turn` (to be kept for `previous_response_id`). An upstream error ends it
    with `response.failed`, after which nothing more is sent (the rest of that read is still read, for
    the completion's text, but not sent)."""

    __slots__ = (
        "_body",
        "_buf",
        "_created",
        "_cut",
        "_direct",
        "_done",
        "_ev",
        "_failed_sent",
        "_finish",
        "_inner",
        "_items",
        "_model",
        "_open",
        "_read_directly",
        "_start_response",
        "_started",
        "_tools",
        "_turn",
        "_usage",
    )

    def __init__(
        self, inner: StreamTranslator, turn: Turn, body: dict[str, Any], model: str, created: int
    ) -> None:
        self._inner = inner
        self._turn = turn
        self._body = body
        self._model = model
        self._created = created
        self._ev = Events()
        self._started = False
        self._start_response: dict[str, Any] = {}  # the response as the first events sent it
        self._items: list[dict[str, Any]] = []
        self._open: _Open | None = None
        self._tools: set[int] = set()  # chat tool_calls indexes seen
        self._finish: str | None = None
        self._failed_sent = False  # `response.failed` was sent: the stream is over
        self._cut = 0  # the events of the read that failed that are sent (up to `response.failed`)
        # reading the upstream's bytes itself (see the module's docstring): what it buffered, the
        # usage and end it read, and whether it ever did
        self._direct = self._read_directly = type(inner) is OpenAIStream
        self._buf = b""
        self._usage: Usage | None = None
        self._done = False

    @property
    def usage(self) -> Usage | None:
        return self._usage if self._usage is not None else self._inner.usage

    @property
    def done(self) -> bool:
        return self._done or self._inner.done

    @property
    def error(self) -> ProviderError | None:
        return self._inner.error

    def completion_text(self) -> str:
        if not self._read_directly:
            return self._inner.completion_text()
        texts = [str(p.get("text") or "") for i in self._items for p in i.get("content") or ()]
        o = self._open
        if o is not None and o.kind == "message":
            texts += o.parts
        return "".join(texts)

    def error_event(self, message: str, code: str) -> bytes:
        """The `error` event that ends this stream when it cannot go on, numbered after its events."""
        out: list[bytes] = []
        self._ev.add(out, {"type": "error", "code": code, "message": message, "param": None})
        return out[0]

    def feed(self, chunk: bytes) -> bytes:
        if self._failed_sent:
            return b""
        if self._direct:
            buf = self._buf + chunk if self._buf else chunk
            if b"\r" not in buf:
                end = buf.rfind(b"\n\n")
                if end < 0:
                    self._buf = buf
                    return b""
                decoded = _decode(buf[: end + 2])
                if decoded is not None:
                    for c in decoded[0]:
                        if type(c.error) is dict:
                            break
                    else:
                        self._buf = buf[end + 2 :]
                        return self._chunks(*decoded)
            self._direct = False  # from here on, through the adapter's translator
            self._buf, chunk = b"", buf
        raw = self._inner.feed(chunk)
        if not raw:
            return b""
        decoded = _decode(raw)
        if decoded is None:
            out: list[bytes] = []
            self._each(raw, out)
            return self._sent(out)
        return self._chunks(*decoded)

    def _chunks(self, chunks: list[_Chunk], done: bool) -> bytes:
        """The events for decoded chunks (and the end, after `[DONE]`)."""
        out: list[bytes] = []
        for c in chunks:
            if type(c.usage) is dict and self._direct:
                self._usage = usage_from(c.usage) or self._usage
            if type(c.error) is dict:
                self._failed(out, c.error)
                continue
            if not self._started:
                self._start(out)
            for ch in c.choices or ():
                d = ch.delta
                if d is not None:
                    text, o = d.content, self._open
                    if (  # the usual delta: more text of the open message
                        o is not None
                        and o.kind == "message"
                        and type(text) is str
                        and d.reasoning_content is None
                        and d.reasoning is None
                        and d.tool_calls is None
                    ):
                        if text:
                            o.parts.append(text)
                            self._ev.text_delta(out, o.iid_json, o.index, text)
                    else:
                        self._delta(text, d.reasoning_content or d.reasoning, d.tool_calls, out)
                if ch.finish_reason:
                    self._finish = str(ch.finish_reason)
        if done:
            self._done = self._done or self._direct
            self._end(out)
        return self._sent(out)

    def _sent(self, out: list[bytes]) -> bytes:
        """The events of one read to send: up to `response.failed` when the stream failed in it."""
        return b"".join(out[: self._cut] if self._failed_sent else out)

    def _each(self, raw: bytes, out: list[bytes]) -> None:
        """The exact path: event by event, each parsed on its own."""
        for ev in raw.split(b"\n\n"):
            if not ev:
                continue
            # the inner translator's events are single `data: ` lines; anything else takes the exact path
            data = ev[6:] if ev.startswith(b"data: ") and b"\n" not in ev else data_of(ev)
            if not data:
                continue
            if data == b"[DONE]":
                self._end(out)
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue  # the inner translator refused it and set its error
            if not isinstance(obj, dict):
                continue
            if isinstance(obj.get("error"), dict):
                self._failed(out, obj["error"])
                continue
            if not self._started:
                self._start(out)
            for ch in obj.get("choices") or ():
                if not isinstance(ch, dict):
                    continue
                delta = ch.get("delta")
                if not isinstance(delta, dict):
                    delta = {}
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                self._delta(delta.get("content"), reasoning, delta.get("tool_calls"), out)
                finish = ch.get("finish_reason")
                if finish:
                    self._finish = str(finish)

    def _response(self, finish: str | None, usage: Usage | None) -> dict[str, Any]:
        return response_object(
            self._body, self._turn, self._model, list(self._items), usage, finish, created_at=self._created
        )

    def _start(self, out: list[bytes]) -> None:
        self._started = True
        self._start_response = self._response("in_progress", None)
        response = orjson.dumps(self._start_response)
        self._ev.response(out, "response.created", response)
        self._ev.response(out, "response.in_progress", response)

    def _begin(self, kind: str, prefix: str, item: dict[str, Any], out: list[bytes]) -> _Open:
        self._close(out)
        index = len(self._items)
        base = self._turn.response_id.removeprefix("resp_")
        opened = _Open(kind, index, f"{prefix}_{base}_{index}")
        self._open = opened
        if kind == "message":
            self._ev.message_added(out, opened.iid_json, index)
            self._ev.open_text(out, opened.iid_json, index)
            return opened
        self._ev.add(
            out,
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "id": opened.item_id},
            },
        )
        return opened

    def _close(self, out: list[bytes], status: str = "completed") -> None:
        """Close the open item (`status`: `incomplete` for the item an answer was cut in)."""
        o = self._open
        if o is None:
            return
        self._open = None
        text = "".join(o.parts)
        ev, iid, index = self._ev, o.item_id, o.index
        if o.kind == "message":
            text_json = orjson.dumps(text)
            ev.close_text(out, o.iid_json, index, text_json)
            ev.message_done(out, o.iid_json, index, text_json, status)
            self._items.append(message_item(iid, text, status))
            return
        if o.kind == "reasoning":
            ev.close_summary(out, iid, index, text)
            item = reasoning_item(iid, text)
        else:
            custom = self._turn.custom
            item = tool_item(iid, o.call_id, o.name, text, custom, status)
            if o.kind == "custom_tool_call":
                value = custom_input(text)
                if value:
                    ev.add(
                        out,
                        {
                            "type": "response.custom_tool_call_input.delta",
                            "item_id": iid,
                            "output_index": index,
                            "delta": value,
                        },
                    )
                ev.add(
                    out,
                    {
                        "type": "response.custom_tool_call_input.done",
                        "item_id": iid,
                        "output_index": index,
                        "input": value,
                    },
                )
            else:
                ev.add(
                    out,
                    {
                        "type": "response.function_call_arguments.done",
                        "item_id": iid,
                        "output_index": index,
                        "name": o.name,
                        "arguments": text,
                    },
                )
        self._items.append(item)
        ev.add(out, {"type": "response.output_item.done", "output_index": index, "item": item})

    def _delta(self, text: object, reasoning: object, tool_calls: object, out: list[bytes]) -> None:
        """One choice's delta: its reasoning, its text and its tool calls, in that order."""
        if isinstance(reasoning, str) and reasoning:
            o = self._open
            if o is None or o.kind != "reasoning":
                o = self._begin("reasoning", "rs", {"type": "reasoning", "summary": []}, out)
                self._ev.open_summary(out, o.item_id, o.index)
            o.parts.append(reasoning)
            self._ev.add(out, summary_delta(o.item_id, o.index, reasoning))
        if type(text) is str and text:
            o = self._open
            if o is None or o.kind != "message":
                o = self._begin("message", "msg", {}, out)
            o.parts.append(text)
            self._ev.text_delta(out, o.iid_json, o.index, text)
        if type(tool_calls) is list:
            for tc in tool_calls:
                if isinstance(tc, dict):
                    self._tool_delta(tc, out)

    def _tool_delta(self, tc: dict[str, Any], out: list[bytes]) -> None:
        i = int(tc.get("index") or 0)
        fn = tc.get("function") or {}
        o = self._open
        if i not in self._tools:
            self._tools.add(i)
            name = str(fn.get("name") or "")
            call_id = str(tc.get("id") or f"call_{self._turn.response_id}_{i}")
            if name in self._turn.custom:
                item = {
                    "type": "custom_tool_call",
                    "status": "in_progress",
                    "call_id": call_id,
                    "name": name,
                    "input": "",
                }
                o = self._begin("custom_tool_call", "ctc", item, out)
            else:
                item = {
                    "type": "function_call",
                    "status": "in_progress",
                    "call_id": call_id,
                    "name": name,
                    "arguments": "",
                }
                o = self._begin("function_call", "fc", item, out)
            o.chat_index, o.call_id, o.name = i, call_id, name
        elif o is None or o.chat_index != i or o.kind not in ("function_call", "custom_tool_call"):
            return  # arguments of a call whose item was closed: nothing can carry them
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            o.parts.append(args)
            if o.kind == "function_call":
                self._ev.add(
                    out,
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": o.item_id,
                        "output_index": o.index,
                        "delta": args,
                    },
                )

    def _end(self, out: list[bytes]) -> None:
        if self._failed_sent:
            return  # failed: no final response
        if not self._started:
            self._start(out)
        self._close(out, item_status(self._finish or "stop"))
        response = finished(self._start_response, list(self._items), self.usage, self._finish or "stop")
        encoded = orjson.dumps(response)
        self._turn.response, self._turn.encoded = response, (response, encoded)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        self._ev.response(out, kind, encoded)

    def _failed(self, out: list[bytes], upstream: dict[str, Any]) -> None:
        """`response.failed`, for an error event from the upstream (`upstream`: its error object); it
        ends the stream."""
        if self._failed_sent:
            return
        err = self._inner.error
        message = err.message if err else str(upstream.get("message"))
        if not self._started:
            self._start(out)
        response = self._response("in_progress", None)
        response["status"] = "failed"
        response["error"] = {"code": "server_error", "message": message}
        self._ev.add(out, {"type": "response.failed", "response": response})
        self._failed_sent, self._cut = True, len(out)


def response_to_sse(response: dict[str, Any]) -> list[bytes]:
    """The events that stream a complete response."""
    ev = Events()
    out: list[bytes] = []
    start = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    ev.add(out, {"type": "response.created", "response": start})
    ev.add(out, {"type": "response.in_progress", "response": start})
    for i, item in enumerate(response.get("output") or ()):
        ev.item(out, item, i)
    kind = "response.completed" if response.get("status") != "incomplete" else "response.incomplete"
    ev.add(out, {"type": kind, "response": response})
    return out
