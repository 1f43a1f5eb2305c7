"""RouteLLM's metrics and the RouterBench frontier on tiny cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from architect.routing import metrics as M

A = np.asarray


def test_perfect_and_anti_router_by_hand() -> None:
    # weak right on half, strong right on all: only the first two prompts need the strong model
    weak, strong = A([0.0, 0.0, 1.0, 1.0]), A([1.0, 1.0, 1.0, 1.0])
    perfect, anti = A([1.0, 1.0, 0.0, 0.0]), A([0.0, 0.0, 1.0, 1.0])
    c = M.routellm_curve(perfect, weak, strong, points=2)
    # edges 0, 0.5, 1: >= 0 (all strong), >= 0.5 (two), > 1 (none)
    assert list(c.share) == [0.0, 0.5, 1.0] and list(c.quality) == [0.5, 1.0, 1.0]
    # AUC = 0.5 * (0.5 + 1) / 2 + 0.5 * (1 + 1) / 2 = 0.875; (0.875 - 0.5) / (1 - 0.5) = 0.75
    assert M.apgr(c, 0.5, 1.0) == pytest.approx(0.75)
    assert M.apgr(M.exact_curve(perfect, weak, strong), 0.5, 1.0) == pytest.approx(0.75)
    # the anti-router sends the strong model where it adds nothing first: 0.625 → 0.25
    ca = M.routellm_curve(anti, weak, strong, points=2)
    assert list(ca.quality) == [0.5, 0.5, 1.0]
    assert M.apgr(ca, 0.5, 1.0) == pytest.approx(0.25)
    # a router and its mirror image add up to 1 (the two curves are symmetric about the random line)
    assert M.apgr(c, 0.5, 1.0) + M.apgr(ca, 0.5, 1.0) == pytest.approx(1.0)


def test_random_router_scores_one_half() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    weak = (rng.random(n) < 0.6).astype(float)
    strong = np.maximum(weak, (rng.random(n) < 0.5).astype(float))
    wq, sq = weak.mean(), strong.mean()
    assert M.apgr(M.routellm_curve(rng.random(n), weak, strong), wq, sq) == pytest.approx(0.5, abs=0.03)
    # all scores tied: every prompt goes together, the curve is the straight line, APGR exactly 0.5
    flat = M.exact_curve(np.zeros(n), weak, strong)
    assert list(flat.share) == [0.0, 1.0]
    assert M.apgr(flat, wq, sq) == pytest.approx(0.5)
    summary = M.two_model_summary(rng.random(n), weak, strong)
    assert summary["apgr"] == pytest.approx(0.5, abs=0.03) and summary["n"] == n
    assert summary["cpt50"] == pytest.approx(0.5, abs=0.05)


def test_thresholds_are_the_decile_edges() -> None:
    # scores 0..9: edges 0, 0.9, ..., 9; ">=" gives 10, 9, ..., 1 strong calls, the last edge ">" none
    score = np.arange(10, dtype=float)
    weak, strong = np.zeros(10), np.ones(10)
    c = M.routellm_curve(score, weak, strong, points=10)
    assert np.allclose(c.share, np.linspace(0, 1, 11))
    assert np.allclose(c.quality, c.share)
    # ties straddling an edge go to the strong model together (>=): shares repeat, area unchanged
    tied = A([0.0, 1.0, 1.0, 1.0])
    ct = M.routellm_curve(tied, A([0.0, 0.0, 0.0, 0.0]), A([1.0, 1.0, 1.0, 1.0]), points=4)
    assert sorted(set(ct.share.tolist())) == [0.0, 0.75, 1.0]


def test_trapezoid_details() -> None:
    # uneven spacing and a repeated share (a zero-width step contributes nothing)
    c = M.Curve(A([0.0, 0.2, 0.2, 1.0]), A([0.5, 0.7, 0.8, 1.0]))
    area = 0.2 * (0.5 + 0.7) / 2 + 0.0 + 0.8 * (0.8 + 1.0) / 2
    assert M.apgr(c, 0.5, 1.0) == pytest.approx((area - 0.5) / 0.5)
    # a curve covering only part of the axis is measured against the lines over the same part
    part = M.Curve(A([0.0, 0.5]), A([0.5, 0.75]))
    assert M.apgr(part, 0.5, 1.0) == pytest.approx((0.5 * 1.25 / 2 - 0.25) / 0.25)
    # no gap between the models, or a single point: undefined
    assert M.apgr(c, 0.7, 0.7) is None
    assert M.apgr(M.Curve(A([0.3]), A([0.6])), 0.5, 1.0) is None


def test_cpt_on_a_known_curve() -> None:
    c = M.Curve(A([0.0, 0.5, 1.0]), A([0.5, 1.0, 1.0]))
    assert M.cpt(c, 0.5, 1.0, 0.5) == pytest.approx(0.25)  # 0.75 reached a quarter of the way
    assert M.cpt(c, 0.5, 1.0, 0.8) == pytest.approx(0.40)
    assert M.cpt(c, 0.5, 1.0, 0.0) == 0.0
    # a non-monotone curve: the first crossing, not an interpolation of the unsorted values
    wavy = M.Curve(A([0.0, 0.25, 0.5, 1.0]), A([0.5, 0.9, 0.6, 1.0]))
    assert M.cpt(wavy, 0.5, 1.0, 0.5) == pytest.approx(0.25 * 0.25 / 0.4)
    # never reached: the whole axis
    low = M.Curve(A([0.0, 1.0]), A([0.5, 0.7]))
    assert M.cpt(low, 0.5, 1.0, 0.8) == 1.0
    assert M.cpt(low, 0.5, 0.5, 0.8) is None


def test_oracle_curve() -> None:
    weak, strong = A([0.0, 0.0, 1.0, 1.0]), A([1.0, 0.0, 0.0, 1.0])
    o = M.oracle_curve(weak, strong, A([0.0, 0.25, 1.0]))
    assert list(o.quality) == [0.5, 0.75, 0.75]  # one prompt only the strong model answers


def test_many_model_policies_and_frontier() -> None:
    # three models by price: cheap, mid, dear
    prob = A([[0.9, 0.95, 0.99], [0.2, 0.7, 0.9], [0.1, 0.2, 0.8]])
    order = np.array([0, 1, 2])
    assert list(M.route_by_target(prob, order, 0.85)) == [0, 2, 2]
    assert list(M.route_by_target(prob, order, 0.6)) == [0, 1, 2]
    assert list(M.route_by_target(prob, order, 0.995)) == [2, 2, 2]  # none clears: the highest
    price = A([0.1, 0.3, 1.0])
    assert list(M.route_by_cost_weight(prob, order, price, 0.0)) == [2, 2, 2]
    assert list(M.route_by_cost_weight(prob, order, price, 0.5)) == [0, 1, 2]
    scores = A([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    costs = np.tile(price, (3, 1))
    pts = M.frontier(prob, order, scores, costs, A([0.6, 0.85, 0.995]))
    assert [round(p["quality"], 3) for p in pts] == [1.0, 1.0, 1.0]
    assert pts[0]["cost"] == pytest.approx((0.1 + 0.3 + 1.0) / 3)
    front = M.pareto([*pts, {"target": 0.0, "cost": 0.05, "quality": 0.5}])
    assert [p["cost"] for p in front] == [0.05, pytest.approx(1.4 / 3)]
    assert M.cost_to_reach(front, 0.99) == front[1]
    assert M.cost_to_reach(front, 1.01) is None


def test_single_model_hull_and_oracle() -> None:
    cost, quality = A([1.0, 2.0, 10.0]), A([0.80, 0.90, 1.00])
    assert M.single_model_hull(cost, quality, 0.9) == pytest.approx(2.0)
    # between 0.9 and 1.0: mixing models 2 and 3 (or 1 and 3) at random; the cheapest mix wins
    assert M.single_model_hull(cost, quality, 0.95) == pytest.approx(6.0)
    assert M.single_model_hull(cost, quality, 1.01) is None
    scores = A([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    assert list(M.oracle_choice(scores, np.tile(cost, (3, 1)))) == [1, 0, 0]
