"""The shapes of `/v1` request bodies, checked at the edge before anything goes upstream.

Fields the gateway knows are checked against the OpenAI API reference (chat completions, embeddings);
every other field passes through untouched, since providers have their own extensions. `null` stands for
an absent optional field. A bad value is refused with an `InvalidRequest` (400, OpenAI error format)
whose `param` is the JSON path of that value (`messages[2].content[0].type`, `tools[0].function.name`)
and whose `code` is `missing_required_parameter`, `invalid_type` or `invalid_value`.

This runs on every request: one pass over the body with exact type tests (orjson yields plain dict, list,
str, int, float and bool), allocating nothing unless a value is refused. A refusal travels up as a
private exception whose path each level prefixes, so paths and messages are only built then."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from architect.errors import InvalidRequest

__all__ = [
    "CHAT_NAME_RULE",
    "MAX_TOKENS_LIMIT",
    "PART_TYPES",
    "ROLES",
    "chat_name_ok",
    "check_chat_body",
    "check_embeddings_body",
]

# Function and json_schema names: 1 to 64 letters, digits, underscores and dashes (OpenAI's rule,
# ^[a-zA-Z0-9_-]{1,64}$). A search for a character outside the set finds nothing in a good name, and so
# allocates nothing.
_NAME_BAD_CHAR = re.compile(r"[^a-zA-Z0-9_-]").search
CHAT_NAME_RULE = "1 to 64 letters, digits, underscores or dashes"
# The largest max_tokens / max_completion_tokens / dimensions taken (a signed 32-bit integer).
MAX_TOKENS_LIMIT = 2**31 - 1
_INT64 = 2**63

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")
_TOOL_TYPES = ("function", "custom")
_CHOICES = ("none", "auto", "required")
_CHOICE_TYPES = ("function", "custom", "allowed_tools")
_FORMATS = ("text", "json_object", "json_schema")
_ENCODINGS = ("float", "base64")

_MISSING, _TYPE, _VALUE = "missing_required_parameter", "invalid_type", "invalid_value"


class _Refused(Exception):
    """A refused value: `path` relative to the level that raised it (`.text`, `[2]`, or empty for the
    value itself); each enclosing level prefixes its own part."""

    def __init__(self, path: str, code: str, expected: str = "", value: object = None) -> None:
        super().__init__(path)
        self.path, self.code, self.expected, self.value = path, code, expected, value

    def under(self, prefix: str) -> _Refused:
        self.path = prefix + self.path
        return self

    def error(self) -> InvalidRequest:
        param = self.path.lstrip(".")
        if self.code == _MISSING:
            message = f"Missing required parameter: '{param}'."
        elif self.code == _TYPE:
            message = f"Invalid type for '{param}': expected {self.expected}, but got {_kind(self.value)}."
        else:
            message = f"Invalid value for '{param}': expected {self.expected}, but got {_show(self.value)}."
        return InvalidRequest(message, param=param, code=self.code)


def _kind(value: object) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    kinds.update({list: "an array", dict: "an object", type(None): "null"})
    return kinds.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    text = repr(value[:41]) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_of(path: str, allowed: tuple[str, ...], value: object) -> _Refused:
    if value is None:
        return _Refused(path, _MISSING)
    if type(value) is not str:
        return _Refused(path, _TYPE, "a string", value)
    return _Refused(path, _VALUE, "one of " + ", ".join(f"'{a}'" for a in allowed), value)


# -- small checks ------------------------------------------------------------------------------------
def _string(obj: dict[str, Any], key: str, required: bool = False) -> None:
    v = obj.get(key)
    if type(v) is not str and (v is not None or required):
        raise _Refused(f".{key}", _MISSING) if v is None else _Refused(f".{key}", _TYPE, "a string", v)


def _flag(obj: dict[str, Any], key: str) -> None:
    v = obj.get(key)
    if v is not None and type(v) is not bool:
        raise _Refused(f".{key}", _TYPE, "a boolean", v)


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """`obj[key]`, which must be an object."""
    v = obj.get(key)
    if type(v) is not dict:
        raise _Refused(f".{key}", _MISSING) if v is None else _Refused(f".{key}", _TYPE, "an object", v)
    return v


def _schema(obj: dict[str, Any], key: str) -> None:
    v = obj.get(key)
    if v is not None and type(v) is not dict:
        raise _Refused(f".{key}", _TYPE, "an object (a JSON Schema)", v)


def _name(obj: dict[str, Any]) -> None:
    v = obj.get("name")
    if type(v) is not str:
        raise _Refused(".name", _MISSING) if v is None else _Refused(".name", _TYPE, "a string", v)
    if not chat_name_ok(v):
        raise _Refused(".name", _VALUE, CHAT_NAME_RULE, v)


def chat_name_ok(name: str) -> bool:
    """Whether a chat completions deployment takes `name` as a function's name."""
    return 0 < len(name) <= 64 and _NAME_BAD_CHAR(name) is None


