"""The Responses API's stream events as bytes. `Events` numbers them (`sequence_number`) and frames
them (`event: <type>` + `data: <json>`): `add` frames any event object; the events of a text answer
(the response object's, a message item's, its text deltas) are written from byte templates without
building their objects, the same bytes `add` writes for the object (tests compare the two), so a
text stream costs one JSON encoding per delta and one per response object. `item` writes the events
of one complete output item (a cache replay)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["Events", "summary_delta", "text_delta"]


class Events:
    """Frames events and numbers them (`sequence_number`). An item id passed as `iid_json` is the id
    already encoded as JSON (`orjson.dumps(item_id)`): an open item's events all carry it."""

    __slots__ = ("seq",)

    def __init__(self) -> None:
        self.seq = 0

    def add(self, out: list[bytes], obj: dict[str, Any]) -> None:
        """Any event, from its object (which gets its `sequence_number`)."""
        obj["sequence_number"] = self.seq
        self.seq += 1
        out.append(b"event: " + obj["type"].encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n")

    def response(self, out: list[bytes], kind: str, response_json: bytes) -> None:
        """`{"type": kind, "response": ...}` (`response.created`, `.in_progress`, `.completed`, ...),
        the response already encoded."""
        out.append(
            b'event: %b\ndata: {"type":"%b","response":%b,"sequence_number":%d}\n\n'
            % (kind.encode(), kind.encode(), response_json, self.seq)
        )
        self.seq += 1

    def message_added(self, out: list[bytes], iid_json: bytes, index: int) -> None:
        """`response.output_item.added` of a message being streamed (no content yet)."""
        out.append(
            b'event: response.output_item.added\ndata: {"type":"response.output_item.added",'
            b'"output_index":%d,"item":{"type":"message","status":"in_progress","role":"assistant",'
            b'"content":[],"id":%b},"sequence_number":%d}\n\n' % (index, iid_json, self.seq)
        )
        self.seq += 1

    def open_text(self, out: list[bytes], iid_json: bytes, index: int) -> None:
        """`response.content_part.added` of a message's (only) text part."""
        out.append(
            b'event: response.content_part.added\ndata: {"type":"response.content_part.added",'
            b'"item_id":%b,"output_index":%d,"content_index":0,'
            b'"part":{"type":"output_text","text":"","annotations":[]},"sequence_number":%d}\n\n'
            % (iid_json, index, self.seq)
        )
        self.seq += 1

    def text_delta(self, out: list[bytes], iid_json: bytes, index: int, text: str) -> None:
        """`response.output_text.delta` (the most frequent event)."""
        out.append(
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":%b,'
            b'"output_index":%d,"content_index":0,"delta":%b,"logprobs":[],"sequence_number":%d}\n\n'
            % (iid_json, index, orjson.dumps(text), self.seq)
        )
        self.seq += 1

    def close_text(self, out: list[bytes], iid_json: bytes, index: int, text_json: bytes) -> None:
        """`response.output_text.done` and `response.content_part.done` of a text part, its whole
        text already encoded."""
        seq = self.seq
        out.append(
            b'event: response.output_text.done\ndata: {"type":"response.output_text.done","item_id":%b,'
            b'"output_index":%d,"content_index":0,"text":%b,"logprobs":[],"sequence_number":%d}\n\n'
            b'event: response.content_part.done\ndata: {"type":"response.content_part.done",'
            b'"item_id":%b,"output_index":%d,"content_index":0,'
            b'"part":{"type":"output_text","text":%b,"annotations":[]},"sequence_number":%d}\n\n'
            % (iid_json, index, text_json, seq, iid_json, index, text_json, seq + 1)
        )
        self.seq = seq + 2

    def message_done(
        self, out: list[bytes], iid_json: bytes, index: int, text_json: bytes, status: str = "completed"
    ) -> None:
        """`response.output_item.done` of a message with one text part (`message_item`'s object)."""
        out.append(
            b'event: response.output_item.done\ndata: {"type":"response.output_item.done",'
            b'"output_index":%d,"item":{"type":"message","id":%b,"status":"%b","role":"assistant",'
            b'"content":[{"type":"output_text","text":%b,"annotations":[],"logprobs":[]}]},'
            b'"sequence_number":%d}\n\n' % (index, iid_json, status.encode(), text_json, self.seq)
        )
        self.seq += 1

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
            iid_json = orjson.dumps(iid)
            self.open_text(out, iid_json, index)
            if text:
                self.text_delta(out, iid_json, index, text)
            self.close_text(out, iid_json, index, orjson.dumps(text))
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
                self.add(out, summary_delta(iid, index, text))
            self.close_summary(out, iid, index, text)
        elif kind in ("function_call", "custom_tool_call"):
            field = "arguments" if kind == "function_call" else "input"
            event = "function_call_arguments" if kind == "function_call" else "custom_tool_call_input"
            value = str(item.get(field) or "")
            self.add(
                out,
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, field: "", "status": "in_progress"},
                },
            )
            if value:
                self.add(
                    out,
                    {
                        "type": f"response.{event}.delta",
                        "item_id": iid,
                        "output_index": index,
                        "delta": value,
                    },
                )
            done: dict[str, Any] = {"type": f"response.{event}.done", "item_id": iid, "output_index": index}
            if kind == "function_call":
                done["name"] = item.get("name")
            done[field] = value
            self.add(out, done)
        else:
            self.add(out, {"type": "response.output_item.added", "output_index": index, "item": item})
        self.add(out, {"type": "response.output_item.done", "output_index": index, "item": item})


def text_delta(iid: object, index: int, delta: str) -> dict[str, Any]:
    """The object of a `response.output_text.delta` (what `Events.text_delta` writes)."""
    return {
        "type": "response.output_text.delta",
        "item_id": iid,
        "output_index": index,
        "content_index": 0,
        "delta": delta,
        "logprobs": [],
    }


def summary_delta(iid: object, index: int, delta: str) -> dict[str, Any]:
    """The object of a `response.reasoning_summary_text.delta`."""
    return {
        "type": "response.reasoning_summary_text.delta",
        "item_id": iid,
        "output_index": index,
        "summary_index": 0,
        "delta": delta,
    }
