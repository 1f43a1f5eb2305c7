"""Routers: per prompt, the predicted probability that each candidate model's answer is acceptable.

A router is fitted on outcomes (`fit`), predicts for prompts (`predict` → an (n, models) array of
P(acceptable)) and learns from one more outcome (`update`, as the gateway will from feedback). For a
weak/strong pair the strong-win score is P(strong) - P(weak): the expected gain of the strong call.

    random      uniform noise: the baseline every run reports (APGR 0.5 in expectation)
    counter     per tag (subject, task type) and model, the Beta posterior mean of the outcomes seen,
                its prior centred on the model's overall mean with the weight of `PRIOR` outcomes
    text        logistic regression per model on the prompt's hashed n-gram and shape features
                (features.HashedFeatures): batch L-BFGS when fitted, AdaGrad steps per outcome
    text+tag    the same, on top of the counter: the tag's posterior log-odds is each row's offset, so
                the text model learns what the tag does not already say
    embed, embed+tag   `text` / `text+tag` plus the static embedding (the `semantic` extra)
    tfidf-lr    the classic comparison: TF-IDF (vocabulary fitted on the training prompts) and an L2
                logistic regression per model (C = 1), refitted when the outcomes seen grow by half
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from architect.routing.features import HashedFeatures, Sparse, TfidfFeatures
from architect.routing.linear import OnlineLogistic, fit_logistic, sigmoid

__all__ = [
    "ROUTERS",
    "PooledRouter",
    "Prompts",
    "RandomRouter",
    "Router",
    "TagCounter",
    "TextRouter",
    "TfidfRouter",
    "make_router",
]

F64 = NDArray[np.float64]
PRIOR = 2.0
_CLIP = 1e-3


@dataclass
class Prompts:
    """Prompts with their tags; hashed features are computed once per featuriser and sliced by `take`."""

    texts: list[str]
    tags: list[str]
    _cache: dict[str, Sparse] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def features(self, key: str, fe: HashedFeatures) -> Sparse:
        """The rows of `fe` (cached under `key`: the featuriser needs no fitting)."""
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = fe.transform(self.texts)
        return got

    def take(self, index: NDArray[np.intp]) -> Prompts:
        return Prompts(
            [self.texts[i] for i in index],
            [self.tags[i] for i in index],
            {k: v.take(index) for k, v in self._cache.items()},
        )


class Router(Protocol):
    name: str

    def fit(self, prompts: Prompts, scores: F64) -> None:
        """Learn from outcomes: `scores` is (n, models), 1 = acceptable."""

    def predict(self, prompts: Prompts) -> F64:
        """P(acceptable), (n, models)."""

    def update(self, prompts: Prompts, scores: F64) -> None:
        """Learn from more outcomes, after `fit`."""


def _logit(p: F64) -> F64:
    q = np.clip(p, _CLIP, 1 - _CLIP)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


class RandomRouter:
    """Uniform random predictions (seeded)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.m = 2

    def fit(self, prompts: Prompts, scores: F64) -> None:
        self.m = scores.shape[1]

    def predict(self, prompts: Prompts) -> F64:
        return self.rng.random((len(prompts), self.m))

    def update(self, prompts: Prompts, scores: F64) -> None:
        return None