# -- messages ----------------------------------------------------------------------------------------
def _part(p: object) -> None:
    if type(p) is not dict:
        raise _Refused("", _TYPE, "an object", p)
    kind = p.get("type")
    if kind == "text":
        _string(p, "text", required=True)
    elif kind == "image_url":
        spec = _object(p, "image_url")
        try:
            _string(spec, "url", required=True)
            _string(spec, "detail")
        except _Refused as r:
            raise r.under(".image_url") from None
    elif kind == "input_audio":
        spec = _object(p, "input_audio")
        try:
            _string(spec, "data", required=True)
            _string(spec, "format", required=True)
        except _Refused as r:
            raise r.under(".input_audio") from None
    elif kind == "file":
        spec = _object(p, "file")
        try:
            _string(spec, "file_data")
            _string(spec, "file_id")
            _string(spec, "filename")
        except _Refused as r:
            raise r.under(".file") from None
    elif kind == "refusal":
        _string(p, "refusal", required=True)
    else:
        raise _one_of(".type", PART_TYPES, kind)


def _content(content: object) -> None:
    """A message's content: a string or a non-empty array of content parts (None is refused)."""
    if type(content) is str:
        return
    if type(content) is list:
        if not content:
            raise _Refused(".content", _VALUE, "a string or a non-empty array of parts", content)
        for j, p in enumerate(content):
            try:
                _part(p)
            except _Refused as r:
                raise r.under(f".content[{j}]") from None
        return
    if content is None:
        raise _Refused(".content", _MISSING)
    raise _Refused(".content", _TYPE, "a string or an array of content parts", content)


def _tool_call(tc: object) -> None:
    if type(tc) is not dict:
        raise _Refused("", _TYPE, "an object", tc)
    _string(tc, "id", required=True)
    kind = tc.get("type")
    if kind == "function" or kind == "custom":
        call = _object(tc, kind)
        try:
            _string(call, "name", required=True)
            _string(call, "arguments" if kind == "function" else "input", required=True)
        except _Refused as r:
            raise r.under(f".{kind}") from None
    else:
        raise _one_of(".type", _TOOL_TYPES, kind)


def _assistant(m: dict[str, Any]) -> None:
    calls = m.get("tool_calls")
    if calls is not None:
        if type(calls) is not list:
            raise _Refused(".tool_calls", _TYPE, "an array", calls)
        for k, tc in enumerate(calls):
            try:
                _tool_call(tc)
            except _Refused as r:
                raise r.under(f".tool_calls[{k}]") from None
    fc = m.get("function_call")
    if fc is not None:
        fc = _object(m, "function_call")
        try:
            _string(fc, "name", required=True)
            _string(fc, "arguments", required=True)
        except _Refused as r:
            raise r.under(".function_call") from None
    _string(m, "refusal")
    content = m.get("content")
    if content is not None or not (calls or fc is not None):  # null only beside tool or function calls
        _content(content)


_TEXT_ROLES = frozenset(("user", "system", "developer"))


def _message(m: object) -> None:
    if type(m) is not dict:
        raise _Refused("", _TYPE, "an object", m)
    role = m.get("role")
    content = m.get("content")
    name = m.get("name")
    if name is not None and type(name) is not str:
        raise _Refused(".name", _TYPE, "a string", name)
    if type(role) is not str:
        raise _one_of(".role", ROLES, role)
    if role in _TEXT_ROLES:
        if type(content) is not str:
            _content(content)
    elif role == "assistant":
        _assistant(m)
    elif role == "tool":
        if type(content) is not str:
            _content(content)
        _string(m, "tool_call_id", required=True)
    elif role == "function":
        _string(m, "content")
        _string(m, "name", required=True)
    else:
        raise _one_of(".role", ROLES, role)


# -- top-level chat fields (each raises paths relative to its own value) ---------------------------------
def _function(fn: dict[str, Any]) -> None:
    _name(fn)
    _string(fn, "description")
    _schema(fn, "parameters")
    _flag(fn, "strict")


