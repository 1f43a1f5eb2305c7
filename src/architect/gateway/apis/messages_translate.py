"""Translation between Anthropic's Messages API and OpenAI chat completions, for a `/v1/messages`
call answered by a deployment that speaks chat completions. Pure functions, no I/O.

What happens to each Messages field with no chat-completions equivalent:

| field | what happens |
|---|---|
| `cache_control` (on system, messages, tools) | dropped and recorded |
| `top_k` | dropped and recorded |
| `thinking` (the configuration) | dropped and recorded |
| `thinking` / `redacted_thinking` blocks passed back | dropped and recorded |
| `metadata.user_id` | dropped and recorded (its values still tag the call) |
| `context_management`, `output_config`, `service_tier`, `anthropic-beta` header | dropped and recorded |
| tool fields other than `name`, `description`, `input_schema` (e.g. `defer_loading`) | dropped and recorded (`tools.<field>`) |
| any other top-level field the translation does not know | dropped and recorded |
| `container`, `mcp_servers` | refused (400 naming it) |
| `stop_sequences` of more than 4 (chat completions' limit) | refused (400 naming it) |
| server tools (`web_search_*`, `code_execution_*`, `web_fetch_*`, ...) and Anthropic-defined client tools (`bash_*`, `text_editor_*`, `computer_*`) | refused (400 naming it) |
| `document` blocks other than plain text, content block types not listed here | refused (400 naming it) |

Carried over: `system` (string or text blocks; `system` turns inside `messages` stay in place), text, images (base64 or URL), `tool_use` /
`tool_result` (with `is_error` and images: a result's images follow it in a user message), `tools`,
`tool_choice` (and `disable_parallel_tool_use`), `stop_sequences`, `temperature`, `top_p`,
`max_tokens`, `stream`."""

from __future__ import annotations

from typing import Any

import orjson

from architect.errors import ProviderError
from architect.gateway.apis.base import derived_base, refused
from architect.gateway.providers.base import Usage
from architect.gateway.validation import CHAT_NAME_RULE, chat_name_ok

__all__ = ["STOP_REASONS", "anthropic_usage", "message_from_chat", "message_id", "reissue", "to_chat"]

# chat finish_reason -> Messages stop_reason
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_CARRIED = frozenset(
    (
        "model",
        "messages",
        "system",
        "max_tokens",
        "stream",
        "temperature",
        "top_p",
        "stop_sequences",
        "tools",
        "tool_choice",
    )
)
_TOOL_KEYS = frozenset(("name", "description", "input_schema", "type", "cache_control"))
_REFUSED = ("container", "mcp_servers")
_MAX_STOP = 4  # chat completions' `stop` takes at most 4 sequences


def _text_blocks(blocks: list[Any], where: str, dropped: set[str]) -> str:
    parts: list[str] = []
    for i, b in enumerate(blocks):
        if b.get("cache_control") is not None:
            dropped.add("cache_control")
        if b.get("type") != "text":
            raise refused(
                f"{where}[{i}].type: only text blocks can go here for this deployment", f"{where}[{i}]"
            )
        parts.append(b["text"])
    return "\n\n".join(parts)


