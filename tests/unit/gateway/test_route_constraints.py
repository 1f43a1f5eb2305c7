"""Hard constraints: what a request needs of a deployment in each API's shape, which deployments may
not take it, and the 400 naming the constraint when nothing in the chain is left; the `auto` config's
checks."""

from __future__ import annotations

from typing import Any

import pytest

from architect.config import parse_config
from architect.errors import ConfigError, InvalidRequest
from architect.gateway.constraints import check_chain, refusal, request_needs
from architect.gateway.routing import Router


def test_request_needs_in_each_api_shape() -> None:
    img = {"type": "image_url", "image_url": {"url": "data:,"}}
    assert request_needs("chat", {"messages": [{"role": "user", "content": "hi"}]}) == frozenset()
    assert request_needs(
        "chat",
        {
            "messages": [{"role": "user", "content": [img]}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        },
    ) == {"tools", "json_schema", "images"}
    assert request_needs("chat", {"messages": [], "response_format": {"type": "json_object"}}) == frozenset()
    msgs = {
        "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}],
        "tools": [{"name": "f", "input_schema": {}}],
    }
    assert request_needs("messages", msgs) == {"tools", "images"}
    resp = {
        "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}],
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}},
    }
    assert request_needs("responses", resp) == {"json_schema", "images"}
    assert request_needs("responses", {"input": "hi", "tools": []}) == frozenset()
    assert request_needs("embeddings", {"input": "hi", "tools": [1]}) == frozenset()


def _router() -> Router:
    def dep(model: str, **kw: Any) -> dict[str, Any]:
        return {"provider": "sim", "model": model, **kw}

    cfg = parse_config(
        {
            "providers": [{"name": "sim", "kind": "simulated"}],
            "models": [
                {"name": "cloud", "fallbacks": ["plain"], "deployments": [dep("c")]},
                {"name": "plain", "deployments": [dep("p", tools=False, images=False, json_schema=False)]},
                {"name": "local", "deployments": [dep("l", local=True, images=False)]},
            ],
        },
        env={},
    )
    return Router.build(cfg)


def test_refusal_names_the_first_constraint_a_deployment_fails() -> None:
    r = _router()
    (plain,) = r.groups["plain"].deployments
    (local,) = r.groups["local"].deployments
    assert refusal(plain, frozenset({"images", "tools"}), False) == "tools"
    assert refusal(plain, frozenset(), True) == "privacy"
    assert refusal(local, frozenset({"tools"}), True) is None
    assert refusal(local, frozenset({"images"}), True) == "images"


def test_check_chain_refuses_naming_the_constraint_after_which_nothing_is_left() -> None:
    r = _router()
    cloud = [r.groups["cloud"], r.groups["plain"]]
    check_chain("cloud", cloud, frozenset({"tools"}), False)  # `cloud` takes tools
    with pytest.raises(InvalidRequest) as e:
        check_chain("cloud", cloud, frozenset(), True)
    assert e.value.param == "privacy" and e.value.status == 400
    assert str(e.value).startswith("privacy: local-only: ") and "'cloud'" in str(e.value)
    with pytest.raises(InvalidRequest) as e:
        check_chain("plain", [r.groups["plain"]], frozenset({"images", "json_schema"}), False)
    assert e.value.param == "response_format" and str(e.value).startswith("response_format: ")
    with pytest.raises(InvalidRequest) as e:
        check_chain("local", [r.groups["local"]], frozenset({"images"}), True)
    assert e.value.param == "images" and str(e.value).startswith("images: ")
    check_chain("local", [r.groups["local"]], frozenset({"tools"}), True)


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"name": "a", "strategy": "auto"}, "candidates: an auto group needs at least one"),
        (
            {"name": "a", "strategy": "auto", "candidates": ["nope"]},
            "candidates[0]: unknown model group 'nope'",
        ),
        ({"name": "a", "strategy": "auto", "candidates": ["b", "b"]}, "a group is listed twice"),
        ({"name": "a", "strategy": "auto", "candidates": ["x"]}, "'x' is an auto group itself"),
        (
            {
                "name": "a",
                "strategy": "auto",
                "candidates": ["b"],
                "deployments": [{"provider": "sim", "model": "m"}],
            },
            "deployments: an auto group has none",
        ),
        (
            {"name": "a", "strategy": "auto", "candidates": ["b"], "fallbacks": ["b"]},
            "an auto group has none",
        ),
        ({"name": "a", "strategy": "auto", "candidates": ["b"], "quality_target": 1.5}, "quality_target"),
        ({"name": "a", "deployments": []}, "deployments: at least one deployment"),
        (
            {"name": "a", "candidates": ["b"], "deployments": [{"provider": "sim", "model": "m"}]},
            "only for strategy: auto",
        ),
    ],
)
def test_auto_config_is_checked(group: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(
            {
                "providers": [{"name": "sim", "kind": "simulated"}],
                "models": [
                    {"name": "b", "deployments": [{"provider": "sim", "model": "m"}]},
                    {"name": "x", "strategy": "auto", "candidates": ["b"]},
                    group,
                ],
            },
            env={},
        )
    assert message in str(e.value)