def _tool(t: object) -> None:
    if type(t) is not dict:
        raise _Refused("", _TYPE, "an object", t)
    kind = t.get("type")
    if kind == "function":
        fn = t.get("function")
        if type(fn) is not dict:
            fn = _object(t, "function")
        name, desc, params, strict = (
            fn.get("name"),
            fn.get("description"),
            fn.get("parameters"),
            fn.get("strict"),
        )
        if (
            type(name) is not str
            or not 0 < len(name) <= 64
            or _NAME_BAD_CHAR(name) is not None
            or (desc is not None and type(desc) is not str)
            or (params is not None and type(params) is not dict)
            or (strict is not None and type(strict) is not bool)
        ):
            try:
                _function(fn)
            except _Refused as r:
                raise r.under(".function") from None
    elif kind == "custom":
        custom = _object(t, "custom")
        try:
            _string(custom, "name", required=True)
            _string(custom, "description")
            _schema(custom, "format")
        except _Refused as r:
            raise r.under(".custom") from None
    else:
        raise _one_of(".type", _TOOL_TYPES, kind)


def _each(items: list[Any], check: Callable[[object], None]) -> None:
    """Check every element of an array; a refusal names the element's index."""
    for i, item in enumerate(items):
        try:
            check(item)
        except _Refused as r:
            raise r.under(f"[{i}]") from None


def _tools(tools: object) -> None:
    if type(tools) is not list:
        raise _Refused("", _TYPE, "an array of tools", tools)
    _each(tools, _tool)


def _tool_choice(choice: object) -> None:
    if type(choice) is str:
        if choice not in _CHOICES:
            raise _one_of("", _CHOICES, choice)
        return
    if type(choice) is not dict:
        raise _Refused("", _TYPE, "a string or an object", choice)
    kind = choice.get("type")
    if kind == "function" or kind == "custom":
        named = _object(choice, kind)
        try:
            _string(named, "name", required=True)
        except _Refused as r:
            raise r.under(f".{kind}") from None
    elif kind == "allowed_tools":
        allowed = _object(choice, "allowed_tools")
        mode = allowed.get("mode")
        if mode != "auto" and mode != "required":
            raise _one_of(".allowed_tools.mode", ("auto", "required"), mode)
        tools = allowed.get("tools")
        if type(tools) is not list:
            if tools is None:
                raise _Refused(".allowed_tools.tools", _MISSING)
            raise _Refused(".allowed_tools.tools", _TYPE, "an array", tools)
        for k, t in enumerate(tools):
            if type(t) is not dict:
                raise _Refused(f".allowed_tools.tools[{k}]", _TYPE, "an object", t)
    else:
        raise _one_of(".type", _CHOICE_TYPES, kind)


def _response_format(rf: object) -> None:
    if type(rf) is not dict:
        raise _Refused("", _TYPE, "an object", rf)
    kind = rf.get("type")
    if kind == "json_schema":
        spec = _object(rf, "json_schema")
        try:
            _name(spec)
            _string(spec, "description")
            _schema(spec, "schema")
            _flag(spec, "strict")
        except _Refused as r:
            raise r.under(".json_schema") from None
    elif kind != "text" and kind != "json_object":
        raise _one_of(".type", _FORMATS, kind)


def _stop(stop: object) -> None:
    if type(stop) is str:
        return
    if type(stop) is not list:
        raise _Refused("", _TYPE, "a string or an array of strings", stop)
    if len(stop) > 4:
        raise _Refused("", _VALUE, "at most 4 sequences", len(stop))
    for k, s in enumerate(stop):
        if type(s) is not str:
            raise _Refused(f"[{k}]", _TYPE, "a string", s)


def _logit_bias(bias: object) -> None:
    if type(bias) is not dict:
        raise _Refused("", _TYPE, "an object mapping token ids to numbers", bias)
    for key, v in bias.items():
        if type(v) is not int and type(v) is not float:
            raise _Refused(f".{key[:40]}", _TYPE, "a number from -100 to 100", v)
        if not -100 <= v <= 100:
            raise _Refused(f".{key[:40]}", _VALUE, "a number from -100 to 100", v)


def _stream_options(so: object) -> None:
    if type(so) is not dict:
        raise _Refused("", _TYPE, "an object", so)
    _flag(so, "include_usage")
    _flag(so, "include_obfuscation")


def _boolean(v: object) -> None:
    if type(v) is not bool:
        raise _Refused("", _TYPE, "a boolean", v)


def _text(v: object) -> None:
    if type(v) is not str:
        raise _Refused("", _TYPE, "a string", v)


def _metadata(v: object) -> None:
    if type(v) is not dict:
        raise _Refused("", _TYPE, "an object", v)


def _integer(lo: int, hi: int) -> Callable[[object], None]:
    """An integer from `lo` to `hi`; an integral number out of that range (JSON integers beyond 64 bits
    parse as floats) is refused for its range, not its type."""

    def check(v: object) -> None:
        if type(v) is not int:
            if type(v) is float and v.is_integer() and not lo <= v <= hi:
                raise _Refused("", _VALUE, f"an integer from {lo} to {hi}", v)
            raise _Refused("", _TYPE, "an integer", v)
        if not lo <= v <= hi:
            raise _Refused("", _VALUE, f"an integer from {lo} to {hi}", v)

    return check


