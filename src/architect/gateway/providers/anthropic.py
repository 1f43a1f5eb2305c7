"""The `anthropic` provider kind: Anthropic's Messages API behind the OpenAI wire format, as pure
translation (no I/O).

Requests: `system`/`developer` messages become `system`; user, assistant and tool messages become
alternating user/assistant turns (tool results are `tool_result` blocks in a user turn, assistant
`tool_calls` are `tool_use` blocks); image parts become base64 or URL image blocks; `tools` and
`tool_choice` map to their Anthropic forms; `max_tokens` defaults to DEFAULT_MAX_TOKENS; a
`cache_control` on a content part is carried over (prompt caching).

Responses and streams come back as OpenAI chat completions / chunks. Usage: Anthropic's
`input_tokens` excludes cache reads and writes, so `prompt_tokens = input + cache_read + cache_write`
(every input token, as the client sees it on every API and the ledger keeps it), with
`cached_tokens = cache_read` and `cache_write_tokens = cache_write` (which `costs.py` prices at their
own prices, the rest at the input price)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from architect.errors import ProviderError, UpstreamError, UpstreamRefused
from architect.gateway.providers.base import (
    UNSUPPORTED,
    ChatResult,
    Usage,
    error_message,
    sse_error_event,
    upstream_error,
)

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicAdapter", "AnthropicStream"]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
_JSON = {"content-type": "application/json"}
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_RETRYABLE_STREAM_ERRORS = ("overloaded_error", "api_error", "rate_limit_error")


def _bad(message: str, param: str | None = None) -> ProviderError:
    """A request this provider cannot take: a 400 for the client, never retried, not a health issue."""
    return UpstreamRefused(message, param=param, code=UNSUPPORTED)


# -- request ---------------------------------------------------------------------------------------
def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url:
        raise _bad(f"{where}.image_url.url must be a non-empty string", f"{where}.image_url")
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise _bad(f"{where}: a data URL image must be base64 (data:image/png;base64,...)", where)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """OpenAI message content (string or parts) as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or an array of parts", f"{where}.content")
    out: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        at = f"{where}.content[{i}]"
        if not isinstance(part, dict):
            raise _bad(f"{at} must be an object", at)
        kind = part.get("type")
        if kind == "text":
            block: dict[str, Any] = {"type": "text", "text": str(part.get("text") or "")}
        elif kind == "image_url":
            block = _image(part, at)
        else:
            raise _bad(f"{at}: content parts of type {kind!r} are not supported by Anthropic models", at)
        if isinstance(part.get("cache_control"), dict):
            block["cache_control"] = part["cache_control"]
        out.append(block)
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return "" if content is None else str(content)


def _tool_use(tc: Any, where: str) -> dict[str, Any]:
    fn = tc.get("function") if isinstance(tc, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise _bad(f"{where} must have function.name", where)
    raw = fn.get("arguments") or "{}"
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise _bad(f"{where}.function.arguments is not valid JSON", where) from None
    return {"type": "tool_use", "id": str(tc.get("id") or ""), "name": fn["name"], "input": args or {}}


def _messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, alternating user/assistant messages)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # Anthropic wants strictly alternating roles
        else:
            turns.append({"role": role, "content": blocks})

    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m.get("role")
        content = m.get("content")
        if role in ("system", "developer"):
            system.extend(_blocks(content, where))
        elif role == "user":
            add("user", _blocks(content, where))
        elif role == "assistant":
            blocks = _blocks(content, where)
            for j, tc in enumerate(m.get("tool_calls") or ()):
                blocks.append(_tool_use(tc, f"{where}.tool_calls[{j}]"))
            add("assistant", blocks)
        elif role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": str(m.get("tool_call_id") or ""),
                "content": _text_of(content),
            }
            add("user", [result])
        else:
            raise _bad(f"{where}.role {role!r} is not supported by Anthropic models", f"{where}.role")
    return system, turns


