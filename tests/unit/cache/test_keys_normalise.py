"""Cache keys and the normalised-exact text."""

from __future__ import annotations

from architect.cache.keys import is_deterministic, namespace_of, request_keys
from architect.cache.normalise import normalise_messages, normalise_text
from architect.principal import ANONYMOUS, Principal


def _body(content: str = "hi", **kw: object) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], "temperature": 0, **kw}


def test_key_ignores_delivery_fields_but_not_answer_fields() -> None:
    base, _ = request_keys(_body(), "m", "k:a", normalised=False, casefold=False)
    same = request_keys(
        _body(stream=True, stream_options={"include_usage": True}, user="u"),
        "m",
        "k:a",
        normalised=False,
        casefold=False,
    )[0]
    assert same == base
    for changed in (
        _body(temperature=0.5),
        _body(seed=1),
        _body(max_tokens=5),
        _body(tools=[{"x": 1}]),
        _body(response_format={"type": "json_object"}),
        _body(top_p=0.5),
        _body("hi!"),
        _body(some_future_param=1),
    ):
        assert request_keys(changed, "m", "k:a", normalised=False, casefold=False)[0] != base
    assert request_keys(_body(), "other-group", "k:a", normalised=False, casefold=False)[0] != base


def test_key_depends_on_namespace() -> None:
    a = request_keys(_body(), "m", "k:a", normalised=True, casefold=False)
    b = request_keys(_body(), "m", "k:b", normalised=True, casefold=False)
    assert a[0] != b[0] and a[1] != b[1]


def test_key_is_canonical_in_field_order() -> None:
    b1 = {"temperature": 0, "model": "m", "messages": [{"content": "x", "role": "user"}]}
    b2 = {"messages": [{"role": "user", "content": "x"}], "model": "m", "temperature": 0}
    assert request_keys(b1, "m", "n", normalised=True, casefold=False) == request_keys(
        b2, "m", "n", normalised=True, casefold=False
    )


def test_normalised_key_merges_spacing_and_width_but_exact_does_not() -> None:
    a = request_keys(_body("What is  2+2?\n"), "m", "n", normalised=True, casefold=False)
    b = request_keys(_body(" What is 2\uff0b2? "), "m", "n", normalised=True, casefold=False)
    assert a[0] != b[0] and a[1] == b[1]
    c = request_keys(_body("what is 2+2?"), "m", "n", normalised=True, casefold=False)
    assert c[1] != a[1]  # case kept by default
    assert (
        request_keys(_body("what is 2+2?"), "m", "n", normalised=True, casefold=True)[1]
        == request_keys(_body("WHAT is 2+2?"), "m", "n", normalised=True, casefold=True)[1]
    )


def test_normalise_keeps_code_blocks_and_inline_code() -> None:
    text = "  Fix   this:\n```py\ndef f():\n    return  1\n```\nand `a  b`  please  "
    out = normalise_text(text, casefold=True)
    assert out == "fix this: ```py\ndef f():\n    return  1\n``` and `a  b` please"
    assert normalise_text("\ufb01  \uff26\uff55\uff4c\uff4c") == "fi Full"  # ligature, full width
    msgs = normalise_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": " a  b "},
                    {"type": "image_url", "image_url": {"url": "u"}},
                ],
            }
        ]
    )
    assert msgs[0]["content"][0]["text"] == "a b" and msgs[0]["content"][1]["type"] == "image_url"


def test_deterministic() -> None:
    assert is_deterministic({"temperature": 0})
    assert is_deterministic({"temperature": 0.0})
    assert is_deterministic({"temperature": 1, "seed": 3})
    assert not is_deterministic({})
    assert not is_deterministic({"temperature": 0.2})


def test_namespaces() -> None:
    k1 = Principal(kind="key", key_id="k1")
    k2 = Principal(kind="key", key_id="k2", tags={"project": "alpha"})
    assert namespace_of(k1, {}, "key") == "k:k1"
    assert namespace_of(k1, {"project": "alpha"}, "key") == "k:k1"
    # project mode: the key's bound project, which a request tag cannot override
    assert namespace_of(k2, {"project": "beta"}, "project") == "p:alpha"
    # a key bound to no project cannot claim another project's namespace with a tag
    assert namespace_of(k1, {"project": "alpha"}, "project") == "k:k1/p:alpha"
    assert namespace_of(ANONYMOUS, {"project": "alpha"}, "project") == "p:alpha"
    assert namespace_of(ANONYMOUS, {}, "key") == "k:anonymous"
