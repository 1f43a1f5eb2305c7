"""The /v1 body rules, case by case: each refusal names the JSON path of the bad value; the reference
shapes and unknown fields are accepted and left untouched. (The property test in
tests/integration/gateway/test_v1_properties.py drives the same rules through the app.)"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from architect.errors import InvalidRequest
from architect.gateway.call import validate_chat, validate_embeddings

USER = {"role": "user", "content": "hi"}


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [USER], **fields}


def _msgs(*messages: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages)}


CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
FN_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}

REFUSED = [
    # what probing sent upstream
    (_msgs({"role": "wizard", "content": "x"}), "messages[0].role", "invalid_value"),
    (_msgs(USER, {"role": "user", "content": {"text": "x"}}), "messages[1].content", "invalid_type"),
    (_msgs({"role": "user", "content": 5}), "messages[0].content", "invalid_type"),
    (_chat(tools=[{"type": "function"}]), "tools[0].function", "missing_required_parameter"),
    (_chat(tools=["get_weather"]), "tools[0]", "invalid_type"),
    (_chat(tool_choice="sometimes"), "tool_choice", "invalid_value"),
    (_chat(response_format=7), "response_format", "invalid_type"),
    (_chat(n=1e9), "n", "invalid_value"),  # an integral number out of range: the range is the news
    (_chat(stop={"at": "."}), "stop", "invalid_type"),
    (_chat(logit_bias="x"), "logit_bias", "invalid_type"),
    (_chat(user=5), "user", "invalid_type"),
    # messages
    (_msgs(), "messages", "invalid_value"),
    ({"model": "m", "messages": "hi"}, "messages", "invalid_type"),
    ({"model": "m"}, "messages", "missing_required_parameter"),
    (_msgs("hi"), "messages[0]", "invalid_type"),
    (_msgs({"content": "x"}), "messages[0].role", "missing_required_parameter"),
    (_msgs({"role": 1, "content": "x"}), "messages[0].role", "invalid_type"),
    (_msgs({"role": ["user"], "content": "x"}), "messages[0].role", "invalid_type"),
    (_msgs({"role": "system"}), "messages[0].content", "missing_required_parameter"),
    (_msgs({"role": "user", "content": []}), "messages[0].content", "invalid_value"),
    (_msgs({"role": "user", "content": "x", "name": 3}), "messages[0].name", "invalid_type"),
    (_msgs({"role": "assistant"}), "messages[0].content", "missing_required_parameter"),
    (
        _msgs({"role": "assistant", "content": None, "tool_calls": []}),
        "messages[0].content",
        "missing_required_parameter",
    ),
    (_msgs({"role": "assistant", "tool_calls": {}}), "messages[0].tool_calls", "invalid_type"),
    (
        _msgs({"role": "assistant", "tool_calls": [{**CALL, "id": 7}]}),
        "messages[0].tool_calls[0].id",
        "invalid_type",
    ),
    (
        _msgs({"role": "assistant", "tool_calls": [{**CALL, "type": "fn"}]}),
        "messages[0].tool_calls[0].type",
        "invalid_value",
    ),
    (
        _msgs({"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}]}),
        "messages[0].tool_calls[0].function.arguments",
        "invalid_type",
    ),
    (
        _msgs({"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "g"}}]}),
        "messages[0].tool_calls[0].custom.input",
        "missing_required_parameter",
    ),
    (
        _msgs({"role": "assistant", "function_call": {"name": "f"}}),
        "messages[0].function_call.arguments",
        "missing_required_parameter",
    ),
    (_msgs({"role": "assistant", "content": "x", "refusal": 1}), "messages[0].refusal", "invalid_type"),
    (_msgs({"role": "tool", "content": "42"}), "messages[0].tool_call_id", "missing_required_parameter"),
    (_msgs({"role": "function", "content": "42"}), "messages[0].name", "missing_required_parameter"),
    (_msgs({"role": "function", "name": "f", "content": ["42"]}), "messages[0].content", "invalid_type"),
    # content parts
    (_msgs({"role": "user", "content": ["x"]}), "messages[0].content[0]", "invalid_type"),
    (
        _msgs({"role": "user", "content": [{"text": "x"}]}),
        "messages[0].content[0].type",
        "missing_required_parameter",
    ),
    (
        _msgs(USER, USER, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "video"}]}),
        "messages[2].content[1].type",
        "invalid_value",
    ),
    (
        _msgs({"role": "user", "content": [{"type": "text", "text": None}]}),
        "messages[0].content[0].text",
        "missing_required_parameter",
    ),
    (
        _msgs({"role": "user", "content": [{"type": "image_url", "image_url": "http://x/a.png"}]}),
        "messages[0].content[0].image_url",
        "invalid_type",
    ),
    (
        _msgs({"role": "user", "content": [{"type": "image_url", "image_url": {"url": 1}}]}),
        "messages[0].content[0].image_url.url",
        "invalid_type",
    ),
    (
        _msgs({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u", "detail": 2}}]}),
        "messages[0].content[0].image_url.detail",
        "invalid_type",
    ),
    (
        _msgs({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA"}}]}),
        "messages[0].content[0].input_audio.format",
        "missing_required_parameter",
    ),
    (
        _msgs({"role": "user", "content": [{"type": "file", "file": {"file_id": 5}}]}),
        "messages[0].content[0].file.file_id",
        "invalid_type",
    ),
    (
        _msgs({"role": "assistant", "content": [{"type": "refusal"}]}),
        "messages[0].content[0].refusal",
        "missing_required_parameter",
    ),
    # tools and tool_choice
    (_chat(tools={"type": "function"}), "tools", "invalid_type"),
    (_chat(tools=[FN_TOOL, {"type": "plugin"}]), "tools[1].type", "invalid_value"),
    (_chat(tools=[{"function": FN_TOOL["function"]}]), "tools[0].type", "missing_required_parameter"),
    (
        _chat(tools=[{"type": "function", "function": {"name": "get weather"}}]),
        "tools[0].function.name",
        "invalid_value",
    ),
    (
        _chat(tools=[{"type": "function", "function": {"name": "x" * 65}}]),
        "tools[0].function.name",
        "invalid_value",
    ),
    (
        _chat(tools=[{"type": "function", "function": {"name": ""}}]),
        "tools[0].function.name",
        "invalid_value",
    ),
    (
        _chat(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
        "tools[0].function.parameters",
        "invalid_type",
    ),
    (
        _chat(tools=[{"type": "function", "function": {"name": "f", "description": 1}}]),
        "tools[0].function.description",
        "invalid_type",
    ),
    (
        _chat(tools=[{"type": "function", "function": {"name": "f", "strict": "yes"}}]),
        "tools[0].function.strict",
        "invalid_type",
    ),
    (_chat(tools=[{"type": "custom", "custom": {}}]), "tools[0].custom.name", "missing_required_parameter"),
    (_chat(tool_choice=1), "tool_choice", "invalid_type"),
    (_chat(tool_choice={"type": "function"}), "tool_choice.function", "missing_required_parameter"),
    (
        _chat(tool_choice={"type": "function", "function": {"name": 1}}),
        "tool_choice.function.name",
        "invalid_type",
    ),
    (_chat(tool_choice={"function": {"name": "f"}}), "tool_choice.type", "missing_required_parameter"),
    (
        _chat(tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "any", "tools": []}}),
        "tool_choice.allowed_tools.mode",
        "invalid_value",
    ),
    (
        _chat(tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [1]}}),
        "tool_choice.allowed_tools.tools[0]",
        "invalid_type",
    ),
    (_chat(parallel_tool_calls="true"), "parallel_tool_calls", "invalid_type"),
    # response_format
    (_chat(response_format={"type": "yaml"}), "response_format.type", "invalid_value"),
    (_chat(response_format={}), "response_format.type", "missing_required_parameter"),
    (
        _chat(response_format={"type": "json_schema"}),
        "response_format.json_schema",
        "missing_required_parameter",
    ),
    (
        _chat(response_format={"type": "json_schema", "json_schema": {"name": "a.b"}}),
        "response_format.json_schema.name",
        "invalid_value",
    ),
    (
        _chat(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": "{}"}}),
        "response_format.json_schema.schema",
        "invalid_type",
    ),
    # numbers and scalars
    (_chat(n=0), "n", "invalid_value"),
    (_chat(n=129), "n", "invalid_value"),
    (_chat(n=True), "n", "invalid_type"),
    (_chat(stop=["a", "b", "c", "d", "e"]), "stop", "invalid_value"),
    (_chat(stop=["a", 1]), "stop[1]", "invalid_type"),
    (_chat(logit_bias={"50256": 101}), "logit_bias.50256", "invalid_value"),
    (_chat(logit_bias={"50256": "-100"}), "logit_bias.50256", "invalid_type"),
    (_chat(temperature=2.5), "temperature", "invalid_value"),
    (_chat(temperature="0.5"), "temperature", "invalid_type"),
    (_chat(top_p=1.01), "top_p", "invalid_value"),
    (_chat(presence_penalty=-2.1), "presence_penalty", "invalid_value"),
    (_chat(frequency_penalty=True), "frequency_penalty", "invalid_type"),
    (_chat(max_tokens=0), "max_tokens", "invalid_value"),
    (_chat(max_tokens=2**31), "max_tokens", "invalid_value"),
    (_chat(max_completion_tokens=1.5), "max_completion_tokens", "invalid_type"),
    (_chat(seed=1.0), "seed", "invalid_type"),
    (_chat(seed=2**63), "seed", "invalid_value"),
    (_chat(seed=float(2**64)), "seed", "invalid_value"),  # JSON 18446744073709551616 parses as a float
    (_chat(stream="yes"), "stream", "invalid_type"),
    (_chat(stream_options=True), "stream_options", "invalid_type"),
    (_chat(stream_options={"include_usage": 1}), "stream_options.include_usage", "invalid_type"),
    (_chat(logprobs=1), "logprobs", "invalid_type"),
    (_chat(top_logprobs=21), "top_logprobs", "invalid_value"),
    (_chat(metadata=["x"]), "metadata", "invalid_type"),
]


@pytest.mark.parametrize(("body", "param", "code"), REFUSED)
def test_bad_values_are_refused_naming_their_json_path(body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as ei:
        validate_chat(body)
    err = ei.value
    assert (err.status, err.param, err.code) == (400, param, code)
    assert set(err.body()["error"]) == {"message", "type", "param", "code"}
    assert err.type == "invalid_request_error" and f"'{param}'" in err.message


def test_an_integral_number_out_of_range_gets_the_range() -> None:
    messages = []
    for seed in (2**63, float(2**64)):
        with pytest.raises(InvalidRequest) as ei:
            validate_chat(_chat(seed=seed))
        messages.append(ei.value.message)
    assert all("expected an integer from -9223372036854775808 to 9223372036854775807" in m for m in messages)


RICH = {
    "model": "m",
    "messages": [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "system", "content": "You help.", "name": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?", "cache_control": {"type": "ephemeral"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
                {"type": "file", "file": {"file_id": "file-1"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "21C"}]},
        {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": None},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}], "refusal": "No."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c2", "type": "custom", "custom": {"name": "g", "input": "x"}}],
        },
        {"role": "user", "content": ""},
    ],
    "tools": [
        FN_TOOL,
        {"type": "function", "function": {"name": "A-b_9" * 12 + "abcd", "strict": None}},
        {"type": "custom", "custom": {"name": "g", "format": {"type": "text"}}},
    ],
    "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [FN_TOOL]}},
    "parallel_tool_calls": False,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {}, "strict": True},
    },
    "n": 128,
    "stop": ["\n", "END", "", "x"],
    "logit_bias": {"50256": -100, "11": 99.5},
    "user": "u-1",
    "temperature": 0,
    "top_p": 1,
    "max_tokens": 2**31 - 1,
    "max_completion_tokens": 1,
    "seed": -(2**63),
    "presence_penalty": -2,
    "frequency_penalty": 2.0,
    "logprobs": True,
    "top_logprobs": 0,
    "stream": True,
    "stream_options": {"include_usage": False, "include_obfuscation": True},
    "metadata": {"project": "shop"},
    # provider extensions pass untouched
    "top_k": "anything",
    "repetition_penalty": [1, 2],
    "reasoning_effort": {"not": "checked"},
}


def test_the_reference_shapes_pass_and_nothing_is_changed() -> None:
    body = copy.deepcopy(RICH)
    validate_chat(body)
    assert body == RICH


@pytest.mark.parametrize(
    "fields",
    [
        {"tool_choice": "none"},
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        {"tool_choice": {"type": "custom", "custom": {"name": "g"}}},
        {"response_format": {"type": "text"}},
        {"response_format": {"type": "json_object"}},
        {"stop": "\n\n"},
        {"stop": []},
        # null stands for an absent optional field
        {k: None for k in ("tools", "tool_choice", "response_format", "n", "stop", "logit_bias", "user")},
        {k: None for k in ("temperature", "max_tokens", "seed", "stream_options", "stream", "logprobs")},
    ],
)
def test_other_accepted_forms(fields: dict[str, Any]) -> None:
    validate_chat(_chat(**fields))


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": ""}, "input", "invalid_value"),
        ({}, "input", "missing_required_parameter"),
        ({"input": {"text": "x"}}, "input", "invalid_type"),
        ({"input": []}, "input", "invalid_value"),
        ({"input": ["a", ""]}, "input[1]", "invalid_value"),
        ({"input": ["a", 1]}, "input[1]", "invalid_type"),
        ({"input": [1, -1]}, "input[1]", "invalid_value"),
        ({"input": [1, "a"]}, "input[1]", "invalid_type"),
        ({"input": [[1, 2], []]}, "input[1]", "invalid_value"),
        ({"input": [[1, 2], [3, "4"]]}, "input[1][1]", "invalid_type"),
        ({"input": [True]}, "input[0]", "invalid_type"),
        ({"input": [1.5]}, "input[0]", "invalid_type"),
        ({"input": "x", "encoding_format": "hex"}, "encoding_format", "invalid_value"),
        ({"input": "x", "encoding_format": 1}, "encoding_format", "invalid_type"),
        ({"input": "x", "dimensions": 0}, "dimensions", "invalid_value"),
        ({"input": "x", "dimensions": "256"}, "dimensions", "invalid_type"),
        ({"input": "x", "user": 5}, "user", "invalid_type"),
    ],
)
def test_embeddings_bodies_are_refused_naming_their_json_path(
    body: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(InvalidRequest) as ei:
        validate_embeddings({"model": "e", **body})
    assert (ei.value.param, ei.value.code) == (param, code)


@pytest.mark.parametrize("inp", ["text", ["a", "b"], [0, 50256], [[1, 2], [3]]])
def test_embeddings_input_shapes(inp: object) -> None:
    validate_embeddings(
        {"model": "e", "input": inp, "encoding_format": "base64", "dimensions": 256, "extra": 1}
    )