def _tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad(f"tools[{i}] must be a function tool with a name", f"tools[{i}]")
        tool: dict[str, Any] = {
            "name": fn["name"],
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            tool["description"] = fn["description"]
        if isinstance(t.get("cache_control"), dict):
            tool["cache_control"] = t["cache_control"]
        out.append(tool)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    tc: dict[str, Any] | None
    if choice is None:
        tc = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        tc = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        tc = {"type": "any"}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        tc = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise _bad("tool_choice must be 'auto', 'none', 'required' or a function", "tool_choice")
    if tc is not None and parallel is False:
        tc["disable_parallel_tool_use"] = True
    return tc


def translate_request(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """An OpenAI chat completion request as an Anthropic Messages request."""
    if (body.get("n") or 1) != 1:
        raise _bad("Anthropic models return one choice; 'n' must be 1", "n")
    system, turns = _messages(body.get("messages") or [])
    if not turns:
        raise _bad("Anthropic models need at least one user or assistant message", "messages")
    out: dict[str, Any] = {
        "model": model,
        "max_tokens": int(body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS),
        "messages": turns,
    }
    if system:
        if all(set(b) == {"type", "text"} for b in system):
            out["system"] = "\n\n".join(b["text"] for b in system)
        else:
            out["system"] = system
    if body.get("temperature") is not None:
        out["temperature"] = min(1.0, float(body["temperature"]))  # Anthropic's range is 0..1
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        out["tools"] = _tools(body["tools"])
    tc = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if tc is not None and (out.get("tools") or tc["type"] == "none"):
        out["tool_choice"] = tc
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out


# -- response --------------------------------------------------------------------------------------
def usage_of(obj: Any, before: Usage | None = None) -> Usage | None:
    """Anthropic usage as the internal Usage, `prompt_tokens` counting every input token (see the
    module docstring). With `before` (a stream's usage so far; `message_delta` usage is cumulative),
    the fields `obj` omits keep their values in `before`."""
    if not isinstance(obj, dict):
        return None
    cur = before or Usage()

    def field(key: str, old: int) -> int:
        value = obj.get(key)
        return old if value is None and before is not None else int(value or 0)

    read = field("cache_read_input_tokens", cur.cached_tokens)
    write = field("cache_creation_input_tokens", cur.cache_write_tokens)
    uncached = field("input_tokens", cur.prompt_tokens - cur.cached_tokens - cur.cache_write_tokens)
    return Usage(
        prompt_tokens=uncached + read + write,
        completion_tokens=field("output_tokens", cur.completion_tokens),
        cached_tokens=read,
        cache_write_tokens=write,
    )


def openai_usage(u: Usage) -> dict[str, Any]:
    """What the client sees: OpenAI's usage object, prompt_tokens counting every input token."""
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
    }


def _tool_call(block: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    tc: dict[str, Any] = {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()},
    }
    return {"index": index, **tc} if index is not None else tc


def translate_response(obj: dict[str, Any]) -> tuple[dict[str, Any], Usage | None, str]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in obj.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            calls.append(_tool_call(block))
    finish = FINISH_REASONS.get(str(obj.get("stop_reason")), "stop")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    usage = usage_of(obj.get("usage"))
    out: dict[str, Any] = {
        "id": obj.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": obj.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        out["usage"] = openai_usage(usage)
    return out, usage, finish


# -- stream ----------------------------------------------------------------------------------------
class AnthropicStream:
    """Anthropic stream events → OpenAI `chat.completion.chunk` SSE events, then `[DONE]`. An `error`
    event becomes an OpenAI-style `data: {"error": ...}` event and sets `error`. An event whose data is
    not a JSON object breaks the stream: an error event follows what was translated before it, never
    `[DONE]`, and `error` is set."""

    __slots__ = (
        "_base",
        "_buf",
        "_include_usage",
        "_model",
        "_texts",
        "_tool_index",
        "_tools",
        "broken",
        "done",
        "error",
        "usage",
    )

    def __init__(self, include_usage: bool, model: str) -> None:
        self._include_usage = include_usage
        self._model = model
        self._buf = b""
        self._texts: list[str] = []
        self._tools = 0
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
        self._base: dict[str, Any] = {
            "id": None,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        self.usage: Usage | None = None
        self.done = False
        self.broken = False
        self.error: ProviderError | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self.broken:
            return b""  # nothing after a broken event reaches the client
        buf = self._buf + chunk
        if b"\r\n" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        if b"\n\n" not in buf:
            self._buf = buf
            return b""
        *events, self._buf = buf.split(b"\n\n")
        out: list[bytes] = []
        for ev in events:
            data = b"".join(line[5:].lstrip() for line in ev.split(b"\n") if line.startswith(b"data:"))
            if not data:
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                self._event(obj, out)
            elif not self.done:
                return self._broken(out)
        return b"".join(out)

    def _broken(self, out: list[bytes]) -> bytes:
        """The chunks translated before an event that is not a JSON object, then an error event; the
        stream ends there."""
        self.broken = True
        self.error = UpstreamError(
            "the upstream sent a stream event that is not valid JSON; the answer is incomplete",
            kind="invalid_stream_event",
        )
        out.append(sse_error_event(self.error))
        return b"".join(out)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        obj = {**self._base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    def _event(self, obj: dict[str, Any], out: list[bytes]) -> None:
        kind = obj.get("type")
        if kind == "message_start":
            msg = obj.get("message") or {}
            self._base["id"] = msg.get("id")
            self._base["model"] = msg.get("model") or self._model
            self.usage = usage_of(msg.get("usage"))
            out.append(self._chunk({"role": "assistant", "content": ""}))
        elif kind == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") == "tool_use":
                idx = self._tools
                self._tools += 1
                self._tool_index[int(obj.get("index") or 0)] = idx
                tc = _tool_call({**block, "input": {}}, idx)
                tc["function"]["arguments"] = ""
                out.append(self._chunk({"tool_calls": [tc]}))
            elif block.get("type") == "text" and block.get("text"):
                self._texts.append(block["text"])
                out.append(self._chunk({"content": block["text"]}))
        elif kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                text = str(delta.get("text") or "")
                self._texts.append(text)
                out.append(self._chunk({"content": text}))
            elif delta.get("type") == "input_json_delta":
                at = self._tool_index.get(int(obj.get("index") or 0))
                if at is not None:
                    part = {"index": at, "function": {"arguments": str(delta.get("partial_json") or "")}}
                    out.append(self._chunk({"tool_calls": [part]}))
        elif kind == "message_delta":
            u = obj.get("usage")
            if isinstance(u, dict):
                self.usage = usage_of(u, self.usage or Usage())
            stop = (obj.get("delta") or {}).get("stop_reason")
            if stop:
                out.append(self._chunk({}, FINISH_REASONS.get(str(stop), "stop")))
        elif kind == "message_stop":
            if self._include_usage and self.usage is not None:
                usage_chunk = {**self._base, "choices": [], "usage": openai_usage(self.usage)}
                out.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
            out.append(b"data: [DONE]\n\n")
            self.done = True
        elif kind == "error":
            err = obj.get("error") or {}
            etype = str(err.get("type") or "api_error")
            message = str(err.get("message") or "the provider reported an error in the stream")
            self.error = ProviderError(
                message, kind=etype, retryable=etype in _RETRYABLE_STREAM_ERRORS, code=etype
            )
            payload = {"error": {"message": message, "type": "upstream_error", "param": None, "code": etype}}
            out.append(b"data: " + orjson.dumps(payload) + b"\n\n")
        # ping and thinking/signature deltas carry nothing for an OpenAI client

    def completion_text(self) -> str:
        return "".join(self._texts)


# -- adapter ---------------------------------------------------------------------------------------
class AnthropicAdapter:
    kind = "anthropic"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def chat_request(
        self, body: dict[str, Any], model: str, stream: bool
    ) -> tuple[str, bytes, dict[str, str]]:
        return "/messages", orjson.dumps(translate_request(body, model, stream)), _JSON

    def chat_response(self, data: bytes) -> ChatResult:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProviderError("the provider returned a body that is not JSON", kind="bad_response") from exc
        if not isinstance(obj, dict) or obj.get("type") not in (None, "message"):
            raise ProviderError("the provider returned an unexpected body", kind="bad_response")
        out, usage, finish = translate_response(obj)
        return ChatResult(orjson.dumps(out), usage, finish)

    def stream_translator(self, include_usage: bool, model: str) -> AnthropicStream:
        return AnthropicStream(include_usage, model)

    def embeddings_request(self, body: dict[str, Any], model: str) -> tuple[str, bytes, dict[str, str]]:
        raise _bad("Anthropic has no embeddings endpoint; use an embedding model group", "model")

    def embeddings_response(self, data: bytes) -> ChatResult:
        raise _bad("Anthropic has no embeddings endpoint", "model")

    def error(self, status: int, headers: dict[str, str], data: bytes) -> ProviderError:
        message, code = error_message(data)
        low = message.lower()
        if status in (400, 413) and (
            "prompt is too long" in low or "context window" in low or "too many tokens" in low
        ):
            code = "context_length_exceeded"
        err = upstream_error(status, headers, message, code)
        if status == 529:
            err.kind = "overloaded"
        return err
