"""Routing strategies and candidate filtering, on a Router built from config (no I/O)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from architect import __version__
from architect.gateway.providers.transport import MockTransport, response_from_bytes
from architect.gateway.routing import Router
from tests.helpers import make_config


async def _never(request: Any) -> Any:
    return response_from_bytes(500, b"{}")


def _router(strategy: str, deployments: list[dict[str, Any]], **group: Any) -> Router:
    cfg = make_config(
        {
            "providers": [
                {"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
                {"name": "a", "kind": "anthropic", "api_key": "k"},
            ],
            "models": [{"name": "g", "strategy": strategy, "deployments": deployments, **group}],
        }
    )
    r = Router.build(cfg, transports={"p": MockTransport(_never), "a": MockTransport(_never)})
    r.rng = random.Random(7)
    return r


def _deps(*names: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"provider": "p", "model": n, "name": n, **extra} for n in names]


def test_weighted_distribution_follows_the_weights() -> None:
    r = _router(
        "weighted",
        [
            {"provider": "p", "model": "x", "name": "a", "weight": 1},
            {"provider": "p", "model": "x", "name": "b", "weight": 3},
        ],
    )
    g = r.groups["g"]
    firsts = Counter(r.order(g, 10, 10)[0].deployment.name for _ in range(8000))
    assert abs(firsts["b"] / 8000 - 0.75) < 0.02
    routes = r.order(g, 10, 10)
    assert len(routes) == 2 and routes[0].reason == "weighted" and routes[1].reason == "weighted (next)"


def test_least_busy_picks_the_fewest_in_flight() -> None:
    r = _router("least-busy", _deps("a", "b", "c"))
    a, b, c = r.groups["g"].deployments
    a.in_flight, b.in_flight, c.in_flight = 5, 1, 3
    assert [x.deployment.name for x in r.order(r.groups["g"], 0, 0)] == ["b", "c", "a"]
    b.in_flight = 9
    assert r.order(r.groups["g"], 0, 0)[0].deployment.name == "c"


def test_lowest_latency_prefers_fast_and_decay_lets_a_recovered_deployment_back() -> None:
    r = _router("lowest-latency", _deps("slow", "fast"))
    now = [0.0]
    r.clock = lambda: now[0]
    slow, fast = r.groups["g"].deployments
    assert {x.deployment.name for x in r.order(r.groups["g"], 0, 0)} == {"slow", "fast"}  # untried: either
    slow.observe_latency(900.0, 2000.0, now=0.0)
    fast.observe_latency(50.0, 300.0, now=0.0)
    for t in range(0, 300, 5):  # the fast one keeps serving (fresh samples); the slow one gets none
        now[0] = float(t)
        first = r.order(r.groups["g"], 0, 0)[0].deployment
        if first is slow:
            break
        fast.observe_latency(50.0, 300.0, now=now[0])
    else:
        raise AssertionError("the slow deployment was never tried again")
    assert 100 < now[0] < 250  # after its estimate (2900 ms) decayed below 350 ms (3 half-lives)
    slow.observe_latency(40.0, 200.0, now=now[0])  # it recovered: the stale estimate weighs little
    assert slow.latency_score(now[0]) < 500  # vs 2900 without the time-weighting
    for _ in range(8):
        slow.observe_latency(40.0, 200.0, now=now[0])
    assert r.order(r.groups["g"], 0, 0)[0].deployment is slow
    # an EWMA, not the last sample: one outlier moves a fresh estimate by alpha of the difference
    before = slow.ewma_total_ms or 0.0
    slow.observe_latency(40.0, before + 1000.0, now=now[0])
    assert slow.ewma_total_ms == pytest.approx(before + 200.0)


def test_lowest_cost_by_estimated_tokens() -> None:
    r = _router(
        "lowest-cost",
        [
            {
                "provider": "p",
                "model": "x",
                "name": "cheap-in",
                "price": {"input_per_mtok": 0.1, "output_per_mtok": 10},
            },
            {
                "provider": "p",
                "model": "x",
                "name": "cheap-out",
                "price": {"input_per_mtok": 5, "output_per_mtok": 0.5},
            },
        ],
    )
    g = r.groups["g"]
    assert r.order(g, 100_000, 10)[0].deployment.name == "cheap-in"  # long prompt, short answer
    assert r.order(g, 10, 4000)[0].deployment.name == "cheap-out"  # short prompt, long answer


def test_context_window_skips_deployments_too_small() -> None:
    r = _router(
        "weighted",
        [
            {"provider": "p", "model": "x", "name": "small", "context_window": 1000},
            {"provider": "p", "model": "x", "name": "big", "context_window": 100_000},
        ],
    )
    g = r.groups["g"]
    assert [x.deployment.name for x in r.order(g, 900, 200)] == ["big"]
    assert r.order(g, 900, 200)[0].reason == "only deployment"
    assert r.order(g, 200_000, 0) == []


def test_anthropic_default_base_url_and_headers() -> None:
    r = _router("weighted", [{"provider": "a", "model": "claude-x"}])
    d = r.groups["g"].deployments[0]
    assert d.base_url == "https://api.anthropic.com/v1"
    assert d.headers == {
        "anthropic-version": "2023-06-01",
        "x-api-key": "k",
        "user-agent": f"architect/{__version__}",
    }


def test_rebuild_keeps_state_of_deployments_that_still_exist() -> None:
    r1 = _router("weighted", _deps("a", "b"))
    a1 = r1.groups["g"].deployments[0]
    a1.in_flight = 2
    for _ in range(5):
        a1.breaker.record(False)
    cfg2 = make_config(
        {
            "providers": [{"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}],
            "models": [
                {
                    "name": "g",
                    "deployments": [
                        {"provider": "p", "model": "a", "name": "a", "weight": 5},
                        {"provider": "p", "model": "c", "name": "c"},
                    ],
                }
            ],
        }
    )
    r2 = Router.build(cfg2, previous=r1)
    a2, c2 = r2.groups["g"].deployments
    assert a2 is a1 and a2.config.weight == 5 and a2.breaker.state == "open" and a2.in_flight == 2
    assert c2.breaker.state == "closed"
