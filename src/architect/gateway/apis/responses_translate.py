"""Translation between OpenAI's Responses API and chat completions, for a `/v1/responses` call
answered by a deployment without the Responses API. Pure functions, no I/O.

What happens to each Responses field with no chat-completions equivalent:

| field | what happens |
|---|---|
| `reasoning` (the configuration) | dropped and recorded |
| `reasoning` items passed back in `input` (also with `encrypted_content`) | dropped and recorded (`input.reasoning`) |
| `include` (e.g. `reasoning.encrypted_content`) | dropped and recorded |
| `prompt_cache_key`, `text.verbosity`, `service_tier`, `truncation`, `client_metadata`, `safety_identifier`, `top_logprobs`, `stream_options` | dropped and recorded |
| built-in tools (`web_search`, `image_generation`, `local_shell`, `file_search`, `code_interpreter`, `computer_use_preview`, `mcp`, `namespace`, `tool_search`, ...) | dropped and recorded (`tools.<type>`); never a 400 that stops an agent |
| `tool_choice` (other than `none`), `parallel_tool_calls` when no tool is left to carry them | dropped and recorded |
| `tool_choice` naming a tool that was dropped | `auto`, recorded (`tool_choice`) |
| `custom` tools' `format` (a grammar) | its grammar is written into the function's description, the constraint itself is dropped and recorded (`tools.custom.format`) |
| items other than messages, function and custom tool calls and their outputs (`web_search_call`, `local_shell_call`, `item_reference`, ...) | dropped and recorded (`input.<type>`) |
| `input_file` parts, other unknown parts | dropped and recorded (`input.<part type>`) |
| any other top-level field the translation does not know | dropped and recorded |
| `background`, `conversation`, `prompt` | refused (400 naming it): they need OpenAI's own state |

Carried over: `input` (a string, or messages with `input_text` / `input_image` / `output_text` /
`refusal` parts, roles `user`, `assistant`, `system`, `developer` (as `system`)), `instructions` (the
first system message), `function_call` / `function_call_output`, `custom_tool_call` /
`custom_tool_call_output` (a `custom` tool becomes a function with one string argument `input`, and
its calls come back as `custom_tool_call`s), `tools` (`function`), `tool_choice`,
`parallel_tool_calls`, `max_output_tokens` (as `max_tokens`), `temperature`, `top_p`, `user`,
`text.format` (`json_schema` / `json_object` as `response_format`), `stream`. `metadata` tags the
call, `store` and `previous_response_id` are the gateway's own (`responses_state`)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from architect.gateway.apis.base import derived_base, refused
from architect.gateway.providers.base import Usage
from architect.gateway.validation import CHAT_NAME_RULE, chat_name_ok

__all__ = [
    "Turn",
    "custom_input",
    "finished",
    "input_items",
    "item_status",
    "output_from_chat",
    "reissue",
    "response_object",
    "responses_usage",
    "to_chat",
    "usage_of",
]

_CARRIED = frozenset(
    (
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "user",
        "text",
        "stream",
        "store",
        "metadata",
        "previous_response_id",
    )
)
_REFUSED = ("background", "conversation", "prompt")
_CUSTOM_PARAMETERS = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "the tool's free-form input"}},
    "required": ["input"],
    "additionalProperties": False,
}
# chat finish_reason -> (status, incomplete reason)
_FINISH = {"length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter")}


class Turn:
    """A `/v1/responses` call's own state (`Call.state`): the response id it answers with, the
    previous response it continues, the names of its `custom` tools (their calls come back as
    `custom_tool_call`s), whether it is kept (`store`), and the final response object once there is
    one (for `responses_state` to keep), with its JSON when the gateway already encoded it
    (`encoded`: the object and its bytes, so the bytes are used only for that very object)."""

    __slots__ = ("custom", "encoded", "previous_id", "prior_size", "response", "response_id", "store")

    def __init__(self, response_id: str, body: dict[str, Any]) -> None:
        self.response_id = response_id
        self.previous_id: str | None = body.get("previous_response_id")
        self.store = body.get("store") is not False
        self.custom: frozenset[str] = frozenset()
        self.prior_size = 0  # bytes of the stored items the call continues
        self.response: dict[str, Any] | None = None
        self.encoded: tuple[dict[str, Any], bytes] | None = None


def input_items(value: object) -> list[dict[str, Any]]:
    """`input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return list(value) if isinstance(value, list) else []


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for p in content if isinstance(content, list) else ():
        if isinstance(p, dict) and isinstance(p.get("text"), str):
            parts.append(p["text"])
    return "\n".join(parts)


def _parts(content: object, where: str, dropped: set[str]) -> str | list[dict[str, Any]]:
    """A message's content as chat content: a string when it is all text."""
    if isinstance(content, str):
        return content
    out: list[dict[str, Any]] = []
    for p in content if isinstance(content, list) else ():
        kind = p.get("type")
        if kind in ("input_text", "output_text", "text"):
            out.append({"type": "text", "text": p["text"]})
        elif kind == "refusal":
            out.append({"type": "text", "text": p["refusal"]})
        elif kind == "input_image":
            if p.get("image_url") is None:
                raise refused(f"{where}: images by file_id cannot go to this deployment", where)
            image: dict[str, Any] = {"url": p["image_url"]}
            if p.get("detail") in ("low", "high", "auto"):
                image["detail"] = p["detail"]
            out.append({"type": "image_url", "image_url": image})
        else:
            dropped.add(f"input.{kind}")
    if all(p["type"] == "text" for p in out):
        return "\n\n".join(p["text"] for p in out)
    return out


def _output_text(item: dict[str, Any]) -> str:
    out = item.get("output")
    return out if isinstance(out, str) else _text_of(out)


def _messages(
    items: list[dict[str, Any]], instructions: str | None, dropped: set[str]
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system: list[str] = [instructions] if instructions else []
    leading = True  # system/developer messages before any other item join the first system message
    for i, item in enumerate(items):
        kind = item.get("type") or ("message" if "role" in item else None)
        where = f"input[{i}]"
        if kind == "message":
            role = item["role"]
            if role in ("system", "developer"):
                text = _text_of(item["content"])
                if leading:
                    system.append(text)
                else:
                    messages.append({"role": "system", "content": text})
                continue
            leading = False
            content = _parts(item["content"], f"{where}.content", dropped)
            if role == "assistant":
                text = content if isinstance(content, str) else _text_of(content)
                last = messages[-1] if messages else None
                if last is not None and last["role"] == "assistant" and not last.get("tool_calls"):
                    last["content"] = (last["content"] or "") + text
                else:
                    messages.append({"role": "assistant", "content": text})
            else:
                messages.append({"role": "user", "content": content})
            continue
        leading = False
        if kind in ("function_call", "custom_tool_call"):
            if kind == "function_call":
                args = item["arguments"]
            else:
                args = orjson.dumps({"input": item["input"]}).decode()
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": args},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
                if not last["content"]:
                    last["content"] = None
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": _output_text(item)})
        else:
            dropped.add(f"input.{kind}")
    if system:
        messages.insert(0, {"role": "system", "content": "\n\n".join(system)})
    return messages


def _tools(tools: list[dict[str, Any]], dropped: set[str]) -> tuple[list[dict[str, Any]], frozenset[str]]:
    out: list[dict[str, Any]] = []
    custom: set[str] = set()
    for i, t in enumerate(tools):
        kind = t["type"]
        if kind in ("function", "custom") and not chat_name_ok(t["name"]):
            raise refused(
                f"tools[{i}].name: this deployment takes {CHAT_NAME_RULE}, got {t['name']!r}",
                f"tools[{i}].name",
            )
        if kind == "function":
            fn: dict[str, Any] = {"name": t["name"]}
            if t.get("description"):
                fn["description"] = t["description"]
            fn["parameters"] = t.get("parameters") or {"type": "object", "properties": {}}
            if t.get("strict") is not None:
                fn["strict"] = t["strict"]
            out.append({"type": "function", "function": fn})
        elif kind == "custom":
            custom.add(t["name"])
            description = t.get("description") or ""
            fmt = t.get("format")
            if isinstance(fmt, dict) and fmt.get("type") == "grammar":
                dropped.add("tools.custom.format")
                description += (
                    f"\n\nPut the whole input in the `input` string. It must match this "
                    f"{fmt.get('syntax') or ''} grammar:\n{fmt.get('definition') or ''}"
                )
            fn = {"name": t["name"], "description": description.strip(), "parameters": _CUSTOM_PARAMETERS}
            out.append({"type": "function", "function": fn})
        else:
            dropped.add(f"tools.{kind}")
    return out, frozenset(custom)


def _tool_choice(choice: object, names: set[str], dropped: set[str]) -> object:
    if isinstance(choice, str):
        return choice
    assert isinstance(choice, dict)
    kind = choice.get("type")
    if kind in ("function", "custom") and choice.get("name") in names:
        return {"type": "function", "function": {"name": choice["name"]}}
    dropped.add("tool_choice")
    return "auto"


def to_chat(body: dict[str, Any]) -> tuple[dict[str, Any], list[str], frozenset[str]]:
    """A checked Responses body as a chat completion body, the fields it dropped (sorted) and the
    names of its custom tools."""
    for key in _REFUSED:
        if body.get(key) not in (None, False):
            raise refused(
                f"{key}: this deployment cannot take '{key}' (it needs OpenAI's Responses API)", key
            )
    dropped: set[str] = {k for k, v in body.items() if k not in _CARRIED and v is not None}
    if body.get("reasoning"):
        dropped.add("reasoning")
    if body.get("include"):
        dropped.add("include")
    value, instructions = body.get("input"), body.get("instructions")
    if isinstance(value, str):  # one user message (what `_messages` makes of it, without the items)
        messages = [{"role": "user", "content": value}]
        if instructions:
            messages.insert(0, {"role": "system", "content": instructions})
    else:
        messages = _messages(input_items(value), instructions, dropped)
        if not messages:
            raise refused(
                "input: none of its items can go to this deployment (they are dropped), so there is "
                "no message to send",
                "input",
            )
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    custom: frozenset[str] = frozenset()
    tools = body.get("tools")
    if tools:
        chat_tools, custom = _tools(tools, dropped)
        if chat_tools:
            chat["tools"] = chat_tools
            names = {t["function"]["name"] for t in chat_tools}
            if body.get("tool_choice") is not None:
                chat["tool_choice"] = _tool_choice(body["tool_choice"], names, dropped)
            if body.get("parallel_tool_calls") is not None:
                chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    if "tools" not in chat:  # no tool left to carry them: `none` is kept, anything else is recorded
        if body.get("tool_choice") == "none":
            chat["tool_choice"] = "none"
        elif body.get("tool_choice") is not None:
            dropped.add("tool_choice")
        if body.get("parallel_tool_calls") is not None:
            dropped.add("parallel_tool_calls")
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    for key in ("temperature", "top_p", "user"):
        if body.get(key) is not None:
            chat[key] = body[key]
    text = body.get("text")
    if isinstance(text, dict):
        if any(k != "format" for k in text):
            dropped.add("text.verbosity" if set(text) - {"format"} == {"verbosity"} else "text")
        fmt = text.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = {
                k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None
            }
            chat["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
            chat["response_format"] = {"type": "json_object"}
    if body.get("stream"):
        chat["stream"] = True
    return chat, sorted(dropped), custom


# -- back: chat completions -> Responses -----------------------------------------------------------
def custom_input(arguments: object) -> str:
    """A custom tool's input from the arguments of the function it was translated to (`{"input": s}`);
    arguments that are not of that form are passed on as they are."""
    if not isinstance(arguments, str):
        return ""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return str(value["input"])
    return arguments


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": [part]}


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": text}]}


def tool_item(
    item_id: str,
    call_id: str,
    name: str,
    arguments: str,
    custom: frozenset[str],
    status: str = "completed",
) -> dict[str, Any]:
    if name in custom:
        return {
            "type": "custom_tool_call",
            "id": item_id,
            "status": status,
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments),
        }
    return {
        "type": "function_call",
        "id": item_id,
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def output_from_chat(
    obj: dict[str, Any], response_id: str, custom: frozenset[str]
) -> tuple[list[dict[str, Any]], str | None]:
    """A chat completion's first choice as Responses output items, and its finish reason. An answer
    that is cut (`incomplete`: at the token limit or by a content filter) has its last item, the one
    being written when it was cut, `incomplete` (a reasoning item has no status)."""
    choices = obj.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    base = response_id.removeprefix("resp_")
    out: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        out.append(reasoning_item(f"rs_{base}", reasoning))
    text = msg.get("content")
    if isinstance(text, str) and text:
        out.append(message_item(f"msg_{base}", text))
    for i, tc in enumerate(msg.get("tool_calls") or ()):
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        call_id = tc.get("id") or f"call_{base}_{i}"
        name = str(fn.get("name") or "")
        kind = "ctc" if name in custom else "fc"
        out.append(
            tool_item(f"{kind}_{base}_{i}", call_id, name, args if isinstance(args, str) else "", custom)
        )
    finish = choice.get("finish_reason")
    if out and "status" in out[-1] and item_status(finish) == "incomplete":
        out[-1]["status"] = "incomplete"
    return out, str(finish) if finish else None


def responses_usage(u: Usage | None) -> dict[str, Any]:
    """Usage as the Responses API reports it."""
    u = u or Usage()
    details = {"cached_tokens": u.cached_tokens}
    if u.cache_write_tokens:
        details["cache_write_tokens"] = u.cache_write_tokens
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": details,
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }


def usage_of(obj: object) -> Usage | None:
    """A Responses `usage` object as a `Usage`."""
    if not isinstance(obj, dict):
        return None
    details = obj.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(
        prompt_tokens=int(obj.get("input_tokens") or 0),
        completion_tokens=int(obj.get("output_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


def response_object(
    body: dict[str, Any],
    turn: Turn,
    model: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    finish: str | None,
    *,
    created_at: int | None = None,
) -> dict[str, Any]:
    """The Responses `response` object of a call: its request's parameters echoed, its output, its
    status (`completed`, or `incomplete` with the reason, or `in_progress` while `finish` is
    "in_progress") and its usage."""
    status, incomplete = _status(finish)
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    return {
        "id": turn.response_id,
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": turn.previous_id,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": turn.store,
        "temperature": body.get("temperature"),
        "text": {"format": {"type": "text"}, **(text or {})},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "truncation": "disabled",
        "usage": responses_usage(usage) if status != "in_progress" else None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def reissue(response: dict[str, Any], turn: Turn, body: dict[str, Any]) -> None:
    """Make another call's response (a cached or coalesced answer, parsed from its JSON) `turn`'s own,
    in place: its id (`turn.response_id`), the ids of its output items and tool calls the gateway made
    from the previous id (`msg_<base>`, `fc_<base>_0`, `call_<base>_0`, ...; a native deployment's
    own item ids are kept: they are the provider's), its creation time, and the request fields it
    echoes that are not part of the cache key (`previous_response_id`, `store`, `metadata`, `user`)."""
    bases = derived_base(response.get("id"), turn.response_id, "resp_")
    response["id"] = turn.response_id
    if bases is not None:
        old, new = bases
        for item in response.get("output") or ():
            if not isinstance(item, dict):
                continue
            for field in ("id", "call_id"):
                value = item.get(field)
                if isinstance(value, str) and old in value:
                    item[field] = value.replace(old, new)
    response["created_at"] = int(time.time())
    response["previous_response_id"] = turn.previous_id
    response["store"] = turn.store
    response["metadata"] = body.get("metadata") or {}
    if "user" in response or "user" in body:
        response["user"] = body.get("user")


def item_status(finish: object) -> str:
    """The status of the item a chat answer ended on, for its finish reason: `incomplete` when the
    answer was cut, else `completed`."""
    return _FINISH.get(str(finish), ("completed", None))[0]


def _status(finish: str | None) -> tuple[str, dict[str, str] | None]:
    """A response's status and `incomplete_details` for a chat finish reason."""
    if finish == "in_progress":
        return "in_progress", None
    status, reason = _FINISH.get(str(finish), ("completed", None))
    return status, {"reason": reason} if reason else None


def finished(
    started: dict[str, Any], output: list[dict[str, Any]], usage: Usage | None, finish: str | None
) -> dict[str, Any]:
    """The response `started` (a `response_object` in progress, as a stream's first events sent it)
    once finished: the same object with its output, status and usage (keys in the same order)."""
    status, incomplete = _status(finish)
    response = dict(started)
    response["status"] = status
    response["incomplete_details"] = incomplete
    response["output"] = output
    response["usage"] = responses_usage(usage) if status != "in_progress" else None
    return response