class TagCounter:
    """Beta posterior mean of each model's score per tag, shrunk to the model's overall mean."""

    name = "counter"

    def __init__(self, prior: float = PRIOR) -> None:
        self.prior = prior
        self.sums: dict[str, F64] = {}
        self.counts: dict[str, float] = {}
        self.total = np.zeros(0)
        self.n = 0.0

    def fit(self, prompts: Prompts, scores: F64) -> None:
        self.sums, self.counts = {}, {}
        self.total, self.n = np.zeros(scores.shape[1]), 0.0
        self.update(prompts, scores)

    def update(self, prompts: Prompts, scores: F64) -> None:
        for tag, row in zip(prompts.tags, scores, strict=True):
            self.sums[tag] = self.sums.get(tag, 0.0) + row
            self.counts[tag] = self.counts.get(tag, 0.0) + 1.0
        self.total = self.total + scores.sum(axis=0)
        self.n += len(scores)

    def posterior(self, tag: str) -> F64:
        """The posterior mean for one tag (the overall mean, itself shrunk to 1/2, for an unseen tag)."""
        base = (self.total + 1.0) / (self.n + 2.0)
        k = self.counts.get(tag)
        if k is None:
            return np.asarray(base, dtype=np.float64)
        return np.asarray((self.sums[tag] + self.prior * base) / (k + self.prior), dtype=np.float64)

    def predict(self, prompts: Prompts) -> F64:
        if not len(prompts):
            return np.zeros((0, len(self.total)))
        return np.stack([self.posterior(t) for t in prompts.tags])


class TextRouter:
    """Logistic regression per model on hashed text features, optionally on top of the tag counter."""

    def __init__(self, use_tags: bool = False, embed: bool = False, l2: float = 1.0, lr: float = 0.1) -> None:
        self.name = ("embed" if embed else "text") + ("+tag" if use_tags else "")
        self.fe = HashedFeatures(embed=embed)
        self.key = self.name.split("+")[0]
        self.use_tags = use_tags
        self.counter = TagCounter()
        self.l2, self.lr = l2, lr
        self.models: list[OnlineLogistic] = []

    def _offset(self, prompts: Prompts, m: int) -> F64:
        if not self.use_tags:
            return np.zeros((len(prompts), m))
        return _logit(self.counter.predict(prompts))

    def fit(self, prompts: Prompts, scores: F64) -> None:
        x = prompts.features(self.key, self.fe)
        m = scores.shape[1]
        self.counter.fit(prompts, scores)
        off = self._offset(prompts, m)
        self.models = [
            OnlineLogistic(
                self.fe.dim, lr=self.lr, init=fit_logistic(x, scores[:, j], l2=self.l2, offset=off[:, j])
            )
            for j in range(m)
        ]

    def predict(self, prompts: Prompts) -> F64:
        x = prompts.features(self.key, self.fe)
        off = self._offset(prompts, len(self.models))
        return np.stack([lm.predict(x, off[:, j]) for j, lm in enumerate(self.models)], axis=1)

    def update(self, prompts: Prompts, scores: F64) -> None:
        x = prompts.features(self.key, self.fe)
        off = self._offset(prompts, len(self.models))
        for i in range(len(prompts)):
            idx, val = x.row(i)
            for j, lm in enumerate(self.models):
                lm.update(idx, val, float(scores[i, j]), float(off[i, j]))
        self.counter.update(prompts, scores)


class PooledRouter:
    """For many models: one text model of the prompt's difficulty, learned from every model's outcomes
    (the mean score), and per model a calibration P_m = sigmoid(a_m + b_m * difficulty) fitted on
    out-of-fold difficulties (5 folds), so the text model learns from all the outcomes of a prompt."""

    name = "text-pooled"

    def __init__(self, l2: float = 1.0, lr: float = 0.1, folds: int = 5) -> None:
        self.fe = HashedFeatures()
        self.l2, self.lr, self.folds = l2, lr, folds
        self.difficulty = OnlineLogistic(self.fe.dim, lr=lr)
        self.calibration = np.zeros((0, 2))

    def fit(self, prompts: Prompts, scores: F64) -> None:
        x = prompts.features("text", self.fe)
        mean = scores.mean(axis=1)
        fold = np.arange(x.n) % self.folds
        d = np.zeros(x.n)
        for f in range(self.folds):
            a, b = np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]
            th = fit_logistic(x.take(a), mean[a], l2=self.l2)
            d[b] = x.take(b).dot(th[:-1]) + th[-1]
        self.difficulty = OnlineLogistic(self.fe.dim, lr=self.lr, init=fit_logistic(x, mean, l2=self.l2))
        one = Sparse(np.arange(x.n + 1, dtype=np.int64), np.zeros(x.n, dtype=np.int64), d, 1)
        cal = [fit_logistic(one, scores[:, j], l2=1e-3) for j in range(scores.shape[1])]
        self.calibration = np.array([[c[1], c[0]] for c in cal])

    def predict(self, prompts: Prompts) -> F64:
        x, th = prompts.features("text", self.fe), self.difficulty.theta
        d = x.dot(th[:-1]) + th[-1]  # the difficulty's log-odds, as the calibration was fitted on
        z = d[:, None] * self.calibration[None, :, 1] + self.calibration[None, :, 0]
        return sigmoid(z)

    def update(self, prompts: Prompts, scores: F64) -> None:
        x = prompts.features("text", self.fe)
        for i in range(len(prompts)):
            idx, val = x.row(i)
            self.difficulty.update(idx, val, float(scores[i].mean()))


