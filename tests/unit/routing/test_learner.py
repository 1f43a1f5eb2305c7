"""The auto route's model (`routing.learner.QualityModel`): the Beta part per group and task type from
the price-tier prior, project scope shrunk to the global mean, the text part learning a separable toy
from outcomes in the store, two learners on one store agreeing, a restart replaying, skipped ids asked
again; and the exact Beta intervals (`routing.quality`)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from architect.records import CallRecord
from architect.routing.features import HashedFeatures
from architect.routing.learner import QualityModel
from architect.routing.quality import beta_cdf, beta_interval, beta_quantile, quality_rows
from architect.routing.state import pack, unpack
from architect.store import Store, open_store
from tests.helpers import wait_until_async

FE = HashedFeatures()
PRIOR = {"small": 0.55, "large": 0.85}


def _x(text: str) -> tuple[np.ndarray, np.ndarray]:
    idx, val = FE.hashed_row(text)
    return np.asarray(idx, dtype=np.int32), np.asarray(val, dtype=np.float32)


def _outcome(
    store: Store,
    model: QualityModel | None,
    rid: str,
    group: str,
    y: float,
    text: str | None = None,
    **kw: Any,
) -> None:
    row: dict[str, Any] = {"request_id": rid, "ts": 1.0, "endpoint": "chat", "model": "auto", "key_id": "k",
                           "project": "p1", "model_group": group, "task_type": "code", "routed_by": "auto"}  # fmt: skip
    store.ledger.record([CallRecord(**{**row, **kw})])
    if text is not None and model is not None:
        model.record_features(rid, _x(text))
        model.flush_features()
    assert store.routing.record_feedback(rid, None, y) is not None


def _toy(store: Store, model: QualityModel | None, n: int, start: int = 0, sync_every: int = 0) -> None:
    """Maths prompts: the small model fails, the large passes; chit-chat: both pass."""
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        maths = bool(rng.random() < 0.5)
        words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "omega"], 4))
        text = f"prove the integral theorem {words}" if maths else f"say hello to my friend {words}"
        for group in ("small", "large"):
            _outcome(store, model, f"r{i}-{group}", group, 0.0 if maths and group == "small" else 1.0, text)
        if sync_every and model is not None and (i + 1) % sync_every == 0:
            model.sync()


def test_beta_functions_are_exact() -> None:
    for x in (0.1, 0.37, 0.8):
        assert beta_cdf(x, 1, 1) == pytest.approx(x, abs=1e-9)
        assert beta_cdf(x, 2, 2) == pytest.approx(3 * x**2 - 2 * x**3, abs=1e-9)
        assert beta_cdf(x, 3.5, 1) == pytest.approx(x**3.5, abs=1e-9)
        assert beta_cdf(x, 1, 4) == pytest.approx(1 - (1 - x) ** 4, abs=1e-9)
    assert beta_quantile(0.5, 7, 7) == pytest.approx(0.5, abs=1e-5)
    low, high = beta_interval(1, 1)
    assert (low, high) == (pytest.approx(0.05, abs=1e-5), pytest.approx(0.95, abs=1e-5))
    low, high = beta_interval(80.3, 20.7)
    assert beta_cdf(low, 80.3, 20.7) == pytest.approx(0.05, abs=1e-4) and low < 0.795 < high


def test_quality_rows_from_counts_with_prior_and_project_shrinkage() -> None:
    counts = [{"model_group": "small", "task_type": "code", "n": 8, "sum": 2.0}]
    (row,) = quality_rows(counts, {"small": 0.5})
    assert row.mean == pytest.approx((2 + 1) / (8 + 2)) and row.prior == 0.5
    assert row.low < row.mean < row.high and row.n == 8
    (p,) = quality_rows(counts, {"small": 0.5}, project="p", project_counts=[
        {"model_group": "small", "task_type": "code", "n": 5, "sum": 5.0}])  # fmt: skip
    assert p.mean == pytest.approx((5 + 5 * 0.3) / (5 + 5)) and p.project == "p"


def test_pack_round_trip() -> None:
    x = _x("what is 2 + 2?")
    idx, val = unpack(pack(x))
    assert idx.tolist() == x[0].tolist() and np.allclose(val, x[1])
    with pytest.raises(ValueError, match="whole number"):
        unpack(b"\x00" * 9)


def test_beta_part_from_the_prior_and_counts_per_task_type_and_project() -> None:
    store = Store.memory()
    model = QualityModel(store.routing, scope="project")
    model.load()
    assert model.predict(
        None, project=None, task_type="code", candidates=["small", "large"], prior=PRIOR
    ) == {"small": pytest.approx(0.55), "large": pytest.approx(0.85)}
    for i in range(8):
        _outcome(store, None, f"a{i}", "small", 1.0)  # project p1, code: the small model is fine
    _outcome(store, None, "b0", "small", 0.0, project="p2")
    assert model.sync() == 9
    glob = (8 + 1.1) / (9 + 2)
    assert model.beta_mean("small", "code", 0.55) == pytest.approx(glob)
    assert model.beta_mean("small", "code", 0.55, "p2") == pytest.approx(5 * glob / 6)
    assert model.beta_mean("small", "code", 0.55, "p1") == pytest.approx((8 + 5 * glob) / 13)
    assert model.beta_mean("small", "chat", 0.55) == pytest.approx(0.55)  # another task type
    assert model.outcome_count("small") == 9 and model.outcome_count("large") == 0
    rows = {(r.model_group, r.task_type): r for r in model.quality()}
    assert rows[("small", "code")].n == 9 and rows[("small", "code")].prior == 0.55
    assert model.quality(project="p2")[0].n == 1
    store.close()


def test_with_no_outcomes_the_prediction_is_the_prior_exactly() -> None:
    # a target equal to a price tier (0.7) must be reached by that tier's candidate, not missed by 1e-15
    model = QualityModel(Store.memory().routing)
    p = model.predict(None, project=None, task_type="unknown", candidates=["a", "b", "c"],
                      prior={"a": 0.55, "b": 0.7, "c": 0.85})  # fmt: skip
    assert p == {"a": 0.55, "b": 0.7, "c": 0.85}


def test_learns_a_separable_toy_and_uses_text_only_after_enough_outcomes() -> None:
    store = Store.memory()
    model = QualityModel(store.routing, min_text=20)
    model.load()
    _toy(store, model, 10)
    model.sync()
    maths, chat = _x("prove the integral theorem alpha beta"), _x("say hello to my friend gamma")
    cands = ["small", "large"]
    early = model.predict(maths, project=None, task_type="code", candidates=cands, prior=PRIOR)
    assert early["small"] == pytest.approx(model.beta_mean("small", "code", 0.55))  # 10 < 20: no text yet
    _toy(store, model, 150, start=10)
    assert model.sync() == 300
    p_maths = model.predict(maths, project=None, task_type="code", candidates=cands, prior=PRIOR)
    p_chat = model.predict(chat, project=None, task_type="code", candidates=cands, prior=PRIOR)
    assert p_maths["small"] < 0.3 < 0.8 < p_chat["small"]
    assert p_maths["large"] > 0.8 and p_chat["large"] > 0.8
    assert model.text_outcomes("small") == 160
    store.close()


def test_two_learners_on_one_store_agree_and_a_restart_replays(sqlite_url: str) -> None:
    one, two = open_store(sqlite_url, migrate="upgrade"), open_store(sqlite_url)
    a, b = QualityModel(one.routing), QualityModel(two.routing)
    a.load()
    b.load()
    _toy(one, a, 60, sync_every=7)  # a syncs as outcomes arrive, b once at the end
    a.sync()
    b.sync()
    x = _x("prove the integral theorem omega")
    kw: dict[str, Any] = {
        "project": None,
        "task_type": "code",
        "candidates": ["small", "large"],
        "prior": PRIOR,
    }
    pa, pb = a.predict(x, **kw), b.predict(x, **kw)
    assert pa == pytest.approx(pb, abs=1e-9)
    three = open_store(sqlite_url)
    c = QualityModel(three.routing)  # a restart: the replay learns the same outcomes in the same order
    c.load()
    assert c.predict(x, **kw) == pytest.approx(pa, abs=1e-9)
    assert c.watermark == a.watermark == b.watermark
    short = QualityModel(three.routing, replay=50)  # a shorter replay: the same Beta part
    short.load()
    assert short.beta_mean("small", "code", 0.55) == pytest.approx(a.beta_mean("small", "code", 0.55))
    for s in (one, two, three):
        s.close()


class _Late:
    """A repository that hides one outcome id from the first read (a transaction that committed after
    a larger id was read)."""

    def __init__(self, store: Store, hide: int) -> None:
        self.repo, self.hide, self.hidden = store.routing, hide, False

    def outcomes_since(self, after_id: int, limit: int = 1000, ids: Any = ()) -> list[dict[str, Any]]:
        rows = self.repo.outcomes_since(after_id, limit, ids)
        if not self.hidden:
            self.hidden = True
            return [r for r in rows if r["id"] != self.hide]
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self.repo, name)


def test_a_skipped_id_is_asked_for_again() -> None:
    store = Store.memory()
    for i in range(3):
        _outcome(store, None, f"r{i}", "small", 1.0)
    late = _Late(store, hide=2)
    model = QualityModel(late, replay=0)  # type: ignore[arg-type]
    model.load()
    assert model.sync() == 2 and model.watermark == 3
    assert model.sync() == 1 and model.learned == 3
    assert model.sync() == 0
    store.close()


def test_start_syncs_in_the_background_and_aclose_writes_the_buffered_features() -> None:
    store = Store.memory()
    model = QualityModel(store.routing, refresh_s=0.01)

    async def run() -> None:
        await model.start()
        store.ledger.record([CallRecord(request_id="r1", ts=1.0, endpoint="chat", model="auto",
                                        model_group="small", task_type="code")])  # fmt: skip
        model.record_features("r1", _x("hello"))
        store.routing.record_feedback("r1", None, 1.0)
        await wait_until_async(lambda: model.learned)
        model.record_features("r2", _x("bye"))
        await model.aclose()

    asyncio.run(run())
    assert model.learned == 1 and model.outcome_count("small", "code") == 1
    rows = store.routing.outcomes_since(0)
    assert rows[0]["features"] is not None
    assert math.isfinite(
        model.predict(_x("hi"), project=None, task_type="code", candidates=["small"], prior={})["small"]
    )
    store.close()
