"""The `agents:` and `orchestrator:` configuration: runners, the implicit builtin agent, references
to model groups and other agents checked by name, and the gateway URL agents are given."""

from __future__ import annotations

from typing import Any

import pytest

from architect.config import AgentConfig, parse_config
from architect.errors import ConfigError


def _cfg(**extra: Any) -> dict[str, Any]:
    return {
        "providers": [{"name": "p", "kind": "simulated"}],
        "models": [
            {"name": "fast", "deployments": [{"provider": "p", "model": "x"}]},
            {"name": "strong", "aliases": ["claude-*"], "deployments": [{"provider": "p", "model": "y"}]},
        ],
        **extra,
    }


def test_agents_parse_with_their_defaults_and_builtin_exists_implicitly() -> None:
    cfg = parse_config(
        _cfg(
            agents=[
                {"name": "aider", "runner": "aider", "model": "fast", "budget_usd": 0.5, "args": ["--no-git"],
                 "escalate": [{"attempt": 2, "model": "strong"}, {"attempt": 3, "agent": "claude"}]},
                {"name": "claude", "runner": "claude-code", "model": "claude-sonnet-4", "env": {"A": "1"}},
                {"name": "mine", "runner": "script", "command": "./agent.sh"},
            ]
        ),
        env={},
    )  # fmt: skip
    aider = cfg.agent("aider")
    assert aider is not None and (aider.timeout_s, aider.max_steps, aider.args) == (1800.0, 30, ["--no-git"])
    assert [(s.attempt, s.model, s.agent) for s in aider.escalate] == [
        (2, "strong", None),
        (3, None, "claude"),
    ]
    assert [a.name for a in cfg.all_agents()] == ["aider", "claude", "mine", "builtin"]
    builtin = cfg.agent("builtin")
    assert builtin is not None and builtin.runner == "builtin" and builtin.model is None
    assert cfg.agent("nope") is None
    assert cfg.orchestrator.validator_timeout_s == 600.0 and cfg.orchestrator.default_agent == "builtin"


def test_a_configured_builtin_replaces_the_implicit_one() -> None:
    cfg = parse_config(
        _cfg(agents=[{"name": "builtin", "runner": "builtin", "model": "fast", "max_steps": 10}]), env={}
    )
    assert cfg.all_agents() == [AgentConfig(name="builtin", runner="builtin", model="fast", max_steps=10)]


@pytest.mark.parametrize(
    ("agents", "orchestrator", "message"),
    [
        ([{"name": "a", "runner": "aider"}, {"name": "a", "runner": "codex"}], {}, r"agents\[1\]\.name: agent 'a' is defined twice"),
        ([{"name": "a", "runner": "aider", "model": "nope"}], {}, r"agents\[0\]\.model: unknown model group 'nope'"),
        ([{"name": "a", "runner": "aider", "escalate": [{"attempt": 2, "agent": "zz"}]}], {},
         r"agents\[0\]\.escalate\[0\]\.agent: unknown agent 'zz' \(known: a, builtin\)"),
        ([{"name": "a", "runner": "aider", "escalate": [{"attempt": 2, "model": "gone"}]}], {},
         r"agents\[0\]\.escalate\[0\]\.model: unknown model group 'gone'"),
        ([{"name": "a", "runner": "aider", "escalate": [{"attempt": 3, "model": "fast"}, {"attempt": 2, "model": "strong"}]}], {},
         r"agents\[0\]\.escalate: steps must be in increasing attempt order \(step 1: attempt 2 after 3\)"),
        ([{"name": "a", "runner": "aider", "escalate": [{"attempt": 1, "model": "fast"}]}], {},
         r"agents\[0\]\.escalate\[0\]\.attempt: Input should be greater than or equal to 2"),
        ([{"name": "a", "runner": "aider", "escalate": [{"attempt": 2}]}], {}, r"an escalation step needs model, agent or both"),
        ([{"name": "a", "runner": "script"}], {}, r"agents\[0\]: a 'script' agent needs command"),
        ([{"name": "a", "runner": "cursor"}], {}, r"agents\[0\]\.runner: Input should be 'builtin', 'aider'"),
        ([{"name": "a b", "runner": "aider"}], {}, r"agents\[0\]\.name: String should match pattern"),
        ([{"name": "a", "runner": "aider", "budget_usd": 0}], {}, r"agents\[0\]\.budget_usd: Input should be greater than 0"),
        ([], {"default_agent": "aider"}, r"orchestrator\.default_agent: unknown agent 'aider' \(known: builtin\)"),
        ([], {"gateway_url": "ftp://x"}, r"orchestrator\.gateway_url: String should match pattern"),
    ],
)  # fmt: skip
def test_bad_agent_config_is_refused_naming_the_field(
    agents: list[dict[str, Any]], orchestrator: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_cfg(agents=agents, orchestrator=orchestrator), env={})


def test_model_names_are_not_checked_without_model_groups() -> None:
    # a worker's config may leave the models to the gateway it points at
    cfg = parse_config({"agents": [{"name": "a", "runner": "aider", "model": "anything"}]}, env={})
    assert cfg.agent("a") is not None


@pytest.mark.parametrize(
    ("server", "orchestrator", "url"),
    [
        ({}, {}, "http://127.0.0.1:8400"),
        ({"host": "0.0.0.0", "port": 9000}, {}, "http://127.0.0.1:9000"),
        ({"host": "::", "port": 9000}, {}, "http://[::1]:9000"),
        ({"host": "10.0.0.5"}, {}, "http://10.0.0.5:8400"),
        ({}, {"gateway_url": "https://gw.example.com/"}, "https://gw.example.com"),
    ],
)
def test_the_gateway_url_agents_get(server: dict[str, Any], orchestrator: dict[str, Any], url: str) -> None:
    assert parse_config({"server": server, "orchestrator": orchestrator}, env={}).gateway_url() == url
