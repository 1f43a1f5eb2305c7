"""Conversions between a complete chat completion and its SSE stream form, so a cached answer can
serve a request of either kind."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["completion_to_sse", "sse_to_completion"]


def completion_to_sse(body: bytes, include_usage: bool) -> list[bytes]:
    """The SSE events (each ending in a blank line) that stream the given chat.completion body."""
    obj = orjson.loads(body)
    base = {k: obj.get(k) for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    events: list[bytes] = []
    for ch in obj.get("choices") or ():
        msg = ch.get("message") or {}
        delta: dict[str, Any] = {"role": msg.get("role", "assistant"), "content": msg.get("content") or ""}
        if msg.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **tc} for i, tc in enumerate(msg["tool_calls"])]
        events.append(
            _event(
                {**base, "choices": [{"index": ch.get("index", 0), "delta": delta, "finish_reason": None}]}
            )
        )
        events.append(
            _event(
                {
                    **base,
                    "choices": [
                        {
                            "index": ch.get("index", 0),
                            "delta": {},
                            "finish_reason": ch.get("finish_reason") or "stop",
                        }
                    ],
                }
            )
        )
    if include_usage and obj.get("usage"):
        events.append(_event({**base, "choices": [], "usage": obj["usage"]}))
    events.append(b"data: [DONE]\n\n")
    return events


def sse_to_completion(stream: bytes) -> bytes | None:
    """Reassemble a complete chat.completion from a finished SSE stream; None if it cannot be."""
    choices: dict[int, dict[str, Any]] = {}
    base: dict[str, Any] = {}
    usage = None
    done = False
    for raw in stream.split(b"\n\n"):
        if not raw.startswith(b"data:"):
            continue
        data = raw[5:].strip()
        if data == b"[DONE]":
            done = True
            continue
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict) or "error" in obj:
            return None
        if not base:
            base = {k: obj.get(k) for k in ("id", "created", "model", "system_fingerprint")}
        if obj.get("usage"):
            usage = obj["usage"]
        for ch in obj.get("choices") or ():
            idx = ch.get("index", 0)
            acc = choices.setdefault(
                idx, {"index": idx, "message": {"role": "assistant", "content": ""}, "finish_reason": None}
            )
            delta = ch.get("delta") or {}
            if delta.get("content"):
                acc["message"]["content"] += delta["content"]
            if delta.get("tool_calls"):
                calls = acc["message"].setdefault("tool_calls", [])
                for tc in delta["tool_calls"]:
                    i = tc.get("index", 0)
                    while len(calls) <= i:
                        calls.append(
                            {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                        )
                    cur = calls[i]
                    cur["id"] = tc.get("id") or cur["id"]
                    fn = tc.get("function") or {}
                    cur["function"]["name"] += fn.get("name") or ""
                    cur["function"]["arguments"] += fn.get("arguments") or ""
            if ch.get("finish_reason"):
                acc["finish_reason"] = ch["finish_reason"]
    if not done or not choices:
        return None
    out = {**base, "object": "chat.completion", "choices": [choices[i] for i in sorted(choices)]}
    if usage:
        out["usage"] = usage
    return orjson.dumps(out)


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"
