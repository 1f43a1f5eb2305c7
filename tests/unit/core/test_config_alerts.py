from __future__ import annotations

import pytest

from architect.config import parse_config
from architect.errors import ConfigError


def _with_alerts(*rules: dict[str, object]) -> dict[str, object]:
    return {
        "providers": [{"name": "p", "kind": "simulated"}],
        "models": [
            {
                "name": "g",
                "deployments": [
                    {"provider": "p", "model": "x"},
                    {"provider": "p", "model": "y", "name": "y1"},
                ],
            }
        ],
        "alerts": list(rules),
    }


def _error(*rules: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(_with_alerts(*rules), source="conf.yaml", env={})
    return str(exc.value)


def test_the_testers_rules_are_refused_naming_each_field() -> None:
    msg = _error(
        {"name": "r1", "kind": "error_rate", "threshold": 5, "target": "ghost"},
        {"name": "r1", "kind": "latency_p95", "threshold": -3},
    )
    assert "conf.yaml" in msg
    assert "alerts[0].threshold: error_rate rules take a fraction in (0, 1], e.g. 0.8 for 80%; got 5" in msg
    assert "alerts[0].target: 'ghost' names no model group or deployment (known: g, g/p/x, y1)" in msg
    assert "alerts[1].name: 'r1' is the name of alerts[0] too (rule names are unique)" in msg
    assert "alerts[1].threshold: latency_p95 rules take milliseconds above 0; got -3" in msg


@pytest.mark.parametrize("threshold", [0, 1.5, 80, -0.2])
@pytest.mark.parametrize("kind", ["budget", "error_rate"])
def test_a_fraction_outside_0_to_1_is_refused(kind: str, threshold: float) -> None:
    msg = _error({"name": "r", "kind": kind, "threshold": threshold})
    assert f"alerts[0].threshold: {kind} rules take a fraction in (0, 1]" in msg


def test_breaker_minutes_may_be_zero_but_not_negative() -> None:
    ok = parse_config(_with_alerts({"name": "b", "kind": "breaker_open", "threshold": 0}), env={})
    assert ok.alerts[0].threshold == 0
    msg = _error({"name": "b", "kind": "breaker_open", "threshold": -1})
    assert "alerts[0].threshold: breaker_open rules take minutes, 0 or more" in msg


def test_valid_rules_and_targets_are_accepted() -> None:
    cfg = parse_config(
        _with_alerts(
            {"name": "e", "kind": "error_rate", "threshold": 1, "target": "g"},
            {"name": "l", "kind": "latency_p95", "threshold": 2000, "target": "y1"},
            {"name": "b", "kind": "breaker_open", "threshold": 5, "target": "g/p/x"},
            # a budget's target names a budget, which lives in the store: not known to the config
            {"name": "k", "kind": "budget", "threshold": 0.8, "target": "key:anything"},
        ),
        env={},
    )
    assert [r.name for r in cfg.alerts] == ["e", "l", "b", "k"]
