"""Features, the logistic regression, the routers, and evaluation that never leaks a prompt's outcome."""

from __future__ import annotations

import math

import numpy as np
import pytest

from architect.routing import eval as ev
from architect.routing.data import Outcomes
from architect.routing.features import MAX_CHARS, HashedFeatures, Sparse, TfidfFeatures, cut, has_code
from architect.routing.linear import OnlineLogistic, fit_logistic, sigmoid
from architect.routing.routers import Prompts, TagCounter, TextRouter, make_router


def _outcomes(n: int, seed: int = 0, signal: bool = True) -> Outcomes:
    """Prompts where the weak model fails on 'hard' ones (when signal) and the strong one mostly not."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    prompts = [
        f"{'prove the theorem' if h else 'say hello'} number {i} {rng.integers(1e9)}"
        for i, h in enumerate(hard)
    ]
    weak = np.where(hard if signal else rng.random(n) < 0.4, rng.random(n) < 0.2, rng.random(n) < 0.9)
    strong = rng.random(n) < 0.9
    scores = np.stack([weak, strong], axis=1).astype(float)
    return Outcomes("mem.csv", "two-model", prompts, ["t"] * n, ("weak", "strong"), scores, None)


def test_cut_keeps_the_end_at_a_word() -> None:
    assert cut("short") == "short"
    long = "preamble " * 400 + "the actual question?"
    c = cut(long)
    assert len(c) <= MAX_CHARS and c.endswith("the actual question?") and c.startswith("preamble")
    assert has_code("```python\nx = 1\n```") and has_code("def f():\n    return 1\n")
    assert not has_code("What is the capital of France?")


def test_hashed_features_rows() -> None:
    fe = HashedFeatures(bits=10)
    x = fe.transform(["a b a", "", "x" * 5000])
    assert x.n == 3 and x.dim == (1 << 10) + 9 + 4  # hashed, shape and request columns
    idx, val = x.row(0)
    hashed = val[idx < (1 << 10)]
    assert np.linalg.norm(hashed) == pytest.approx(1.0)  # the n-gram part is L2-normalised
    assert fe.transform(["a b a"]).data.tolist() == val.tolist()  # stable across calls (CRC-32)


def test_sparse_products_match_dense() -> None:
    rng = np.random.default_rng(1)
    dense = rng.random((5, 7)) * (rng.random((5, 7)) < 0.4)
    rows = [(list(np.nonzero(r)[0]), list(r[np.nonzero(r)[0]])) for r in dense]
    x = Sparse.from_rows(rows, 7)
    w, r = rng.random(7), rng.random(5)
    assert np.allclose(x.dot(w), dense @ w) and np.allclose(x.tdot(r), dense.T @ r)
    sub = x.take(np.array([3, 0, 3]))
    assert np.allclose(sub.dot(w), dense[[3, 0, 3]] @ w)


def test_logistic_fit_is_the_minimum() -> None:
    rng = np.random.default_rng(2)
    dense = rng.normal(size=(200, 4))
    y = (sigmoid(dense @ np.array([2.0, -1.0, 0.0, 0.5]) + 0.3) > rng.random(200)).astype(float)
    x = Sparse.from_rows([(list(range(4)), list(r)) for r in dense], 4)
    theta = fit_logistic(x, y, l2=1.0)
    # the gradient vanishes at the optimum: X'(p - y) + l2 w = 0 and sum(p - y) = 0
    p = sigmoid(dense @ theta[:-1] + theta[-1])
    assert np.allclose(dense.T @ (p - y) + theta[:-1], 0, atol=1e-3) and abs((p - y).sum()) < 1e-3
    # one online step moves the prediction towards the label
    lm = OnlineLogistic(4, init=theta)
    idx, val = x.row(0)
    before = lm.predict(x.take(np.array([0])))[0]
    lm.update(idx, val, 1.0)
    assert lm.predict(x.take(np.array([0])))[0] > before


def test_tag_counter_is_a_shrunk_beta_posterior() -> None:
    c = TagCounter(prior=2.0)
    p = Prompts(["a", "b", "c"], ["x", "x", "y"])
    c.fit(p, np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]))
    base = (np.array([1.0, 2.0]) + 1) / (3 + 2)  # overall mean, shrunk to 1/2
    assert np.allclose(c.posterior("x"), (np.array([1.0, 2.0]) + 2 * base) / (2 + 2))
    assert np.allclose(c.posterior("unseen"), base)
    assert c.predict(Prompts([], [])).shape == (0, 2)


def test_text_router_learns_text_and_tags() -> None:
    o = _outcomes(600)
    p = Prompts(o.prompts, o.tags)
    r = TextRouter()
    r.fit(p.take(np.arange(400)), o.scores[:400])
    pred = r.predict(p.take(np.arange(400, 600)))
    hard = np.array(["prove" in t for t in o.prompts[400:]])
    assert pred[hard, 0].mean() < pred[~hard, 0].mean() - 0.3
    tf = make_router("tfidf-lr")
    tf.fit(p.take(np.arange(400)), o.scores[:400])
    assert tf.predict(p.take(np.arange(400, 600))).shape == (200, 2)
    assert isinstance(TfidfFeatures().fit(["aa bb", "bb cc"]).transform(["bb zz"]), Sparse)


class Memoriser:
    """Remembers each prompt's outcome and predicts it back exactly; knows nothing of unseen prompts."""

    name = "memo"

    def __init__(self) -> None:
        self.seen: dict[str, np.ndarray] = {}

    def fit(self, prompts: Prompts, scores: np.ndarray) -> None:
        self.seen = {}
        self.update(prompts, scores)

    def update(self, prompts: Prompts, scores: np.ndarray) -> None:
        self.seen.update(zip(prompts.texts, scores, strict=True))

    def predict(self, prompts: Prompts) -> np.ndarray:
        return np.stack([self.seen.get(t, np.array([0.5, 0.5])) for t in prompts.texts])


