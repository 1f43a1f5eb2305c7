"""`architect router eval`: routers' predictions on data they never learned from, and their figures.

How predictions are made (never from a prompt's own outcome):
- `folds` (cross-fitting): the rows are shuffled with the seed and cut into K folds; each fold is
  predicted by a router fitted on the other K-1 (for two models, a prompt's score is then its rank
  within its fold: `fold_ranks`);
- `train`: fitted on the training file, predicting the test file; where a knob must be chosen (the
  RouterBench quality target or cost weight), it is chosen on out-of-fold predictions of the training
  file (K folds, three different fold splits stacked, so that one split's luck does not pick it);
- `replay`: the rows shuffled with the seed (the MMLU file is sorted by subject); the router is fitted
  on the first `warmup` outcomes, then predicts each following prompt before learning its outcome; the
  figures cover the rows after the warm-up.

Every run also evaluates the baselines on the same rows: the per-tag counter, and random routing (for
two models the random router; for many models random mixing of single models, computed exactly); a
RouterBench file also the TF-IDF + logistic-regression router. Intervals are 95% percentile bootstraps
over the evaluated prompts (the predictions held fixed, `bootstrap` resamples).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from architect.routing import metrics as M
from architect.routing.data import Outcomes
from architect.routing.routers import Prompts, make_router, names

__all__ = ["EvalOptions", "evaluate"]

F64 = NDArray[np.float64]
Mode = Literal["folds", "train", "replay"]
TARGETS = np.round(np.linspace(0.0, 1.0, 1001), 3).astype(np.float64)
CHOICE_REPEATS = 3  # K-fold cross-fittings of the training file, stacked, that choose a knob
WITHIN = 0.01  # "within 1 point" of the best single model's quality


@dataclass(frozen=True)
class EvalOptions:
    mode: Mode = "folds"
    folds: int = 5
    warmup: int = 500
    seed: int = 0
    routers: tuple[str, ...] = ("text",)
    bootstrap: int = 500
    points: int = 10  # RouteLLM's threshold grid: deciles of the score
    policy: str = "target"  # the many-model policy of the headline figure (both are reported)


def _prompts(o: Outcomes, use_tags: bool) -> Prompts:
    return Prompts(list(o.prompts), list(o.tags) if use_tags else [""] * o.n)


def _fold_ids(n: int, k: int, seed: int) -> NDArray[np.intp]:
    return np.asarray(np.random.default_rng(seed).permutation(n) % k, dtype=np.intp)


def crossfit(name: str, p: Prompts, scores: F64, k: int, seed: int) -> F64:
    """Out-of-fold predictions for every row."""
    fold = _fold_ids(len(p), k, seed)
    out = np.zeros(scores.shape)
    for f in range(k):
        fit, held = np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]
        r = make_router(name, seed + f)
        r.fit(p.take(fit), scores[fit])
        out[held] = r.predict(p.take(held))
    return out


def fold_ranks(pred: F64, k: int, seed: int) -> F64:
    """Two models, cross-fitted: each prompt's strong-win score replaced by its rank among its own fold's
    prompts (ties share their mean rank), scaled to [0, 1]. K routers fitted on different rows differ by
    offsets that would otherwise order whole folds (and, as a fold's outcomes pull its router the other
    way, bias the pooled curve below random); ranked, each router only orders the prompts it held out."""
    score = pred[:, 1] - pred[:, 0]
    fold = _fold_ids(len(score), k, seed)
    out = np.zeros(len(score))
    for f in range(k):
        held = np.nonzero(fold == f)[0]
        _, inverse, counts = np.unique(score[held], return_inverse=True, return_counts=True)
        upper = np.cumsum(counts)
        mean_rank = upper - (counts + 1) / 2.0  # 0-based mean rank of each distinct value
        out[held] = (mean_rank[inverse] + 0.5) / len(held)
    return np.stack([np.zeros(len(score)), out], axis=1)


def train_test(name: str, tp: Prompts, ts: F64, p: Prompts, seed: int) -> F64:
    r = make_router(name, seed)
    r.fit(tp, ts)
    return r.predict(p)


def replay(name: str, p: Prompts, scores: F64, order: NDArray[np.intp], warmup: int, seed: int) -> F64:
    """Predictions for order[warmup:], each made before its own outcome is learned."""
    r = make_router(name, seed)
    first = order[:warmup]
    r.fit(p.take(first), scores[first])
    rest = order[warmup:]
    out = np.zeros((len(rest), scores.shape[1]))
    for j, i in enumerate(rest):
        one = p.take(np.array([i]))
        out[j] = r.predict(one)[0]
        r.update(one, scores[i : i + 1])
    return out


def _ci(stat: Callable[[NDArray[np.intp]], float | None], n: int, b: int, seed: int) -> list[float] | None:
    """95% percentile bootstrap interval of `stat` over resampled row indices."""
    if b <= 0:
        return None
    rng = np.random.default_rng(seed + 7919)
    vals = [v for _ in range(b) if (v := stat(rng.integers(0, n, n))) is not None]
    if not vals:
        return None
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return [float(lo), float(hi)]


def _two_model(pred: F64, scores: F64, opts: EvalOptions) -> dict[str, Any]:
    score = pred[:, 1] - pred[:, 0]
    w, s = scores[:, 0], scores[:, 1]
    out = M.two_model_summary(score, w, s, opts.points)

    def stat(key: str) -> Callable[[NDArray[np.intp]], float | None]:
        def f(ix: NDArray[np.intp]) -> float | None:
            wq, sq = float(w[ix].mean()), float(s[ix].mean())
            if key == "apgr_fine":
                return M.apgr(M.exact_curve(score[ix], w[ix], s[ix]), wq, sq)
            c = M.routellm_curve(score[ix], w[ix], s[ix], opts.points)
            if key == "apgr":
                return M.apgr(c, wq, sq)
            return M.cpt(c, wq, sq, {"cpt50": 0.5, "cpt80": 0.8}[key])

        return f

    out["ci"] = {
        k: _ci(stat(k), len(score), opts.bootstrap, opts.seed)
        for k in ("apgr", "apgr_fine", "cpt50", "cpt80")
    }
    return out


def _paired(pred: F64, base: F64, scores: F64, opts: EvalOptions) -> list[float] | None:
    """95% bootstrap interval of APGR(pred) - APGR(base) on the same resampled prompts."""
    a, b = pred[:, 1] - pred[:, 0], base[:, 1] - base[:, 0]
    w, s = scores[:, 0], scores[:, 1]

    def diff(ix: NDArray[np.intp]) -> float | None:
        wq, sq = float(w[ix].mean()), float(s[ix].mean())
        x = M.apgr(M.routellm_curve(a[ix], w[ix], s[ix], opts.points), wq, sq)
        y = M.apgr(M.routellm_curve(b[ix], w[ix], s[ix], opts.points), wq, sq)
        return None if x is None or y is None else x - y

    return _ci(diff, len(a), opts.bootstrap, opts.seed)


def _hull_order(costs: F64, quality: F64) -> NDArray[np.intp]:
    """The candidates by price: the models on the lower-cost convex hull of (mean cost, quality); a model
    under the hull is beaten by mixing two hull models at random."""
    order = [int(i) for i in np.argsort(costs, kind="stable")]
    hull: list[int] = []
    for i in order:
        if hull and quality[i] <= quality[hull[-1]]:
            continue
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b lies under the segment a→i: drop it
            if (quality[b] - quality[a]) * (costs[i] - costs[a]) <= (quality[i] - quality[a]) * (
                costs[b] - costs[a]
            ):
                hull.pop()
            else:
                break
        hull.append(i)
    return np.asarray(hull, dtype=np.intp)


POLICIES: dict[str, F64] = {
    # the quality target a candidate must reach (section 1's `quality_target`)
    "target": TARGETS,
    # the weight of price against P(acceptable) (section 1's `cost_weight`), price relative to the dearest
    "cost_weight": np.round(np.concatenate(([0.0], np.geomspace(1e-3, 2.0, 240))), 6).astype(np.float64),
}


def _route(
    pred: F64, o: Outcomes, cand: NDArray[np.intp], price: F64, policy: str, knob: float
) -> tuple[F64, F64]:
    assert o.costs is not None
    if policy == "cost_weight":
        pick = M.route_by_cost_weight(pred, cand, price / price[cand].max(), knob)
    else:
        pick = M.route_by_target(pred, cand, knob)
    rows = np.arange(o.n)
    return o.costs[rows, pick], o.scores[rows, pick]


def _points(
    pred: F64, o: Outcomes, cand: NDArray[np.intp], price: F64, policy: str
) -> list[dict[str, float]]:
    assert o.costs is not None
    return M.frontier(pred, cand, o.scores, o.costs, POLICIES[policy], policy, price)


def _choose(pred: F64, o: Outcomes, cand: NDArray[np.intp], price: F64, best: int, policy: str) -> float:
    """On training rows: the cheapest knob reaching the best model's quality - 1 point (the
    highest-quality knob when none does)."""
    points = _points(pred, o, cand, price, policy)
    goal = float(o.scores[:, best].mean()) - WITHIN
    hit = M.cost_to_reach(points, goal)
    return (hit or max(points, key=lambda d: (d["quality"], -d["cost"])))["target"]


def _many_models(
    pred: F64,
    o: Outcomes,
    cand: NDArray[np.intp],
    price: F64,
    best: int,
    opts: EvalOptions,
    chosen: dict[str, float] | None,
) -> dict[str, Any]:
    """Per policy: the Pareto frontier of (cost, quality), the cheapest point within 1 point of the best
    model chosen on these rows (optimistic), and the knob chosen on train applied here."""
    assert o.costs is not None
    best_cost = float(o.costs[:, best].mean())
    best_q = float(o.scores[:, best].mean())
    out: dict[str, Any] = {}
    for policy in POLICIES:
        points = _points(pred, o, cand, price, policy)
        reach = M.cost_to_reach(points, best_q - WITHIN)
        fig: dict[str, Any] = {
            "frontier": [{**p, "knob": p.pop("target")} for p in M.pareto(points)],
            "within_1pt_test_chosen": None
            if reach is None
            else {**reach, "cost_share": reach["cost"] / best_cost},
        }
        if chosen is not None:
            cost, qual = _route(pred, o, cand, price, policy, chosen[policy])

            def share(ix: NDArray[np.intp], cost: F64 = cost) -> float:
                return float(cost[ix].mean() / o.costs[ix, best].mean())  # type: ignore[index]

            def gap(ix: NDArray[np.intp], qual: F64 = qual) -> float:
                return float(qual[ix].mean() - o.scores[ix, best].mean())

            fig["within_1pt_train_chosen"] = {
                "knob": chosen[policy],
                "cost": float(cost.mean()),
                "cost_share": float(cost.mean()) / best_cost,
                "cost_share_ci": _ci(share, o.n, opts.bootstrap, opts.seed),
                "quality": float(qual.mean()),
                "quality_minus_best": float(qual.mean()) - best_q,
                "quality_minus_best_ci": _ci(gap, o.n, opts.bootstrap, opts.seed),
                "within_1pt": bool(qual.mean() >= best_q - WITHIN - 1e-12),
            }
        out[policy] = fig
    return out


def evaluate(data: Outcomes, opts: EvalOptions, train: Outcomes | None = None) -> dict[str, Any]:
    """Every figure of one run: the asked routers and the baselines, on the same rows."""
    two = len(data.models) == 2
    use_tags = data.has_tags and (train is None or train.has_tags)
    routers = names([*opts.routers, *(["random"] if two else []), "counter", *([] if two else ["tfidf-lr"])])
    p = _prompts(data, use_tags)
    rows = np.arange(data.n)
    result: dict[str, Any] = {
        "data": data.path,
        "format": data.kind,
        "mode": opts.mode,
        "models": list(data.models),
        "dropped": data.dropped,
        "excluded": data.excluded,
        "tags": use_tags,
        "seed": opts.seed,
    }
    preds: dict[str, F64] = {}
    if opts.mode == "replay":
        order = np.random.default_rng(opts.seed).permutation(data.n)
        if not 0 < opts.warmup < data.n:
            raise ValueError("warmup")
        rows = order[opts.warmup :]
        result["warmup"] = opts.warmup
        for r in routers:
            preds[r] = replay(r, p, data.scores, order, opts.warmup, opts.seed)
    elif opts.mode == "train":
        assert train is not None
        tp = _prompts(train, use_tags)
        result["train"] = {
            "data": train.path,
            "n": train.n,
            "dropped": train.dropped,
            "excluded": train.excluded,
        }
        for r in routers:
            preds[r] = train_test(r, tp, train.scores, p, opts.seed)
    else:
        result["folds"] = opts.folds
        for r in routers:
            preds[r] = crossfit(r, p, data.scores, opts.folds, opts.seed)
            if two:
                preds[r] = fold_ranks(preds[r], opts.folds, opts.seed)
    ev = data.take(rows)
    result["n"] = ev.n
    figures: dict[str, Any] = {}
    if two:
        for r in routers:
            figures[r] = _two_model(preds[r], ev.scores, opts)
        for r in routers:
            if r != "counter":
                figures[r]["apgr_minus_counter_ci"] = _paired(preds[r], preds["counter"], ev.scores, opts)
        if ev.costs is not None:
            result["mean_cost"] = {
                m: float(c) for m, c in zip(data.models, ev.costs.mean(axis=0), strict=True)
            }
        main = figures[routers[0]]
        result.update(
            {k: main[k] for k in ("apgr", "apgr_fine", "cpt50", "cpt80", "weak_quality", "strong_quality")}
        )
    else:
        assert ev.costs is not None
        fitted = train if train is not None else ev
        assert fitted.costs is not None
        price = fitted.costs.mean(axis=0)
        order = _hull_order(price, fitted.scores.mean(axis=0))
        best = int(np.argmax(fitted.scores.mean(axis=0)))
        cost, qual = ev.costs.mean(axis=0), ev.scores.mean(axis=0)
        best_cost = float(cost[best])
        result["best_model"] = data.models[best]
        result["candidates"] = [data.models[i] for i in order]
        result["single_models"] = [
            {"model": m, "cost": float(c), "quality": float(q), "cost_share": float(c) / best_cost}
            for m, c, q in zip(data.models, cost, qual, strict=True)
        ]
        oc = M.oracle_choice(ev.scores, ev.costs)
        orows = np.arange(ev.n)
        ocost = float(ev.costs[orows, oc].mean())
        result["oracle"] = {
            "cost": ocost,
            "quality": float(ev.scores[orows, oc].mean()),
            "cost_share": ocost / best_cost,
        }
        mix = M.single_model_hull(cost, qual, float(qual[best]) - WITHIN)
        result["random_mix_within_1pt"] = (
            None if mix is None else {"cost": mix, "cost_share": mix / best_cost}
        )
        for r in routers:
            chosen = None
            if train is not None:
                tp = _prompts(train, use_tags)
                oof = np.concatenate(
                    [
                        crossfit(r, tp, train.scores, opts.folds, opts.seed + 1000 * j)
                        for j in range(CHOICE_REPEATS)
                    ]
                )
                stacked = train.take(np.tile(np.arange(train.n), CHOICE_REPEATS))
                chosen = {pol: _choose(oof, stacked, order, price, best, pol) for pol in POLICIES}
            figures[r] = _many_models(preds[r], ev, order, price, best, opts, chosen)
        main = figures[routers[0]][opts.policy]
        result["policy"] = opts.policy
        result["within_1pt"] = main.get("within_1pt_train_chosen") or main["within_1pt_test_chosen"]
    result["routers"] = figures
    result["router"] = routers[0]
    return result
