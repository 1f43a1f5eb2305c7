"""What the `auto` route asks of a quality model: P(acceptable) per candidate for one call.

`QualityModel` is the interface (the learner, `routing.learner`, implements it: Beta means per model
group and task type plus per-candidate online logistic regression on the prompt's hashed features,
synced with the store). `PriorModel` is the stand-in when no learner is wired: it answers the prior.

`Features` is one prompt's hashed feature row: the column indices (`int32`) and values (`float32`) of
`features.HashedFeatures.hashed_row`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:  # numpy is imported only where features are made (a gateway without auto groups: never)
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["PRIOR_ONE", "Features", "OutcomeCounts", "PriorModel", "QualityModel", "price_prior"]

Features: TypeAlias = "tuple[NDArray[np.int32], NDArray[np.float32]]"

PRIOR_LOW, PRIOR_HIGH, PRIOR_ONE = 0.55, 0.85, 0.7


class QualityModel(Protocol):
    """One per Runtime; holds the in-memory model, synced with the store."""

    def predict(
        self,
        x: Features | None,
        *,
        project: str | None,
        task_type: str,
        candidates: Sequence[str],
        prior: Mapping[str, float],
    ) -> dict[str, float]:
        """P(acceptable) for each of `candidates` (model group names) on a prompt with features `x`
        (None: no text), in `project` (None: none) for `task_type`. `prior[c]` is the prior mean of
        candidate c (its price tier: `price_prior`)."""
        ...

    def record_features(self, request_id: str, x: Features) -> None:
        """Keep the features a decision was made on, for learning when the call's outcome arrives
        (a buffered write; never blocks the request)."""
        ...

    async def start(self) -> None:
        """Load what is known and start syncing (Runtime.start)."""
        ...

    async def aclose(self) -> None:
        """Stop syncing and write what is buffered (Runtime.stop)."""
        ...


@runtime_checkable
class OutcomeCounts(Protocol):
    """Optional: a model that can say how many outcomes it has per candidate (exploration picks the
    candidate with the fewest; without it, the one explored least in this process)."""

    def outcome_counts(
        self, *, project: str | None, task_type: str, candidates: Sequence[str]
    ) -> dict[str, int]: ...


def price_prior(candidates_by_price: Sequence[str]) -> dict[str, float]:
    """The prior mean of each candidate, by price tier: the candidates cheapest first get 0.55 ... 0.85
    linearly (one candidate: 0.7)."""
    n = len(candidates_by_price)
    if n == 1:
        return {candidates_by_price[0]: PRIOR_ONE}
    step = (PRIOR_HIGH - PRIOR_LOW) / max(n - 1, 1)
    return {c: round(PRIOR_LOW + i * step, 6) for i, c in enumerate(candidates_by_price)}


class PriorModel:
    """No learning: P(acceptable) is the prior. Used while no learner is wired."""

    def predict(
        self,
        x: Features | None,
        *,
        project: str | None,
        task_type: str,
        candidates: Sequence[str],
        prior: Mapping[str, float],
    ) -> dict[str, float]:
        return {c: prior.get(c, PRIOR_ONE) for c in candidates}

    def record_features(self, request_id: str, x: Features) -> None:
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