def _image(b: dict[str, Any], where: str) -> dict[str, Any]:
    src = b.get("source") or {}
    kind = src.get("type")
    if kind == "base64":
        url = f"data:{src.get('media_type')};base64,{src.get('data')}"
    elif kind == "url":
        url = str(src.get("url") or "")
    else:
        raise refused(
            f"{where}.source.type: image sources of type {kind!r} cannot go to this deployment",
            f"{where}.source",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document(b: dict[str, Any], where: str) -> dict[str, Any]:
    src = b.get("source") or {}
    if src.get("type") == "text" and isinstance(src.get("data"), str):
        return {"type": "text", "text": src["data"]}
    raise refused(
        f"{where}: document blocks of source type {src.get('type')!r} cannot go to this deployment "
        "(only plain text documents are translated)",
        where,
    )


def _tool_result(
    b: dict[str, Any], where: str, dropped: set[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tool message of a `tool_result` block, and the image parts that follow it."""
    content = b.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for i, inner in enumerate(content):
            at = f"{where}.content[{i}]"
            if inner.get("cache_control") is not None:
                dropped.add("cache_control")
            kind = inner.get("type")
            if kind == "text":
                texts.append(inner["text"])
            elif kind == "image":
                images.append(_image(inner, at))
            elif kind == "document":
                texts.append(_document(inner, at)["text"])
            else:
                raise refused(f"{at}.type: {kind!r} blocks in a tool result cannot go to this deployment", at)
    text = "\n".join(texts)
    if b.get("is_error"):
        text = f"[tool error] {text}" if text else "[tool error]"
    if images and not text:
        text = "(the tool returned images; they follow)"
    return {"role": "tool", "tool_call_id": b["tool_use_id"], "content": text}, images


def _user(m: dict[str, Any], where: str, dropped: set[str], out: list[dict[str, Any]]) -> None:
    content = m["content"]
    if isinstance(content, str):
        out.append({"role": "user", "content": content})
        return
    parts: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []  # images returned by tools, sent after the tool messages
    for i, b in enumerate(content):
        at = f"{where}.content[{i}]"
        if b.get("cache_control") is not None:
            dropped.add("cache_control")
        kind = b["type"]
        if kind == "text":
            parts.append({"type": "text", "text": b["text"]})
        elif kind == "image":
            parts.append(_image(b, at))
        elif kind == "document":
            parts.append(_document(b, at))
        elif kind == "tool_result":
            msg, images = _tool_result(b, at, dropped)
            out.append(msg)
            after.extend(images)
        elif kind in ("thinking", "redacted_thinking"):
            dropped.add("thinking")
        else:
            raise refused(f"{at}.type: {kind!r} blocks cannot go to this deployment", at)
    parts = after + parts
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})


def _assistant(m: dict[str, Any], where: str, dropped: set[str], out: list[dict[str, Any]]) -> None:
    content = m["content"]
    if isinstance(content, str):
        out.append({"role": "assistant", "content": content})
        return
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, b in enumerate(content):
        at = f"{where}.content[{i}]"
        if b.get("cache_control") is not None:
            dropped.add("cache_control")
        kind = b["type"]
        if kind == "text":
            texts.append(b["text"])
        elif kind == "tool_use":
            args = orjson.dumps(b["input"]).decode()
            calls.append(
                {"id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": args}}
            )
        elif kind in ("thinking", "redacted_thinking"):
            dropped.add("thinking")
        else:
            raise refused(f"{at}.type: {kind!r} blocks cannot go to this deployment", at)
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        msg["tool_calls"] = calls
    out.append(msg)


def _tools(tools: list[Any], dropped: set[str]) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(tools):
        kind = t.get("type")
        if kind not in (None, "custom"):
            raise refused(
                f"tools[{i}].type: {kind!r} is a tool Anthropic runs or defines; this deployment cannot "
                "take it (give the tool a name, description and input_schema instead)",
                f"tools[{i}].type",
            )
        if not chat_name_ok(t["name"]):
            raise refused(
                f"tools[{i}].name: this deployment takes {CHAT_NAME_RULE}, got {t['name']!r}",
                f"tools[{i}].name",
            )
        if t.get("cache_control") is not None:
            dropped.add("cache_control")
        dropped.update(f"tools.{k}" for k in t if k not in _TOOL_KEYS)
        fn: dict[str, Any] = {"name": t["name"], "parameters": t["input_schema"]}
        if t.get("description"):
            fn["description"] = t["description"]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: dict[str, Any]) -> tuple[Any, bool | None]:
    kind = choice["type"]
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", None
    return {"type": "function", "function": {"name": choice["name"]}}, parallel


def to_chat(body: dict[str, Any], headers: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """A checked Messages body as a chat completion body, and the fields it dropped (sorted)."""
    for key in _REFUSED:
        if body.get(key) is not None:
            raise refused(
                f"{key}: this deployment cannot take '{key}' (it needs an Anthropic deployment)", key
            )
    dropped: set[str] = {k for k in body if k not in _CARRIED and k != "metadata"}
    meta = body.get("metadata")
    if isinstance(meta, dict) and meta:
        dropped.add("metadata.user_id" if set(meta) == {"user_id"} else "metadata")
    if "anthropic-beta" in headers:
        dropped.add("anthropic-beta")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    elif isinstance(system, list) and system:
        messages.append({"role": "system", "content": _text_blocks(system, "system", dropped)})
    for i, m in enumerate(body["messages"]):
        where = f"messages[{i}]"
        if m["role"] == "system":  # a system turn inside the conversation stays where it is
            content = m["content"]
            text = content if isinstance(content, str) else _text_blocks(content, f"{where}.content", dropped)
            messages.append({"role": "system", "content": text})
        else:
            (_user if m["role"] == "user" else _assistant)(m, where, dropped, messages)
    chat: dict[str, Any] = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            chat[key] = body[key]
    stops = body.get("stop_sequences")
    if stops:
        if len(stops) > _MAX_STOP:
            raise refused(
                f"stop_sequences: this deployment takes at most {_MAX_STOP} stop sequences, got {len(stops)}",
                "stop_sequences",
            )
        chat["stop"] = stops
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"], dropped)
    if body.get("tool_choice") is not None and (chat.get("tools") or body["tool_choice"]["type"] == "none"):
        choice, parallel = _tool_choice(body["tool_choice"])
        chat["tool_choice"] = choice
        if parallel is not None:
            chat["parallel_tool_calls"] = parallel
    if body.get("stream"):
        chat["stream"] = True
    return chat, sorted(dropped)


def anthropic_usage(u: Usage | None) -> dict[str, int]:
    """Usage as Messages reports it: `input_tokens` excludes cache reads and writes."""
    u = u or Usage()
    return {
        "input_tokens": max(0, u.prompt_tokens - u.cached_tokens - u.cache_write_tokens),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
    }


def _tool_input(raw: object) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    except orjson.JSONDecodeError:
        raise ProviderError(
            "the deployment returned tool call arguments that are not JSON", kind="bad_response"
        ) from None
    return value if isinstance(value, dict) else {"value": value}


def message_from_chat(
    obj: dict[str, Any], message_id: str, model: str, usage: Usage | None
) -> dict[str, Any]:
    """A chat completion as a Messages `message` (its first choice)."""
    choices = obj.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = msg.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for tc in msg.get("tool_calls") or ():
        fn = tc.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": tc.get("id") or f"toolu_{message_id}_{len(content)}",
                "name": fn.get("name") or "",
                "input": _tool_input(fn.get("arguments")),
            }
        )
    finish = choice.get("finish_reason")
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS.get(str(finish), "end_turn") if finish else "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


def message_id(call_id: str) -> str:
    """A message's id, from the gateway's own id of the call (never the client's `x-request-id`,
    which a client may reuse)."""
    return f"msg_{call_id}"


def reissue(message: dict[str, Any], new_id: str) -> None:
    """Make another call's message (a cached or coalesced answer, parsed from its JSON) the one of the
    call whose message id is `new_id`, in place: its id, and the ids of its `tool_use` blocks the
    gateway made from the previous id (`toolu_<id>_<n>`; a native deployment's own are kept)."""
    bases = derived_base(message.get("id"), new_id, "msg_")
    message["id"] = new_id
    if bases is None:
        return
    old, new = bases
    for block in message.get("content") or ():
        if isinstance(block, dict) and block.get("type") == "tool_use":
            value = block.get("id")
            if isinstance(value, str) and old in value:
                block["id"] = value.replace(old, new)
