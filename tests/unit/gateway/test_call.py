from __future__ import annotations

import pytest

from architect.errors import InvalidRequest
from architect.gateway.call import parse_body, parse_tags, validate_chat, validate_embeddings


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "metadata": "x"}, "metadata"),
    ],
)
def test_invalid_chat_bodies_name_the_field(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_chat(body)
    assert exc.value.param == param
    assert exc.value.status == 400


def test_body_must_be_a_json_object() -> None:
    for raw in (b"", b"{nope", b"[1]"):
        with pytest.raises(InvalidRequest):
            parse_body(raw)


def test_embeddings_input_required() -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_embeddings({"model": "e", "input": ""})
    assert exc.value.param == "input"
    validate_embeddings({"model": "e", "input": ["a", "b"]})


def test_tags_from_header_and_metadata() -> None:
    tags = parse_tags(
        "project=shop, feature=checkout,task=T004",
        {"task": "T999", "team": "core", "n": 3, "nested": {"x": 1}},
    )
    assert tags == {"project": "shop", "feature": "checkout", "task": "T004", "team": "core", "n": "3"}
    with pytest.raises(InvalidRequest) as exc:
        parse_tags("project", None)
    assert exc.value.param == "x-architect-tags"
