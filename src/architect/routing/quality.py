"""The quality figures of model groups, from outcome counts (pure Python: no numpy, so the API can
compute them without the router's model).

Each (model group, task type) has a Beta posterior of the share of its calls that were acceptable:
its prior is the group's price-tier prior mean `p0` with the weight of `PRIOR_WEIGHT` outcomes
(Beta(2 p0, 2 (1 - p0))), updated by the outcomes seen (n calls, their outcomes summing to s; an
outcome may be fractional): Beta(2 p0 + s, 2 (1 - p0) + n - s). `mean` is its mean; the interval is
its central 90% (the 5% and 95% quantiles), exact: the regularised incomplete beta function by its
continued fraction (modified Lentz), inverted by bisection to 1e-6.

With a project, the project's own counts are shrunk towards the global posterior mean m with the
weight of `SHRINK` outcomes: Beta(5 m + s_p, 5 (1 - m) + n_p - s_p)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "DEFAULT_PRIOR",
    "PRIOR_WEIGHT",
    "SHRINK",
    "QualityRow",
    "beta_cdf",
    "beta_interval",
    "beta_quantile",
    "posterior",
    "quality_rows",
]

PRIOR_WEIGHT = 2.0  # the price-tier prior counts as this many outcomes
SHRINK = 5.0  # a project's counts are shrunk to the global mean with this many outcomes' weight
DEFAULT_PRIOR = 0.7  # the prior mean of a group no auto route has priced yet (one candidate's)
INTERVAL = 0.9
_EPS = 1e-14


@dataclass(frozen=True, slots=True)
class QualityRow:
    """One model group's quality on one task type (in one project when `project` is set)."""

    model_group: str
    task_type: str
    project: str | None
    n: int  # outcomes
    successes: float  # their sum (outcomes may be fractional)
    mean: float  # the posterior mean
    low: float  # the 90% interval
    high: float
    prior: float  # the prior mean (price tier)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cf(x: float, a: float, b: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 500):
        m2 = 2 * m
        # the even step, then the odd step
        num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c if abs(1.0 + num / c) > tiny else tiny
        f *= d * c
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c if abs(1.0 + num / c) > tiny else tiny
        step = d * c
        f *= step
        if abs(step - 1.0) < 1e-12:
            break
    return f


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b): P(X <= x) for X ~ Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    front = math.exp(log_front)
    # the fraction converges fast for x < (a + 1) / (a + b + 2); else use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a)
    if x < (a + 1.0) / (a + b + 2.0):
        return min(1.0, max(0.0, front * _cf(x, a, b) / a))
    return min(1.0, max(0.0, 1.0 - front * _cf(1.0 - x, b, a) / b))


def beta_quantile(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b), by bisection of `beta_cdf` to 1e-6."""
    lo, hi = 0.0, 1.0
    while hi - lo > 1e-6:
        mid = 0.5 * (lo + hi)
        if beta_cdf(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def beta_interval(a: float, b: float, level: float = INTERVAL) -> tuple[float, float]:
    """The central `level` interval of Beta(a, b)."""
    tail = (1.0 - level) / 2.0
    return beta_quantile(tail, a, b), beta_quantile(1.0 - tail, a, b)


def _clip(p: float) -> float:
    return min(1.0 - 1e-6, max(1e-6, p))


def posterior(n: float, s: float, prior: float, weight: float = PRIOR_WEIGHT) -> tuple[float, float]:
    """The Beta posterior's (a, b) after n outcomes summing to s, from a prior mean with `weight`."""
    p = _clip(prior)
    s = min(max(s, 0.0), n)
    return weight * p + s + _EPS, weight * (1.0 - p) + (n - s) + _EPS


def _row(
    group: str, task_type: str, project: str | None, n: int, s: float, prior: float, base: float | None
) -> QualityRow:
    a, b = posterior(n, s, base, SHRINK) if base is not None else posterior(n, s, prior)
    low, high = beta_interval(a, b)
    return QualityRow(group, task_type, project, n, round(s, 6), a / (a + b), low, high, prior)


def quality_rows(
    counts: Iterable[Mapping[str, Any]],
    priors: Mapping[str, float],
    *,
    project: str | None = None,
    project_counts: Iterable[Mapping[str, Any]] = (),
) -> list[QualityRow]:
    """The quality table: per (model group, task type) of `counts` (rows of `model_group`,
    `task_type`, `n`, `sum`, as `store.routing.quality` gives), the posterior from the group's prior
    (`priors`, else `DEFAULT_PRIOR`). With `project`, the rows of `project_counts` (that project's
    counts), shrunk to the global posterior means of `counts`."""
    glob: dict[tuple[str, str], tuple[int, float]] = {
        (str(r["model_group"]), str(r["task_type"] or "unknown")): (int(r["n"]), float(r["sum"]))
        for r in counts
        if r.get("model_group") is not None
    }
    if project is None:
        return [
            _row(g, t, None, n, s, priors.get(g, DEFAULT_PRIOR), None)
            for (g, t), (n, s) in sorted(glob.items())
        ]
    out = []
    for r in project_counts:
        if r.get("model_group") is None:
            continue
        g, t = str(r["model_group"]), str(r["task_type"] or "unknown")
        p0 = priors.get(g, DEFAULT_PRIOR)
        gn, gs = glob.get((g, t), (0, 0.0))
        a, b = posterior(gn, gs, p0)
        out.append(_row(g, t, project, int(r["n"]), float(r["sum"]), p0, a / (a + b)))
    return sorted(out, key=lambda q: (q.model_group, q.task_type))
