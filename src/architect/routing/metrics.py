"""Router metrics: RouteLLM's (arXiv 2406.18665, `routellm/evals/benchmarks.py` and `evaluate.py`) for a
weak/strong pair, and the cost/quality frontier in USD for many models (RouterBench).

Two models, RouteLLM's procedure exactly:
- the router gives each prompt a strong-win score; the thresholds are the edges of `points` (10)
  equal-count bins of the scores (`pandas.qcut(..., retbins=True)`: linear-interpolated quantiles);
  at every edge but the last a prompt goes to the strong model when its score >= the edge, at the last
  when its score > the edge (so the shares run from 100% to 0%); duplicate edges (tied scores), which
  make `pandas.qcut` refuse, are kept here: a repeated point adds no area;
- quality (mean score) against the share of strong calls, sorted by share;
- PGR(s) = (quality(s) - weak) / (strong - weak), weak and strong being the two models' mean scores;
- APGR = (AUC - weak AUC) / (strong AUC - weak AUC), each AUC by the trapezoid rule over the shares
  (`np.trapz`), so random routing scores 0.5 and the weak-only/strong-only lines 0 and 1;
- CPT(p) = the share of strong calls at which quality reaches weak + p (strong - weak), interpolated
  linearly on the curve (RouteLLM's `np.interp`; here the first crossing, identical on a monotone curve).
`exact_curve` is the same curve at every prompt (ties of the score kept together and joined linearly,
i.e. the expectation under random tie-breaking), reported as `apgr_fine`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Curve",
    "apgr",
    "cost_to_reach",
    "cpt",
    "exact_curve",
    "frontier",
    "oracle_choice",
    "oracle_curve",
    "pareto",
    "route_by_cost_weight",
    "route_by_target",
    "routellm_curve",
    "single_model_hull",
    "two_model_summary",
]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Curve:
    """Quality (mean score) against the share of strong calls, sorted by share (0..1)."""

    share: F64
    quality: F64


def routellm_curve(score: F64, weak: F64, strong: F64, points: int = 10) -> Curve:
    """RouteLLM's curve: thresholds at the qcut edges of the scores, `>=` except `>` at the last edge."""
    edges = np.quantile(score, np.linspace(0.0, 1.0, points + 1))
    shares = np.empty(len(edges))
    quality = np.empty(len(edges))
    for i, t in enumerate(edges):
        sel = score >= t if i < len(edges) - 1 else score > t
        shares[i] = sel.mean()
        quality[i] = np.where(sel, strong, weak).mean()
    order = np.argsort(shares, kind="stable")
    return Curve(shares[order], quality[order])


def exact_curve(score: F64, weak: F64, strong: F64) -> Curve:
    """The curve at every group of tied scores: sending the k highest-scored prompts to the strong model."""
    n = len(score)
    order = np.argsort(-score, kind="stable")
    gain = (strong - weak)[order]
    s = score[order]
    # ends of tie groups: positions k where s[k-1] != s[k], plus 0 and n
    ends = np.concatenate(([0], np.nonzero(np.diff(s))[0] + 1, [n]))
    cum = np.concatenate(([0.0], np.cumsum(gain)))
    return Curve(ends / n, (weak.sum() + cum[ends]) / n)


def _trapz(y: F64, x: F64) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def apgr(curve: Curve, weak_q: float, strong_q: float) -> float | None:
    """RouteLLM's APGR: area between the curve and the weak line over the area between the two lines."""
    width = float(curve.share[-1] - curve.share[0])
    gap = strong_q - weak_q
    if width <= 0 or gap == 0:
        return None
    return (_trapz(curve.quality, curve.share) - weak_q * width) / (gap * width)


def cpt(curve: Curve, weak_q: float, strong_q: float, p: float) -> float | None:
    """Share of strong calls needed to recover `p` of the weak-to-strong gap (first crossing)."""
    if strong_q == weak_q:
        return None
    target = weak_q + p * (strong_q - weak_q)
    x, y = curve.share, curve.quality
    if y[0] >= target:
        return float(x[0])
    for i in range(1, len(x)):
        if y[i] >= target:
            if y[i] == y[i - 1]:
                return float(x[i])
            return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    return float(x[-1])


def oracle_curve(weak: F64, strong: F64, shares: F64) -> Curve:
    """RouteLLM's optimal router: strong calls go first to prompts only the strong model gets right."""
    n = len(weak)
    wins = float(np.sum((strong - weak).clip(min=0)))
    quality = (weak.sum() + np.minimum(shares * n, wins)) / n
    return Curve(shares, quality)


