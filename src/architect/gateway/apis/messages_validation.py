"""The shapes of `/v1/messages` bodies (Anthropic's Messages API), checked at the edge.

Fields the gateway acts on are checked; a bad one is refused with an `InvalidRequest` whose `param`
is its JSON path (`messages[1].content[0].tool_use_id`). `system` takes text blocks only (as in
Anthropic's API). Content blocks of a type the gateway does not know pass the edge in `messages` (an
Anthropic deployment may take them) and are refused by the translation to a deployment that cannot
take them."""

from __future__ import annotations

from typing import Any

from architect.errors import InvalidRequest
from architect.gateway.validation import MAX_TOKENS_LIMIT

__all__ = ["check_count_tokens_body", "check_messages_body"]

# Claude Code sends `system` turns inside `messages` too (mid-conversation system messages).
_ROLES = ("user", "assistant", "system")
_CHOICES = ("auto", "any", "tool", "none")


def _kind(v: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "an array", dict: "an object", type(None): "null"})
    return names.get(type(v), type(v).__name__)


def _type_error(path: str, expected: str, v: object) -> InvalidRequest:
    if v is None:
        return InvalidRequest(f"{path}: Field required", param=path, code="missing_required_parameter")
    return InvalidRequest(f"{path}: expected {expected}, got {_kind(v)}", param=path, code="invalid_type")


def _value_error(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {message}", param=path, code="invalid_value")


def _str(obj: dict[str, Any], key: str, path: str, required: bool = False) -> None:
    v = obj.get(key)
    if type(v) is not str and (required or v is not None):
        raise _type_error(f"{path}.{key}", "a string", v)


def _block(b: object, path: str) -> None:
    if type(b) is not dict:
        raise _type_error(path, "an object", b)
    kind = b.get("type")
    if type(kind) is not str or not kind:
        raise _type_error(f"{path}.type", "a string", kind)
    if kind == "text":
        _str(b, "text", path, required=True)
    elif kind == "image":
        if type(b.get("source")) is not dict:
            raise _type_error(f"{path}.source", "an object", b.get("source"))
    elif kind == "tool_use":
        _str(b, "id", path, required=True)
        _str(b, "name", path, required=True)
        if type(b.get("input")) is not dict:
            raise _type_error(f"{path}.input", "an object", b.get("input"))
    elif kind == "tool_result":
        _str(b, "tool_use_id", path, required=True)
        content = b.get("content")
        if isinstance(content, list):
            for i, inner in enumerate(content):
                _block(inner, f"{path}.content[{i}]")
        elif content is not None and type(content) is not str:
            raise _type_error(f"{path}.content", "a string or an array of blocks", content)
        if b.get("is_error") is not None and type(b.get("is_error")) is not bool:
            raise _type_error(f"{path}.is_error", "a boolean", b.get("is_error"))
    elif kind == "thinking":
        _str(b, "thinking", path, required=True)
        _str(b, "signature", path)
    if b.get("cache_control") is not None and type(b.get("cache_control")) is not dict:
        raise _type_error(f"{path}.cache_control", "an object", b.get("cache_control"))


def _content(content: object, path: str) -> None:
    if type(content) is str:
        return
    if type(content) is not list:
        raise _type_error(path, "a string or an array of content blocks", content)
    for i, b in enumerate(content):
        _block(b, f"{path}[{i}]")


def _messages(messages: object) -> None:
    if type(messages) is not list:
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise _value_error("messages", "at least one message is required")
    for i, m in enumerate(messages):
        path = f"messages[{i}]"
        if type(m) is not dict:
            raise _type_error(path, "an object", m)
        role = m.get("role")
        if role not in _ROLES:
            if type(role) is not str:
                raise _type_error(f"{path}.role", "a string", role)
            raise _value_error(f"{path}.role", f"expected 'user', 'assistant' or 'system', got {role[:40]!r}")
        _content(m.get("content"), f"{path}.content")


def _common(body: dict[str, Any]) -> None:
    _messages(body.get("messages"))
    system = body.get("system")
    if system is not None and type(system) is not str:
        if type(system) is not list:
            raise _type_error("system", "a string or an array of text blocks", system)
        for i, b in enumerate(system):
            kind = b.get("type") if type(b) is dict else None
            if type(kind) is str and kind != "text":
                raise _value_error(
                    f"system[{i}].type", f"only text blocks can go in system, got {kind[:40]!r}"
                )
            _block(b, f"system[{i}]")
    tools = body.get("tools")
    if tools is not None:
        if type(tools) is not list:
            raise _type_error("tools", "an array", tools)
        for i, t in enumerate(tools):
            if type(t) is not dict:
                raise _type_error(f"tools[{i}]", "an object", t)
            _str(t, "name", f"tools[{i}]", required=True)
            _str(t, "type", f"tools[{i}]")
            if t.get("type") in (None, "custom") and type(t.get("input_schema")) is not dict:
                raise _type_error(
                    f"tools[{i}].input_schema", "an object (a JSON Schema)", t.get("input_schema")
                )
    choice = body.get("tool_choice")
    if choice is not None:
        if type(choice) is not dict:
            raise _type_error("tool_choice", "an object", choice)
        kind = choice.get("type")
        if kind not in _CHOICES:
            raise _value_error("tool_choice.type", "expected one of 'auto', 'any', 'tool', 'none'")
        if kind == "tool":
            _str(choice, "name", "tool_choice", required=True)


def check_messages_body(body: dict[str, Any]) -> None:
    """Refuse a Messages body whose known fields are not of the API's shapes."""
    mt = body.get("max_tokens")
    if type(mt) is not int:
        raise _type_error("max_tokens", "an integer", mt)
    if not 1 <= mt <= MAX_TOKENS_LIMIT:
        raise _value_error("max_tokens", f"expected an integer from 1 to {MAX_TOKENS_LIMIT}, got {mt}")
    _common(body)
    for key in ("stream",):
        v = body.get(key)
        if v is not None and type(v) is not bool:
            raise _type_error(key, "a boolean", v)
    for key, hi in (("temperature", 1.0), ("top_p", 1.0)):
        v = body.get(key)
        if v is not None:
            if type(v) not in (int, float) or type(v) is bool:
                raise _type_error(key, "a number", v)
            if not 0 <= v <= hi:
                raise _value_error(key, f"expected a number from 0 to {hi:g}, got {v}")
    top_k = body.get("top_k")
    if top_k is not None and (type(top_k) is not int or top_k < 0):
        raise _type_error("top_k", "a non-negative integer", top_k)
    stops = body.get("stop_sequences")
    if stops is not None:
        if type(stops) is not list:
            raise _type_error("stop_sequences", "an array of strings", stops)
        for i, s in enumerate(stops):
            if type(s) is not str:
                raise _type_error(f"stop_sequences[{i}]", "a string", s)
    for key in ("metadata", "thinking"):
        v = body.get(key)
        if v is not None and type(v) is not dict:
            raise _type_error(key, "an object", v)
    meta = body.get("metadata")
    if isinstance(meta, dict) and meta.get("user_id") is not None and type(meta["user_id"]) is not str:
        raise _type_error("metadata.user_id", "a string", meta["user_id"])


def check_count_tokens_body(body: dict[str, Any]) -> None:
    """Refuse a count_tokens body whose known fields are not of the API's shapes."""
    _common(body)
