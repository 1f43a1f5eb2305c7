"""`/v1/responses` edge validation and translation as properties (Hypothesis): a valid body (drawn from
the Responses shapes: string or item input, every role and part, function and custom tools and calls,
reasoning items, built-in tools) passes the edge and translates to a chat body without error; the same
body with one field broken is refused with an `InvalidRequest` whose `param` names that field, never
another exception."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from architect.errors import InvalidRequest, UpstreamRefused
from architect.gateway.apis.responses_state import _input_json
from architect.gateway.apis.responses_translate import input_items, to_chat
from architect.gateway.apis.responses_validation import check_responses_body

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=6)
NAME = st.from_regex(r"[a-zA-Z0-9_-]{1,20}", fullmatch=True)
PART = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["input_text", "output_text"]), "text": TEXT}),
    st.fixed_dictionaries({"type": st.just("input_image"), "image_url": st.just("data:image/png;base64,AA")}),
)
MESSAGE = st.fixed_dictionaries(
    {
        "type": st.just("message"),
        "role": st.sampled_from(["user", "assistant", "system", "developer"]),
        "content": st.one_of(TEXT, st.lists(PART, max_size=3)),
    }
)
ITEM = st.one_of(
    MESSAGE,
    st.fixed_dictionaries(
        {"type": st.just("function_call"), "call_id": NAME, "name": NAME, "arguments": st.just("{}")}
    ),
    st.fixed_dictionaries(
        {"type": st.just("custom_tool_call"), "call_id": NAME, "name": NAME, "input": TEXT}
    ),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["function_call_output", "custom_tool_call_output"]),
            "call_id": NAME,
            "output": TEXT,
        }
    ),
    st.fixed_dictionaries({"type": st.just("reasoning"), "summary": st.just([]), "encrypted_content": TEXT}),
)
TOOL = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("function"), "name": NAME}, optional={"parameters": st.just({"type": "object"})}
    ),
    st.fixed_dictionaries(
        {"type": st.just("custom"), "name": NAME},
        optional={"format": st.just({"type": "grammar", "syntax": "lark", "definition": "s"})},
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["web_search", "local_shell", "image_generation"])}),
)
BODY = st.fixed_dictionaries(
    {"model": NAME, "input": st.one_of(TEXT, st.lists(ITEM, min_size=1, max_size=5))},
    optional={
        "instructions": TEXT,
        "tools": st.lists(TOOL, max_size=3),
        "stream": st.booleans(),
        "store": st.booleans(),
        "max_output_tokens": st.integers(1, 10_000),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "reasoning": st.just({"effort": "low"}),
        "include": st.just(["reasoning.encrypted_content"]),
        "prompt_cache_key": TEXT,
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "parallel_tool_calls": st.booleans(),
    },
)

# (field path, a value that breaks it) — applied to a valid body
BREAKS: list[tuple[str, Any]] = [
    ("input", 7),
    ("instructions", 1),
    ("tools", {}),
    ("stream", "yes"),
    ("store", 0),
    ("max_output_tokens", 0),
    ("temperature", 2.5),
    ("top_p", -1),
    ("tool_choice", "maybe"),
    ("include", [1]),
    ("text", {"format": {"type": "yaml"}}),
    ("previous_response_id", ""),
]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(BODY)
def test_valid_bodies_pass_and_translate(body: dict[str, Any]) -> None:
    check_responses_body(body)
    try:
        chat, dropped, _ = to_chat(body)
    except UpstreamRefused as exc:  # only when no item could be sent and no instructions either
        assert exc.param == "input" and not body.get("instructions")
        assert all(item["type"] == "reasoning" for item in body["input"])
        return
    assert chat["model"] == body["model"] and chat["messages"]
    assert dropped == sorted(set(dropped))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(BODY, st.sampled_from(BREAKS))
def test_one_broken_field_is_refused_by_name(body: dict[str, Any], broken: tuple[str, Any]) -> None:
    key, value = broken
    try:
        check_responses_body({**body, key: value})
    except InvalidRequest as exc:
        assert exc.param is not None and exc.param.split(".")[0].split("[")[0] == key
        assert exc.status == 400
    else:
        raise AssertionError(f"{key}={value!r} passed")


@settings(max_examples=100, deadline=None, derandomize=True)
@given(BODY, st.integers(0, 4), st.sampled_from(["role", "call_id", "content", "type"]))
def test_broken_item_names_its_path(body: dict[str, Any], i: int, field: str) -> None:
    items = body["input"] if isinstance(body["input"], list) else []
    if not items:
        return
    i %= len(items)
    item = dict(items[i])
    if field not in item:
        return
    item[field] = 5
    try:
        check_responses_body({**body, "input": [*items[:i], item, *items[i + 1 :]]})
    except InvalidRequest as exc:
        assert exc.param is not None and exc.param.startswith(f"input[{i}]")
    else:
        raise AssertionError(f"input[{i}].{field}=5 passed")


@given(st.one_of(st.text(), st.lists(ITEM, max_size=4), st.none(), st.integers()))
@settings(max_examples=300, deadline=None)
def test_the_stored_input_is_the_items_json_whatever_the_input(value: Any) -> None:
    try:
        expected = orjson.dumps(input_items(value))
    except orjson.JSONEncodeError:  # a lone surrogate: neither can encode it
        return
    assert _input_json(value) == expected
