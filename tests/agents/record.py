"""A recording fake upstream for the agent CLIs (used to write CAPTURED.md; not part of the suite).

    python tests/agents/record.py OUT.jsonl [PORT]

Serves /v1/messages (Anthropic, SSE or JSON), /v1/responses (OpenAI Responses, SSE) and
/v1/chat/completions (OpenAI chat, SSE or JSON) on 127.0.0.1, writes every request (method, path with
query, headers, body) as one JSON line, and answers by content: a request offering a file-reading or
patch tool and not yet holding a tool result gets a tool call, anything else a short text.
"""

from __future__ import annotations

import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OUT = sys.argv[1] if len(sys.argv) > 1 else "requests.jsonl"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8765
PATCH = "*** Begin Patch\n*** Update File: greet.txt\n@@\n-hello\n+hello world\n*** End Patch\n"


def sse(event: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + json.dumps(data) + "\n\n").encode()


def text_of(x: Any) -> str:
    return json.dumps(x)


def anthropic_events(body: dict[str, Any]) -> list[bytes]:
    msgs = body.get("messages", [])
    tools = {t.get("name") for t in body.get("tools", [])}
    last = msgs[-1] if msgs else {}
    blocks = last.get("content") if isinstance(last.get("content"), list) else []
    results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    model = body.get("model", "x")
    start = {
        "type": "message_start",
        "message": {
            "id": f"msg_{time.time_ns()}", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 1},
        },
    }  # fmt: skip
    out = [sse("message_start", start)]
    path = re.search(r"(/\S+\.txt)", text_of(msgs))
    if "Read" in tools and not results and path:
        block = {"type": "tool_use", "id": "toolu_01", "name": "Read", "input": {}}
        out += [
            sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps({"file_path": path.group(1)}),
                    },
                },
            ),
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ]
        stop = "tool_use"
    else:
        said = "The file says: " + text_of(results)[-80:] if results else "ok"
        out += [
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": said}},
            ),
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ]
        stop = "end_turn"
    out += [
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
    return out


def responses_events(body: dict[str, Any]) -> list[bytes]:
    items = body.get("input") if isinstance(body.get("input"), list) else []
    done = any(isinstance(i, dict) and i.get("type", "").endswith("_call_output") for i in items)
    tools = {t.get("name"): t for t in body.get("tools", []) if isinstance(t, dict)}
    rid = f"resp_{time.time_ns()}"
    base = {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model"),
        "output": [],
    }
    out = [
        sse(
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": {**base, "status": "in_progress"}},
        )
    ]
    if "apply_patch" in tools and not done:
        if tools["apply_patch"].get("type") == "custom":
            item = {
                "type": "custom_tool_call",
                "id": "ctc_1",
                "call_id": "call_1",
                "name": "apply_patch",
                "input": PATCH,
                "status": "completed",
            }
        else:
            item = {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "apply_patch",
                "arguments": json.dumps({"input": PATCH}),
                "status": "completed",
            }
    else:
        item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "patched" if done else "ok", "annotations": []}]}  # fmt: skip
    added = {**item, "status": "in_progress"}
    if item["type"] == "message":
        added["content"] = []
    out.append(
        sse(
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": 0, "item": added},
        )
    )
    if item["type"] == "message":
        out.append(
            sse(
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": item["content"][0]["text"],
                },
            )
        )
    out.append(
        sse(
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": 0, "item": item},
        )
    )
    usage = {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 26,
    }
    out.append(
        sse(
            "response.completed",
            {
                "type": "response.completed",
                "response": {**base, "status": "completed", "output": [item], "usage": usage},
            },
        )
    )
    return out


def chat_answer(body: dict[str, Any]) -> str:
    return "greet.txt\n```text\n<<<<<<< SEARCH\nhello\n=======\nhello world\n>>>>>>> REPLACE\n```\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a: Any) -> None:
        pass

    def _record(self, body: Any) -> None:
        with open(OUT, "a") as f:
            f.write(
                json.dumps(
                    {
                        "t": time.time(),
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": body,
                    }
                )
                + "\n"
            )

    def _send(self, status: int, payload: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._record(None)
        if self.path.split("?")[0].endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": []}).encode(), "application/json")
        else:
            self._send(404, b'{"error": {"message": "not here"}}', "application/json")

    def do_CONNECT(self) -> None:  # a client using this server as its proxy: record where it wanted to go
        self._record(None)
        self._send(403, b"", "text/plain")

    def do_HEAD(self) -> None:
        self._record(None)
        self._send(200, b"", "text/plain")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self._record(body)
        path = self.path.split("?")[0]
        if path.endswith("/messages/count_tokens"):
            self._send(200, b'{"input_tokens": 42}', "application/json")
        elif path.endswith("/messages"):
            self._send(200, b"".join(anthropic_events(body)), "text/event-stream")
        elif path.endswith("/responses"):
            self._send(200, b"".join(responses_events(body)), "text/event-stream")
        elif path.endswith("/chat/completions"):
            text = chat_answer(body)
            if body.get("stream"):
                chunk = {"id": "c1", "object": "chat.completion.chunk", "model": body.get("model"),
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]}  # fmt: skip
                end = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                usage = {
                    **chunk,
                    "choices": [],
                    "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39},
                }
                payload = sse(None, chunk) + sse(None, end) + sse(None, usage) + b"data: [DONE]\n\n"
                self._send(200, payload, "text/event-stream")
            else:
                out = {"id": "c1", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}}  # fmt: skip
                self._send(200, json.dumps(out).encode(), "application/json")
        else:
            self._send(404, b'{"error": {"message": "not here"}}', "application/json")


if __name__ == "__main__":
    print(f"recording to {OUT} on 127.0.0.1:{PORT}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
