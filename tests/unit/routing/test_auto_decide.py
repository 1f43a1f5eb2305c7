"""The `auto` decision with a fake quality model: the policy (quality_target, cost_weight, unknown
price), exploration bounded by its share and budget share, the chain, the reason and header, the
features handed to the model; and the prompt text features are made from."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest

from architect.config import parse_config
from architect.gateway.call import Call
from architect.gateway.providers.base import Usage
from architect.gateway.routing import Router
from architect.principal import Principal
from architect.routing.decide import AutoRouter, prompt_text
from architect.routing.policy import RouteSettings
from architect.routing.predict import Features, PriorModel, price_prior


class Fake:
    """A QualityModel answering fixed probabilities, recording what it was asked."""

    def __init__(self, p: Mapping[str, float], counts: Mapping[str, int] | None = None) -> None:
        self.p = dict(p)
        self.asked: list[dict[str, Any]] = []
        self.features: list[tuple[str, Features]] = []

    def predict(
        self,
        x: Features | None,
        *,
        project: str | None,
        task_type: str,
        candidates: Sequence[str],
        prior: Mapping[str, float],
    ) -> dict[str, float]:
        self.asked.append(
            {
                "x": x,
                "project": project,
                "task_type": task_type,
                "candidates": list(candidates),
                "prior": dict(prior),
            }
        )
        return {c: self.p[c] for c in candidates}

    def record_features(self, request_id: str, x: Features) -> None:
        self.features.append((request_id, x))

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _router(**auto: Any) -> Router:
    def dep(model: str, inp: float | None, **kw: Any) -> dict[str, Any]:
        d: dict[str, Any] = {"provider": "sim", "model": model, **kw}
        if inp is not None:
            d["price"] = {"input_per_mtok": inp, "output_per_mtok": inp * 4}
        return d

    cfg = parse_config(
        {
            "providers": [
                {"name": "sim", "kind": "simulated"},
                {"name": "up", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
            ],
            "models": [
                {"name": "small", "deployments": [dep("s", 0.1)]},
                {"name": "mid", "deployments": [dep("m", 1.0)]},
                {"name": "large", "deployments": [dep("l", 10.0)]},
                {"name": "mystery", "deployments": [{"provider": "up", "model": "x"}]},
                {"name": "auto", "strategy": "auto", "candidates": ["small", "mid", "large"], **auto},
            ],
        },
        env={},
    )
    return Router.build(cfg)


def _call(text: str = "Summarise this text.", tags: dict[str, str] | None = None, **headers: str) -> Call:
    body = {
        "model": "auto",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
    }
    call = Call(
        "chat",
        body,
        orjson.dumps(body),
        Principal(kind="key", key_id="k1"),
        dict(tags or {}),
        headers=headers,
    )
    call.est_prompt_tokens = 100
    call.task_type = (tags or {}).get("type", "unknown")
    return call


def _decide(
    ar: AutoRouter, router: Router, call: Call, names: Sequence[str] = ("small", "mid", "large")
) -> None:
    group = router.groups["auto"]
    call.group = group
    ar.resolve(call)
    candidates = [router.groups[n] for n in group.config.candidates]
    ar.decide(call, group, candidates, [router.groups[n] for n in names])


def test_quality_target_takes_the_cheapest_candidate_that_reaches_it() -> None:
    router = _router()
    fake = Fake({"small": 0.6, "mid": 0.82, "large": 0.95})
    ar = AutoRouter(fake, rng=random.Random(0))
    call = _call(tags={"type": "summarise", "project": "shop"})
    _decide(ar, router, call)
    assert call.group is router.groups["mid"] and call.routed_by == "auto" and not call.explored
    assert [g.name for g in call.chain or ()] == ["mid", "large", "small"]  # dearer ones up, then cheaper
    assert call.route_scores == {"small": 0.6, "mid": 0.82, "large": 0.95}
    assert (
        call.route_prefix
        == "auto: cheapest with P>=0.80 (quality_target from default): small 0.60; mid 0.82; large 0.95"
    )
    assert call.route_header == "group=mid; p=0.820; quality_target=0.8; source=default"
    asked = fake.asked[0]
    assert asked["candidates"] == ["small", "mid", "large"] and asked["project"] == "shop"
    assert asked["task_type"] == "summarise"
    assert asked["prior"] == {"small": 0.55, "mid": 0.7, "large": 0.85}
    ((rid, (idx, vals)),) = fake.features
    assert rid == call.request_id and idx.dtype.name == "int32" and vals.dtype.name == "float32"
    assert len(idx) == len(vals) > 9


def test_none_reaching_the_target_takes_the_highest_p_and_says_so() -> None:
    router = _router()
    ar = AutoRouter(Fake({"small": 0.5, "mid": 0.7, "large": 0.69}), rng=random.Random(0))
    call = _call(**{"x-architect-route": "quality=0.9"})
    call.route_request = ("x-architect-route", "quality=0.9")
    _decide(ar, router, call)
    assert call.group is router.groups["mid"]
    assert (
        call.route_prefix is not None
        and "none reaches P>=0.90 (quality_target from request): the highest P" in call.route_prefix
    )


def test_the_group_config_and_a_key_set_the_knob() -> None:
    router = _router(quality_target=0.55)
    fake = Fake({"small": 0.6, "mid": 0.82, "large": 0.95})
    call = _call()
    _decide(AutoRouter(fake, rng=random.Random(0)), router, call)
    assert (
        call.group is router.groups["small"]
        and call.route_header is not None
        and "source=group" in call.route_header
    )
    call = _call()
    call.principal = Principal(kind="key", key_id="k2", extra={"route": {"quality_target": 0.9}})
    _decide(AutoRouter(fake, rng=random.Random(0)), router, call)
    assert call.group is router.groups["large"] and "source=key" in (call.route_header or "")
    call = _call()
    call.principal = Principal(
        kind="key", key_id="k3", extra={"route": {"quality_target": 0.9}, "temporary": True}
    )
    _decide(AutoRouter(fake, rng=random.Random(0)), router, call)
    assert "source=task" in (call.route_header or "")
    ar = AutoRouter(fake, rng=random.Random(0))
    ar.set_project("shop", RouteSettings(cost_weight=0.0))
    call = _call(tags={"project": "shop"})
    _decide(ar, router, call)
    assert call.group is router.groups["large"] and "cost_weight=0; source=project" in (
        call.route_header or ""
    )


def test_cost_weight_trades_p_against_price_and_an_unknown_price_counts_as_the_dearest() -> None:
    router = _router()
    fake = Fake({"small": 0.6, "mid": 0.8, "large": 0.95, "mystery": 0.97})
    # w 0.2: mid 0.78 > mystery 0.77 (price counted as the dearest, 1.0) > large 0.75 > small 0.598
    for w, want in [(0.0, "mystery"), (0.2, "mid"), (5.0, "small")]:
        call = _call()
        call.route_request = ("x-architect-route", f"cost_weight={w}")
        _decide(AutoRouter(fake, rng=random.Random(0)), router, call, ("small", "mid", "large", "mystery"))
        assert call.group is router.groups[want], w
    # by quality_target, the unknown-priced one is the last resort among those that reach the target
    call = _call()
    call.route_request = ("x-architect-route", "quality=0.97")
    _decide(AutoRouter(fake, rng=random.Random(0)), router, call, ("mystery", "small", "large"))
    assert call.group is router.groups["mystery"] and [g.name for g in call.chain or ()] == [
        "mystery",
        "large",
        "small",
    ]


def test_exploration_takes_another_candidate_within_its_share_and_budget() -> None:
    router = _router(exploration={"share": 1.0, "budget_share": 0.1})
    fake = Fake({"small": 0.6, "mid": 0.82, "large": 0.95})
    ar = AutoRouter(fake, rng=random.Random(0))
    call = _call()
    _decide(ar, router, call)
    assert call.explored and call.group is router.groups["small"]  # fewest explorations, cheapest first
    assert "explore (fewest outcomes; policy: mid)" in (call.route_prefix or "")
    assert (call.route_header or "").endswith("; explored")
    # the explored one was the cheaper: no extra cost, so the next may explore again
    call.usage, call.cost_usd = Usage(prompt_tokens=1000, completion_tokens=1000), 0.0005
    ar.settled(call)
    assert ar.exploration("auto")["explore_extra_usd"] == 0.0
    call2 = _call()
    _decide(ar, router, call2)
    assert call2.explored and call2.group is router.groups["large"]  # the one explored least now
    call2.usage, call2.cost_usd = Usage(prompt_tokens=1000, completion_tokens=1000), 0.05
    ar.settled(call2)
    # it cost more than the policy's choice would have: over its budget share, no exploration now
    state = ar.exploration("auto")
    assert state["explore_extra_usd"] == pytest.approx(0.05 - 0.005)
    assert state["spend_usd"] == pytest.approx(0.0505) and state["explored"] == {"small": 1, "large": 1}
    for _ in range(5):
        c = _call()
        _decide(ar, router, c)
        assert not c.explored and c.group is router.groups["mid"]
    never = AutoRouter(fake, rng=random.Random(0))
    router0 = _router(exploration={"share": 0.0})
    c = _call()
    _decide(never, router0, c)
    assert not c.explored


def test_exploration_share_is_about_its_probability() -> None:
    router = _router(exploration={"share": 0.2, "budget_share": 1.0})
    ar = AutoRouter(PriorModel(), rng=random.Random(1))
    n = 0
    for _ in range(500):
        c = _call()
        _decide(ar, router, c)
        n += c.explored
    assert 70 <= n <= 130


def test_prior_by_price_tier() -> None:
    assert price_prior(["a"]) == {"a": 0.7}
    assert price_prior(["a", "b"]) == {"a": 0.55, "b": 0.85}
    assert price_prior(["a", "b", "c", "d"])["b"] == pytest.approx(0.65)


def test_prompt_text_reads_system_and_user_text_of_each_api() -> None:
    chat = {
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "assistant", "content": "A"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "U"}, {"type": "image_url", "image_url": {"url": "x"}}],
            },
        ]
    }
    assert prompt_text("chat", chat) == "S\n\nU"
    msgs = {"system": [{"type": "text", "text": "S"}], "messages": [{"role": "user", "content": "U"}]}
    assert prompt_text("messages", msgs) == "S\n\nU"
    assert prompt_text("responses", {"instructions": "I", "input": "U"}) == "I\n\nU"
    resp = {
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "U"}]},
            {"type": "function_call_output", "output": "o"},
        ]
    }
    assert prompt_text("responses", resp) == "U"


def test_features_carry_the_request_shape_and_with_embed_the_static_embedding() -> None:
    from architect.routing.features import HashedFeatures

    router = _router()
    fake = Fake({"small": 0.9, "mid": 0.9, "large": 0.9})
    ar = AutoRouter(fake, rng=random.Random(0))
    _decide(ar, router, _call("Fix the failing test in parser.py"))
    ((_, (plain_idx, plain_vals)),) = fake.features
    fe = HashedFeatures()
    request = dict(zip(plain_idx.tolist(), plain_vals.tolist(), strict=True))
    base = fe.hashed + 9
    assert [request[base + i] for i in range(3)] == [0.0, 0.0, 0.0]  # no tools, format or images
    assert max(plain_idx) < fe.dim
    embed = HashedFeatures(embed=True)
    ar.use_features(embed)
    _decide(ar, router, _call("Fix the failing test in parser.py"))
    idx, vals = fake.features[1][1]
    extra = idx[idx >= fe.dim]  # the embedding's 64 columns, after the request ones
    assert len(extra) == 64 and max(idx) < embed.dim
    assert abs(float((vals[idx >= fe.dim] ** 2).sum()) - 1.0) < 1e-5  # L2-normalised
