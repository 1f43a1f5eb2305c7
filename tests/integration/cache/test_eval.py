"""`cache eval` on a small sample of the dev data with the static model (fast, no torch), including a
pluggable verifier; skipped when the data folder or the semantic extra is absent (extra: unless CI)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "cache" / "qqp_dev.jsonl"

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("usearch", reason="the semantic extra is not installed")
    pytest.importorskip(
        "static_model", reason="the semantic extra (tokenlearn-static-model) is not installed"
    )


@pytest.fixture
def data() -> Path:
    if not DATA.exists():
        pytest.skip(f"evaluation data not found at {DATA}")
    return DATA


async def test_eval_sample_with_a_verifier(data: Path) -> None:
    from architect.cache.embedders import load_embedder
    from architect.cache.eval import evaluate, load_pairs

    pairs = load_pairs(data, limit=300, seed=1)
    labels = {(p.b, p.a): p.duplicate for p in pairs}

    async def oracle(query: str, cached: str) -> bool:  # a perfect verifier: precision must become 1
        return labels[(query, cached)]

    r = await evaluate(pairs, load_embedder("static"), 0.8, verifier=oracle, verifier_limit=1000)
    assert r.pairs == 300 and 0 < r.duplicates < 300
    assert 0 <= r.precision <= 1 and 0 <= r.recall <= 1 and r.hits > 0
    precisions = {round(p["threshold"], 3): p for p in r.curve}
    assert precisions[0.5]["recall"] >= precisions[0.9]["recall"]  # recall falls as t rises
    assert r.verifier is not None and r.verifier["precision_after"] == 1.0
    assert r.verifier["correct_kept"] == r.verifier["correct_candidates"]
    assert r.search_ms_p95 >= 0 and r.embed_ms_p50 > 0


def test_cli_eval_prints_the_figures(data: Path, tmp_path: Path) -> None:
    from architect.cli.main import app

    res = CliRunner().invoke(
        app,
        [
            "cache",
            "eval",
            "--data",
            str(data),
            "--model",
            "static",
            "--limit",
            "200",
            "--threshold",
            "0.8",
            "--embeddings-cache",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    for text in ("precision", "recall at precision 0.90", "held-out check", "lookup latency"):
        assert text in res.output
    res = CliRunner().invoke(
        app,
        [
            "cache",
            "eval",
            "--data",
            str(data),
            "--model",
            "static",
            "--limit",
            "200",
            "--json",
            "--embeddings-cache",
            str(tmp_path),
        ],
    )
    out = orjson.loads(res.output)
    assert out["threshold"] == 0.97 and len(out["curve"]) == 51
    bad = CliRunner().invoke(app, ["cache", "eval", "--data", str(tmp_path / "nope.jsonl")])
    assert bad.exit_code != 0