class TfidfRouter:
    """TF-IDF + L2 logistic regression per model; `update` keeps the outcomes and refits on growth."""

    name = "tfidf-lr"

    def __init__(self, l2: float = 1.0, growth: float = 1.5) -> None:
        self.l2, self.growth = l2, growth
        self.texts: list[str] = []
        self.scores = np.zeros((0, 0))
        self.fitted_on = 0
        self.fe = TfidfFeatures()
        self.theta: list[F64] = []

    def _refit(self) -> None:
        self.fe = TfidfFeatures().fit(self.texts)
        x = self.fe.transform(self.texts)
        self.theta = [fit_logistic(x, self.scores[:, j], l2=self.l2) for j in range(self.scores.shape[1])]
        self.fitted_on = len(self.texts)

    def fit(self, prompts: Prompts, scores: F64) -> None:
        self.texts, self.scores = list(prompts.texts), scores.copy()
        self._refit()

    def predict(self, prompts: Prompts) -> F64:
        x = self.fe.transform(prompts.texts)
        return np.stack([sigmoid(x.dot(t[:-1]) + t[-1]) for t in self.theta], axis=1)

    def update(self, prompts: Prompts, scores: F64) -> None:
        self.texts.extend(prompts.texts)
        self.scores = np.concatenate((self.scores, scores))
        if len(self.texts) >= math.ceil(self.fitted_on * self.growth):
            self._refit()


def _text(tags: bool, embed: bool) -> Router:
    return TextRouter(use_tags=tags, embed=embed)


ROUTERS: dict[str, tuple[str, bool]] = {
    # name: (description, needs the semantic extra)
    "random": ("uniform random scores", False),
    "counter": ("per-tag Beta posterior of each model's outcomes", False),
    "text": ("logistic regression on hashed n-grams of the prompt", False),
    "text+tag": ("text features on top of the per-tag counter", False),
    "embed": ("text plus the static embedding", True),
    "embed+tag": ("text plus the static embedding, on top of the per-tag counter", True),
    "text-pooled": (
        "many models: one text model of difficulty from all outcomes, calibrated per model",
        False,
    ),
    "tfidf-lr": ("TF-IDF + logistic regression", False),
}


def make_router(name: str, seed: int = 0) -> Router:
    """A fresh router by name (see ROUTERS)."""
    if name == "random":
        return RandomRouter(seed)
    if name == "counter":
        return TagCounter()
    if name == "tfidf-lr":
        return TfidfRouter()
    if name == "text-pooled":
        return PooledRouter()
    if name in ("text", "text+tag", "embed", "embed+tag"):
        return _text(name.endswith("+tag"), name.startswith("embed"))
    raise KeyError(name)


def names(routers: Sequence[str]) -> list[str]:
    """Router names, each once, in order."""
    return list(dict.fromkeys(routers))
