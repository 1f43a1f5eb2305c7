"""The router evaluation on the real shared data (../shared/data/routing, see its README): the file
formats as published, and the issue's MMLU target reproduced. Skips when the folder is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from architect.routing.data import load_exclusions, load_outcomes
from architect.routing.eval import EvalOptions, evaluate

ROOT = Path(__file__).resolve().parents[3]
DATA = next(
    (
        p / "routing"
        for p in (ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data")
        if (p / "routing").is_dir()
    ),
    None,
)
pytestmark = pytest.mark.skipif(
    DATA is None, reason="the shared evaluation data (../shared/data/routing) is absent: nothing to measure"
)


def test_files_as_published() -> None:
    assert DATA is not None
    excl = load_exclusions(str(DATA / "routellm_mmlu_contaminated_prompts.jsonl"))
    mmlu = load_outcomes(str(DATA / "routellm_mmlu.csv"), exclude=excl)
    assert mmlu.kind == "two-model" and mmlu.n == 14_037 and mmlu.excluded == 5 and mmlu.dropped == 0
    assert len(set(mmlu.tags)) == 57
    for split, n, dropped in (("train", 1_019, 20), ("test", 437, 8)):
        rb = load_outcomes(str(DATA / f"routerbench_arc_challenge_{split}.csv"))
        assert (rb.kind, rb.n, rb.dropped, len(rb.models)) == ("routerbench", n, dropped, 11)
        assert "gpt-4-1106-preview" in rb.models and rb.costs is not None and (rb.costs > 0).all()
        assert rb.prompts[0].rstrip().endswith("Answer:")  # the list literal parsed to its text


def test_mmlu_replay_reaches_the_target() -> None:
    assert DATA is not None
    excl = load_exclusions(str(DATA / "routellm_mmlu_contaminated_prompts.jsonl"))
    mmlu = load_outcomes(str(DATA / "routellm_mmlu.csv"), exclude=excl)
    res = evaluate(
        mmlu, EvalOptions(mode="replay", warmup=500, seed=0, routers=("text", "text+tag"), bootstrap=0)
    )
    figs = res["routers"]
    assert res["n"] == 14_037 - 500
    assert figs["text"]["apgr"] >= 0.60  # the target, text only
    assert figs["text+tag"]["apgr"] > figs["counter"]["apgr"]  # the text model adds to the tag
    assert abs(figs["random"]["apgr"] - 0.5) < 0.05