def test_memorising_router_scores_random_out_of_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    o = _outcomes(3000, signal=False)
    p = Prompts(o.prompts, o.tags)
    m = Memoriser()
    m.fit(p, o.scores)
    in_sample = ev._two_model(m.predict(p), o.scores, ev.EvalOptions(bootstrap=0))
    assert in_sample["apgr_fine"] > 0.95  # it knows every answer it has seen

    monkeypatch.setattr(
        ev, "make_router", lambda name, seed=0: Memoriser() if name == "memo" else make_router(name, seed)
    )
    for mode in ("folds", "replay"):
        res = ev.evaluate(o, ev.EvalOptions(mode=mode, routers=("memo",), bootstrap=0, warmup=200))
        assert res["apgr_fine"] == pytest.approx(0.5, abs=1e-9), mode  # every held-out score tied
        assert abs(res["routers"]["random"]["apgr"] - 0.5) < 0.1
        assert res["n"] == (3000 if mode == "folds" else 2800)


def test_evaluation_never_predicts_a_prompt_it_learned(monkeypatch: pytest.MonkeyPatch) -> None:
    class Guard(Memoriser):
        def predict(self, prompts: Prompts) -> np.ndarray:
            assert not set(prompts.texts) & set(self.seen), "predicted a prompt whose outcome it learned"
            return super().predict(prompts)

    monkeypatch.setattr(
        ev, "make_router", lambda name, seed=0: Guard() if name == "guard" else make_router(name, seed)
    )
    o = _outcomes(400)
    for mode in ("folds", "replay"):
        ev.evaluate(o, ev.EvalOptions(mode=mode, routers=("guard",), bootstrap=0, warmup=100))


def test_learned_router_beats_the_baselines_on_signal() -> None:
    res = ev.evaluate(
        _outcomes(1500), ev.EvalOptions(mode="replay", warmup=300, routers=("text",), bootstrap=50)
    )
    assert res["apgr"] > 0.7 and res["routers"]["random"]["apgr"] < 0.62
    lo, hi = res["routers"]["text"]["ci"]["apgr"]
    assert lo <= res["apgr"] <= hi
    assert {"random", "counter", "text"} <= set(res["routers"]) and res["router"] == "text"


def test_request_columns_follow_the_shape_columns() -> None:
    fe = HashedFeatures(bits=10)
    idx, vals = fe.request_columns(tools=True, json_schema=False, images=True, turns=7)
    assert idx == [1024 + 9, 1024 + 10, 1024 + 11, 1024 + 12] and max(idx) < fe.dim
    assert vals[:3] == [1.0, 0.0, 1.0] and vals[3] == pytest.approx(math.log(8) / 3)
