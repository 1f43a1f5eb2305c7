"""DDSketch relative-error bound against exact percentiles, merging, and serialisation."""

from __future__ import annotations

import random

import pytest
from ddsketch import DDSketch

from architect.metrics.sketch import RELATIVE_ACCURACY, Sketch


def _exact(sorted_values: list[float], q: float) -> float:
    return sorted_values[int(q * (len(sorted_values) - 1))]


@pytest.mark.parametrize("dist", ["lognormal", "uniform", "bimodal", "heavy"])
def test_quantiles_within_stated_relative_error(dist: str) -> None:
    rng = random.Random(7)
    gen = {
        "lognormal": lambda: rng.lognormvariate(5, 1.2),
        "uniform": lambda: rng.uniform(1, 5000),
        "bimodal": lambda: rng.gauss(80, 5) if rng.random() < 0.7 else rng.gauss(2500, 300),
        "heavy": lambda: rng.paretovariate(1.1) * 10,
    }[dist]
    values = [max(0.01, gen()) for _ in range(20_000)]
    exact = sorted(values)
    # one sketch per "minute" of 200 values, merged through bytes like the rollups do
    merged = Sketch()
    for i in range(0, len(values), 200):
        merged.merge_bytes(Sketch().extend(values[i : i + 200]).to_bytes())
    assert merged.count == len(values)
    lib = DDSketch(RELATIVE_ACCURACY)
    for v in values:
        lib.add(v)
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        got, x = merged.quantile(q), _exact(exact, q)
        assert got is not None
        assert abs(got - x) <= RELATIVE_ACCURACY * x + 1e-9, (q, got, x)
        assert got == pytest.approx(lib.get_quantile_value(q), rel=1e-12)


def test_empty_and_zero_values() -> None:
    assert Sketch().quantile(0.5) is None and Sketch().to_bytes() is None
    s = Sketch().extend([0.0, 0.0, 0.0, 10.0])
    assert s.quantile(0.5) == 0.0
    assert abs((s.quantile(1.0) or 0) - 10.0) <= 0.1


def test_parse_budget() -> None:
    from architect.access.keys import parse_budget
    from architect.errors import InvalidRequest

    assert parse_budget("50/month") == (50.0, "month") and parse_budget("$5/day") == (5.0, "day")
    assert parse_budget("7") == (7.0, "month")
    with pytest.raises(InvalidRequest, match="budget"):
        parse_budget("lots")