def two_model_summary(score: F64, weak: F64, strong: F64, points: int = 10) -> dict[str, object]:
    """Every two-model figure of one router's scores: APGR (RouteLLM grid and per prompt), CPT(20/50/80%),
    the curve with its PGR, the oracle's APGR on the same grid."""
    wq, sq = float(weak.mean()), float(strong.mean())
    curve = routellm_curve(score, weak, strong, points)
    fine = exact_curve(score, weak, strong)
    gap = sq - wq
    opt = oracle_curve(weak, strong, curve.share)
    return {
        "n": len(score),
        "weak_quality": wq,
        "strong_quality": sq,
        "apgr": apgr(curve, wq, sq),
        "apgr_fine": apgr(fine, wq, sq),
        "cpt20": cpt(curve, wq, sq, 0.2),
        "cpt50": cpt(curve, wq, sq, 0.5),
        "cpt80": cpt(curve, wq, sq, 0.8),
        "oracle_apgr": apgr(opt, wq, sq),
        "curve": [
            {"strong_share": float(x), "quality": float(y), "pgr": (float(y) - wq) / gap if gap else None}
            for x, y in zip(curve.share, curve.quality, strict=True)
        ],
    }


# ---- many models: cost in USD against quality ------------------------------------------------------


def route_by_target(prob: F64, price_order: NDArray[np.intp], target: float) -> NDArray[np.intp]:
    """Per prompt, the cheapest model (in `price_order`) whose predicted P(acceptable) >= target; when none
    clears it, the model with the highest prediction."""
    p = prob[:, price_order]
    ok = p >= target
    first = np.argmax(ok, axis=1)
    best = np.argmax(p, axis=1)
    pick = np.where(ok.any(axis=1), first, best)
    return np.asarray(price_order[pick], dtype=np.intp)


def route_by_cost_weight(
    prob: F64, price_order: NDArray[np.intp], price: F64, weight: float
) -> NDArray[np.intp]:
    """Per prompt, the candidate (of `price_order`) maximising P(acceptable) - weight * price, `price`
    being each model's expected cost relative to the most expensive candidate; ties go to the cheaper."""
    p = prob[:, price_order] - weight * price[price_order][None, :]
    return np.asarray(price_order[np.argmax(p, axis=1)], dtype=np.intp)


def frontier(
    prob: F64,
    price_order: NDArray[np.intp],
    scores: F64,
    costs: F64,
    targets: F64,
    policy: str = "target",
    price: F64 | None = None,
) -> list[dict[str, float]]:
    """Mean cost and quality at each knob value: the quality target of `route_by_target`, or (policy
    "cost_weight") the weight of `route_by_cost_weight`."""
    rows = np.arange(len(scores))
    out = []
    rel = np.zeros(scores.shape[1]) if price is None else price / price[price_order].max()
    for t in targets:
        if policy == "cost_weight":
            pick = route_by_cost_weight(prob, price_order, rel, float(t))
        else:
            pick = route_by_target(prob, price_order, float(t))
        out.append(
            {
                "target": float(t),
                "cost": float(costs[rows, pick].mean()),
                "quality": float(scores[rows, pick].mean()),
            }
        )
    return out


def pareto(points: list[dict[str, float]]) -> list[dict[str, float]]:
    """The points no other point beats on both cost (lower) and quality (higher), by cost."""
    out: list[dict[str, float]] = []
    for p in sorted(points, key=lambda d: (d["cost"], -d["quality"])):
        if not out or p["quality"] > out[-1]["quality"]:
            out.append(p)
    return out


def cost_to_reach(points: list[dict[str, float]], quality: float) -> dict[str, float] | None:
    """The cheapest point whose quality >= `quality` (None when no point reaches it)."""
    ok = [p for p in points if p["quality"] >= quality - 1e-12]
    return min(ok, key=lambda d: d["cost"]) if ok else None


def single_model_hull(cost: F64, quality: F64, target: float) -> float | None:
    """The least mean cost at which mixing single models at random (two at most) reaches `target`
    quality: the upper convex hull of the single models' (cost, quality) points."""
    best: float | None = None
    for i in range(len(cost)):
        if quality[i] >= target:
            best = cost[i] if best is None else min(best, float(cost[i]))
        for j in range(len(cost)):
            if quality[i] < target <= quality[j]:
                w = (target - quality[i]) / (quality[j] - quality[i])
                c = float((1 - w) * cost[i] + w * cost[j])
                best = c if best is None else min(best, c)
    return None if best is None else float(best)


def oracle_choice(scores: F64, costs: F64) -> NDArray[np.intp]:
    """The per-prompt oracle: the best-scoring model for each prompt, the cheapest among ties."""
    key = scores - costs / (costs.max() + 1.0) * 1e-6  # costs only break ties of the score
    return np.asarray(np.argmax(key, axis=1), dtype=np.intp)
