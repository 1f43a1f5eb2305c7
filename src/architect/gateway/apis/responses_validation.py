"""The shapes of `/v1/responses` bodies (OpenAI's Responses API), checked at the edge.

The fields the gateway acts on are checked; a bad one is refused with an `InvalidRequest` in OpenAI's
error format whose `param` is its JSON path (`input[2].call_id`, `tools[0].name`). Item, content part
and tool types the gateway does not know pass the edge (a deployment with the Responses API may take
them; the translation to chat completions drops and records them). A null value counts as absent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from architect.errors import InvalidRequest
from architect.gateway.validation import MAX_TOKENS_LIMIT
from architect.identifiers import check_identifier

__all__ = ["ROLES", "check_responses_body"]

ROLES = ("user", "assistant", "system", "developer")
_CHOICES = ("none", "auto", "required")
_FORMATS = ("text", "json_object", "json_schema")
_MISSING, _TYPE, _VALUE = "missing_required_parameter", "invalid_type", "invalid_value"


def _kind(value: object) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    kinds.update({list: "an array", dict: "an object", type(None): "null"})
    return kinds.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    text = repr(value[:41]) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _missing(path: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{path}'.", param=path, code=_MISSING)


def _type(path: str, expected: str, value: object) -> InvalidRequest:
    if value is None:
        return _missing(path)
    return InvalidRequest(
        f"Invalid type for '{path}': expected {expected}, but got {_kind(value)}.", param=path, code=_TYPE
    )


def _value(path: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid value for '{path}': expected {expected}, but got {_show(value)}.", param=path, code=_VALUE
    )


def _str(obj: dict[str, Any], key: str, path: str, required: bool = False) -> None:
    v = obj.get(key)
    if type(v) is not str and (required or v is not None):
        raise _type(f"{path}.{key}", "a string", v)


def _one_of(obj: dict[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> None:
    v = obj.get(key)
    if v not in allowed:
        if type(v) is not str:
            raise _type(f"{path}.{key}", "a string", v)
        raise _value(f"{path}.{key}", "one of " + ", ".join(f"'{a}'" for a in allowed), v)


def _output(item: dict[str, Any], path: str) -> None:
    """A tool call's output: a string or an array of content parts."""
    out = item.get("output")
    if type(out) is str:
        return
    if type(out) is not list:
        raise _type(f"{path}.output", "a string or an array of content parts", out)
    for i, p in enumerate(out):
        _part(p, f"{path}.output[{i}]")


def _part(p: object, path: str) -> None:
    if type(p) is not dict:
        raise _type(path, "an object", p)
    kind = p.get("type")
    if type(kind) is not str:
        raise _type(f"{path}.type", "a string", kind)
    if kind in ("input_text", "output_text", "summary_text", "reasoning_text"):
        _str(p, "text", path, required=True)
    elif kind == "input_image":
        _str(p, "image_url", path)
        _str(p, "file_id", path)
        if p.get("image_url") is None and p.get("file_id") is None:
            raise _missing(f"{path}.image_url")
    elif kind == "refusal":
        _str(p, "refusal", path, required=True)


def _message(item: dict[str, Any], path: str) -> None:
    _one_of(item, "role", path, ROLES)
    content = item.get("content")
    if type(content) is str:
        return
    if type(content) is not list:
        raise _type(f"{path}.content", "a string or an array of content parts", content)
    for i, p in enumerate(content):
        _part(p, f"{path}.content[{i}]")


def _item(item: object, path: str) -> None:
    if type(item) is not dict:
        raise _type(path, "an object", item)
    kind = item.get("type")
    if kind is None and "role" in item:
        kind = "message"
    if type(kind) is not str:
        raise _type(f"{path}.type", "a string", kind)
    if kind == "message":
        _message(item, path)
    elif kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            _str(item, key, path, required=True)
    elif kind == "custom_tool_call":
        for key in ("call_id", "name", "input"):
            _str(item, key, path, required=True)
    elif kind in ("function_call_output", "custom_tool_call_output"):
        _str(item, "call_id", path, required=True)
        _output(item, path)
    elif kind == "reasoning":
        summary = item.get("summary")
        if summary is not None:
            if type(summary) is not list:
                raise _type(f"{path}.summary", "an array", summary)
            for i, p in enumerate(summary):
                _part(p, f"{path}.summary[{i}]")
        _str(item, "encrypted_content", path)


def _input(v: object) -> None:
    if type(v) is str:
        return
    if type(v) is not list:
        raise _type("input", "a string or an array of input items", v)
    for i, item in enumerate(v):
        _item(item, f"input[{i}]")


