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
stream is relayed by `responses_native.NativeStream`."""

from __future__ import annotations

from typing import Any

import orjson

from architect.errors import ProviderError
from architect.gateway.apis.relay import data_of
from architect.gateway.apis.responses_translate import (
    Turn,
    custom_input,
    message_item,
    reasoning_item,
    response_object,
    tool_item,
)
from architect.gateway.providers.base import StreamTranslator, Usage

__all__ = ["TERMINAL", "FromChatStream", "error_event", "response_to_sse"]

TERMINAL = ("response.completed", "response.incomplete")


def error_event(message: str, code: str = "server_error") -> bytes:
    """The `error` event that ends a stream the gateway cannot continue."""
    obj = {"type": "error", "code": code, "message": message, "param": None, "sequence_number": 0}
    return b"event: error\ndata: " + orjson.dumps(obj) + b"\n\n"


class _Events:
    """Frames events and numbers them (`sequence_number`)."""

    __slots__ = ("seq",)

    def __init__(self) -> None:
        self.seq = 0

    def add(self, out: list[bytes], obj: dict[str, Any]) -> None:
        obj["sequence_number"] = self.seq
        self.seq += 1
        out.append(b"event: " + obj["type"].encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n")

    def text_delta(self, out: list[bytes], iid: str, index: int, text: str) -> None:
        """`response.output_text.delta` (the most frequent event), written without building its object;
        the same bytes `add` would write for `_text_delta(iid, index, text)`."""
        out.append(
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":%b,'
            b'"output_index":%d,"content_index":0,"delta":%b,"logprobs":[],"sequence_number":%d}\n\n'
            % (orjson.dumps(iid), index, orjson.dumps(text), self.seq)
        )
        self.seq += 1

    def item(self, out: list[bytes], item: dict[str, Any], index: int) -> None:
        """The events of one complete output item."""
        kind, iid = item.get("type"), item.get("id")
        if kind == "message":
            self.add(
                out,
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "content": []},
                },
            )
            text = "".join(str(p.get("text") or "") for p in item.get("content") or ())
            self.open_text(out, iid, index)
            if text:
                self.add(out, _text_delta(iid, index, text))
            self.close_text(out, iid, index, text)
        elif kind == "reasoning":
            self.add(
                out,
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "summary": []},
                },
            )
            text = "".join(str(p.get("text") or "") for p in item.get("summary") or ())
            self.open_summary(out, iid, index)
            if text:
                self.add(out, _summary_delta(iid, index, text))
            self.close_summary(out, iid, index, text)
        elif kind == "function_call":
            args = str(item.get("arguments") or "")
            self.add(
                out,
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                },
            )
            if args:
                self.add(
                    out,
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": iid,
                        "output_index": index,
                        "delta": args,
                    },
                )
            self.add(
                out,
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": iid,
                    "output_index": index,
                    "name": item.get("name"),
                    "arguments": args,
                },
            )
        elif kind == "custom_tool_call":
            text = str(item.get("input") or "")
            self.add(
                out,
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "input": "", "status": "in_progress"},
                },
            )
            if text:
                self.add(
                    out,
                    {
                        "type": "response.custom_tool_call_input.delta",
                        "item_id": iid,
                        "output_index": index,
                        "delta": text,
                    },
                )
            self.add(
                out,
                {
                    "type": "response.custom_tool_call_input.done",
                    "item_id": iid,
                    "output_index": index,
                    "input": text,
                },
            )
        else:
            self.add(out, {"type": "response.output_item.added", "output_index": index, "item": item})
        self.add(out, {"type": "response.output_item.done", "output_index": index, "item": item})

    def open_text(self, out: list[bytes], iid: object, index: int) -> None:
        part = {"type": "output_text", "text": "", "annotations": []}
        self.add(
            out,
            {
                "type": "response.content_part.added",
                "item_id": iid,
                "output_index": index,
                "content_index": 0,
                "part": part,
            },
        )

    def close_text(self, out: list[bytes], iid: object, index: int, text: str) -> None:
        self.add(
            out,
            {
                "type": "response.output_text.done",
                "item_id": iid,
                "output_index": index,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            },
        )
        part = {"type": "output_text", "text": text, "annotations": []}
        self.add(
            out,
            {
                "type": "response.content_part.done",
                "item_id": iid,
                "output_index": index,
                "content_index": 0,
                "part": part,
            },
        )

    def open_summary(self, out: list[bytes], iid: object, index: int) -> None:
        self.add(
            out,
            {
                "type": "response.reasoning_summary_part.added",
                "item_id": iid,
                "output_index": index,
                "summary_index": 0,
                "part": {"type": "summary_text", "text": ""},
            },
        )

    def close_summary(self, out: list[bytes], iid: object, index: int, text: str) -> None:
        self.add(
            out,
            {
                "type": "response.reasoning_summary_text.done",
                "item_id": iid,
                "output_index": index,
                "summary_index": 0,
                "text": text,
            },
        )
        self.add(
            out,
            {
                "type": "response.reasoning_summary_part.done",
                "item_id": iid,
                "output_index": index,
                "summary_index": 0,
                "part": {"type": "summary_text", "text": text},
            },
        )


def _text_delta(iid: object, index: int, delta: str) -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "item_id": iid,
        "output_index": index,
        "content_index": 0,
        "delta": delta,
        "logprobs": [],
    }


def _summary_delta(iid: object, index: int, delta: str) -> dict[str, Any]:
    return {
        "type": "response.reasoning_summary_text.delta",
        "item_id": iid,
        "output_index": index,
        "summary_index": 0,
        "delta": delta,
    }


class _Open:
    """The output item being streamed."""

    __slots__ = ("call_id", "chat_index", "index", "item_id", "kind", "name", "parts")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind  # "message", "reasoning", "function_call" or "custom_tool_call"
        self.index = index
        self.item_id = item_id
        self.parts: list[str] = []
        self.chat_index = -1
        self.call_id = ""
        self.name = ""


class FromChatStream:
    """A chat-completions stream (the adapter's translator's output) as Responses events. `usage`,
    `done`, `error` and the completion text are the inner translator's; `[DONE]` closes the open item
    and sends `response.completed` (or `response.incomplete`) with the whole response, which it also
    leaves on the call's `Turn` (to be kept for `previous_response_id`)."""

    __slots__ = (
        "_body",
        "_created",
        "_ev",
        "_finish",
        "_inner",
        "_items",
        "_model",
        "_open",
        "_started",
        "_tools",
        "_turn",
    )

    def __init__(
        self, inner: StreamTranslator, turn: Turn, body: dict[str, Any], model: str, created: int
    ) -> None:
        self._inner = inner
        self._turn = turn
        self._body = body
        self._model = model
        self._created = created
        self._ev = _Events()
        self._started = False
        self._items: list[dict[str, Any]] = []
        self._open: _Open | None = None
        self._tools: set[int] = set()  # chat tool_calls indexes seen
        self._finish: str | None = None

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
                self._end(out)
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue  # the inner translator refused it and set its error
            if not isinstance(obj, dict):
                continue
            if isinstance(obj.get("error"), dict):
                err = self._inner.error
                self._failed(out, err.message if err else str(obj["error"].get("message")))
                continue
            self._chunk(obj, out)
        return b"".join(out)

    def _response(self, finish: str | None, usage: Usage | None) -> dict[str, Any]:
        return response_object(
            self._body, self._turn, self._model, list(self._items), usage, finish, created_at=self._created
        )

    def _start(self, out: list[bytes]) -> None:
        self._started = True
        response = self._response("in_progress", None)
        self._ev.add(out, {"type": "response.created", "response": response})
        self._ev.add(out, {"type": "response.in_progress", "response": response})

    def _begin(self, kind: str, prefix: str, item: dict[str, Any], out: list[bytes]) -> _Open:
        self._close(out)
        index = len(self._items)
        base = self._turn.response_id.removeprefix("resp_")
        opened = _Open(kind, index, f"{prefix}_{base}_{index}")
        self._open = opened
        self._ev.add(
            out,
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "id": opened.item_id},
            },
        )
        return opened

    def _close(self, out: list[bytes]) -> None:
        o = self._open
        if o is None:
            return
        self._open = None
        text = "".join(o.parts)
        ev, iid, index = self._ev, o.item_id, o.index
        if o.kind == "message":
            ev.close_text(out, iid, index, text)
            item = message_item(iid, text)
        elif o.kind == "reasoning":
            ev.close_summary(out, iid, index, text)
            item = reasoning_item(iid, text)
        else:
            custom = self._turn.custom
            item = tool_item(iid, o.call_id, o.name, text, custom)
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

    def _chunk(self, obj: dict[str, Any], out: list[bytes]) -> None:
        if not self._started:
            self._start(out)
        for ch in obj.get("choices") or ():
            if not isinstance(ch, dict):
                continue
            delta = ch.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                o = self._open
                if o is None or o.kind != "reasoning":
                    o = self._begin("reasoning", "rs", {"type": "reasoning", "summary": []}, out)
                    self._ev.open_summary(out, o.item_id, o.index)
                o.parts.append(reasoning)
                self._ev.add(out, _summary_delta(o.item_id, o.index, reasoning))
            text = delta.get("content")
            if type(text) is str and text:
                o = self._open
                if o is None or o.kind != "message":
                    item = {"type": "message", "status": "in_progress", "role": "assistant", "content": []}
                    o = self._begin("message", "msg", item, out)
                    self._ev.open_text(out, o.item_id, o.index)
                o.parts.append(text)
                self._ev.text_delta(out, o.item_id, o.index, text)
            for tc in delta.get("tool_calls") or ():
                if isinstance(tc, dict):
                    self._tool_delta(tc, out)
            finish = ch.get("finish_reason")
            if finish:
                self._finish = str(finish)

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
        if not self._started:
            self._start(out)
        self._close(out)
        response = self._response(self._finish or "stop", self._inner.usage)
        self._turn.response = response
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        self._ev.add(out, {"type": kind, "response": response})

    def _failed(self, out: list[bytes], message: str) -> None:
        if not self._started:
            self._start(out)
        response = self._response("in_progress", None)
        response["status"] = "failed"
        response["error"] = {"code": "server_error", "message": message}
        self._ev.add(out, {"type": "response.failed", "response": response})


def response_to_sse(response: dict[str, Any]) -> list[bytes]:
    """The events that stream a complete response."""
    ev = _Events()
    out: list[bytes] = []
    start = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    ev.add(out, {"type": "response.created", "response": start})
    ev.add(out, {"type": "response.in_progress", "response": start})
    for i, item in enumerate(response.get("output") or ()):
        ev.item(out, item, i)
    kind = "response.completed" if response.get("status") != "incomplete" else "response.incomplete"
    ev.add(out, {"type": kind, "response": response})
    return out