def _number(lo: float, hi: float) -> Callable[[object], None]:
    def check(v: object) -> None:
        if type(v) is not float and type(v) is not int:
            raise _Refused("", _TYPE, "a number", v)
        if not lo <= v <= hi:
            raise _Refused("", _VALUE, f"a number from {lo:g} to {hi:g}", v)

    return check


# The chat fields the gateway checks (a null value counts as absent); `messages` is checked first.
_CHAT_FIELDS: dict[str, Callable[[object], None]] = {
    "stream": _boolean,
    "stream_options": _stream_options,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _boolean,
    "response_format": _response_format,
    "n": _integer(1, 128),
    "stop": _stop,
    "logit_bias": _logit_bias,
    "user": _text,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_tokens": _integer(1, MAX_TOKENS_LIMIT),
    "max_completion_tokens": _integer(1, MAX_TOKENS_LIMIT),
    "seed": _integer(-_INT64, _INT64 - 1),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "logprobs": _boolean,
    "top_logprobs": _integer(0, 20),
    "metadata": _metadata,
}


def _fields(body: dict[str, Any], checks: dict[str, Callable[[object], None]]) -> None:
    for key, value in body.items():
        if value is not None:
            check = checks.get(key)
            if check is not None:
                try:
                    check(value)
                except _Refused as r:
                    raise r.under(key).error() from None


def check_chat_body(body: dict[str, Any]) -> None:
    """Refuse a chat completion body whose messages or known fields do not have the reference shapes
    (`model` is the caller's)."""
    messages = body.get("messages")
    if type(messages) is not list or not messages:
        if messages is None:
            raise _Refused("messages", _MISSING).error()
        if type(messages) is not list:
            raise _Refused("messages", _TYPE, "an array of messages", messages).error()
        raise _Refused("messages", _VALUE, "a non-empty array", messages).error()
    for i, m in enumerate(messages):
        try:
            _message(m)
        except _Refused as r:
            raise r.under(f"messages[{i}]").error() from None
    _fields(body, _CHAT_FIELDS)


# -- embeddings ------------------------------------------------------------------------------------
def _token(t: object) -> None:
    if type(t) is not int:
        raise _Refused("", _TYPE, "a token id (an integer)", t)
    if t < 0:
        raise _Refused("", _VALUE, "a token id (an integer >= 0)", t)


def _tokens(seq: object) -> None:
    if type(seq) is not list:
        raise _Refused("", _TYPE, "an array of token ids (like input[0])", seq)
    if not seq:
        raise _Refused("", _VALUE, "a non-empty array of token ids", seq)
    _each(seq, _token)


def _one_text(s: object) -> None:
    if type(s) is not str:
        raise _Refused("", _TYPE, "a string (like input[0])", s)
    if not s:
        raise _Refused("", _VALUE, "a non-empty string", s)


def _input(inp: object) -> None:
    """A non-empty string, or a non-empty array of non-empty strings, of token ids, or of non-empty
    arrays of token ids (one kind per array)."""
    if type(inp) is str:
        if not inp:
            raise _Refused("", _VALUE, "a non-empty string", inp)
        return
    if type(inp) is not list:
        if inp is None:
            raise _Refused("", _MISSING)
        raise _Refused("", _TYPE, "a string or an array", inp)
    if not inp:
        raise _Refused("", _VALUE, "a non-empty array", inp)
    first = inp[0]
    if type(first) is str:
        each: Callable[[object], None] = _one_text
    elif type(first) is int:
        each = _token
    elif type(first) is list:
        each = _tokens
    else:
        raise _Refused("[0]", _TYPE, "a string, a token id or an array of token ids", first)
    _each(inp, each)


def _encoding_format(v: object) -> None:
    if v != "float" and v != "base64":
        raise _one_of("", _ENCODINGS, v)


_EMBEDDINGS_FIELDS: dict[str, Callable[[object], None]] = {
    "encoding_format": _encoding_format,
    "dimensions": _integer(1, MAX_TOKENS_LIMIT),
    "user": _text,
    "metadata": _metadata,
}


def check_embeddings_body(body: dict[str, Any]) -> None:
    """Refuse an embeddings body whose `input` or known fields do not have the reference shapes (`model`
    is the caller's)."""
    try:
        _input(body.get("input"))
    except _Refused as r:
        raise r.under("input").error() from None
    _fields(body, _EMBEDDINGS_FIELDS)