def _tools(v: object) -> None:
    if type(v) is not list:
        raise _type("tools", "an array", v)
    for i, t in enumerate(v):
        path = f"tools[{i}]"
        if type(t) is not dict:
            raise _type(path, "an object", t)
        kind = t.get("type")
        if type(kind) is not str:
            raise _type(f"{path}.type", "a string", kind)
        if kind in ("function", "custom"):
            _str(t, "name", path, required=True)
            name = t["name"]
            if not 0 < len(name) <= 64 or not all(c.isascii() and (c.isalnum() or c in "_-.") for c in name):
                raise _value(f"{path}.name", "1 to 64 letters, digits, underscores, dots or dashes", name)
            _str(t, "description", path)
        if kind == "function":
            params = t.get("parameters")
            if params is not None and type(params) is not dict:
                raise _type(f"{path}.parameters", "an object (a JSON Schema)", params)
            if t.get("strict") is not None and type(t["strict"]) is not bool:
                raise _type(f"{path}.strict", "a boolean", t["strict"])
        elif kind == "custom" and t.get("format") is not None:
            fmt = t["format"]
            if type(fmt) is not dict:
                raise _type(f"{path}.format", "an object", fmt)
            _str(fmt, "type", f"{path}.format", required=True)


def _tool_choice(v: object) -> None:
    if type(v) is str:
        if v not in _CHOICES:
            raise _value("tool_choice", "one of " + ", ".join(f"'{c}'" for c in _CHOICES), v)
        return
    if type(v) is not dict:
        raise _type("tool_choice", "a string or an object", v)
    kind = v.get("type")
    if type(kind) is not str:
        raise _type("tool_choice.type", "a string", kind)
    if kind in ("function", "custom"):
        _str(v, "name", "tool_choice", required=True)


def _text(v: object) -> None:
    if type(v) is not dict:
        raise _type("text", "an object", v)
    fmt = v.get("format")
    if fmt is None:
        return
    if type(fmt) is not dict:
        raise _type("text.format", "an object", fmt)
    _one_of(fmt, "type", "text.format", _FORMATS)
    if fmt["type"] == "json_schema":
        _str(fmt, "name", "text.format", required=True)
        if type(fmt.get("schema")) is not dict:
            raise _type("text.format.schema", "an object (a JSON Schema)", fmt.get("schema"))


def _include(v: object) -> None:
    if type(v) is not list:
        raise _type("include", "an array of strings", v)
    for i, s in enumerate(v):
        if type(s) is not str:
            raise _type(f"include[{i}]", "a string", s)


def _scalar(expected: str, ok: Callable[[object], bool]) -> Callable[[str, object], None]:
    def check(key: str, v: object) -> None:
        if not ok(v):
            raise _type(key, expected, v)

    return check


def _number(lo: float, hi: float) -> Callable[[str, object], None]:
    def check(key: str, v: object) -> None:
        if type(v) is not float and type(v) is not int:
            raise _type(key, "a number", v)
        if not lo <= v <= hi:
            raise _value(key, f"a number from {lo:g} to {hi:g}", v)

    return check


def _max_tokens(key: str, v: object) -> None:
    if type(v) is not int:
        raise _type(key, "an integer", v)
    if not 1 <= v <= MAX_TOKENS_LIMIT:
        raise _value(key, f"an integer from 1 to {MAX_TOKENS_LIMIT}", v)


def _previous(key: str, v: object) -> None:
    if type(v) is not str:
        raise _type(key, "a string", v)
    if not 0 < len(v) <= 64:
        raise _value(key, "a response id (1 to 64 characters)", v)
    check_identifier(v, key)


def _wrap(check: Callable[[object], None]) -> Callable[[str, object], None]:
    return lambda _key, v: check(v)


_BOOL = _scalar("a boolean", lambda v: type(v) is bool)
_STRING = _scalar("a string", lambda v: type(v) is str)
_OBJECT = _scalar("an object", lambda v: type(v) is dict)

_FIELDS: dict[str, Callable[[str, object], None]] = {
    "input": _wrap(_input),
    "instructions": _STRING,
    "tools": _wrap(_tools),
    "tool_choice": _wrap(_tool_choice),
    "parallel_tool_calls": _BOOL,
    "stream": _BOOL,
    "store": _BOOL,
    "background": _BOOL,
    "max_output_tokens": _max_tokens,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "reasoning": _OBJECT,
    "include": _wrap(_include),
    "prompt_cache_key": _STRING,
    "text": _wrap(_text),
    "metadata": _OBJECT,
    "previous_response_id": _previous,
    "user": _STRING,
}


def check_responses_body(body: dict[str, Any]) -> None:
    """Refuse a Responses body whose known fields are not of the API's shapes."""
    if body.get("previous_response_id") is None:
        if body.get("input") is None:
            raise _missing("input")
        if body["input"] == []:
            raise _value("input", "a string or a non-empty array of input items", body["input"])
    for key, value in body.items():
        if value is not None:
            check = _FIELDS.get(key)
            if check is not None:
                check(key, value)
