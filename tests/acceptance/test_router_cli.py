"""`architect router eval` in real subprocesses on small CSVs made here: the three modes, both formats,
JSON figures, the baselines in the same run, and bad input (exit 2, the option named, no traceback)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.acceptance.conftest import architect

MODELS = ("cheap", "mid", "dear")
COST = {"cheap": 0.0001, "mid": 0.001, "dear": 0.01}


def _prompt(i: int, hard: bool) -> str:
    topic = "integral of the polynomial derivative proof" if hard else "capital city of the country"
    return f"Question {i}: what is the {topic} {i * 7919 % 1000}?\nA. one\nB. two\nAnswer:"


def _two_model(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["subject", "prompt", "weak_correct", "strong_correct"])
        for i in range(n):
            hard = bool(rng.random() < 0.4)
            weak = rng.random() < (0.2 if hard else 0.9)
            w.writerow(["maths" if hard else "geography", _prompt(i, hard), weak, rng.random() < 0.9])


def _routerbench(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", "prompt", "eval_name", *MODELS, *(f"{m}|total_cost" for m in MODELS)])
        for i in range(n):
            hard = bool(rng.random() < 0.4)
            p = {"cheap": 0.2 if hard else 0.9, "mid": 0.5 if hard else 0.95, "dear": 0.95}
            scores = [int(rng.random() < p[m]) for m in MODELS]
            if i % 50 == 7:
                scores[1] = ""  # a row lacking a score
            w.writerow([i, str([_prompt(i, hard)]), "synthetic", *scores, *(COST[m] for m in MODELS)])


def _json(*args: str) -> dict[str, object]:
    res = architect("router", "eval", *args, "--json", "--bootstrap", "50", check=True, timeout=120)
    out: dict[str, object] = orjson.loads(res.stdout)
    return out


def test_two_model_modes(tmp_path: Path) -> None:
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    _two_model(train, 600, 1)
    _two_model(test, 400, 2)
    with test.open(newline="") as fh:
        first, second = [row["prompt"] for row, _ in zip(csv.DictReader(fh), range(2), strict=False)]
    excl = tmp_path / "excl.jsonl"
    excl.write_text(json.dumps({"eval_prompt": first}) + "\n" + json.dumps(second) + "\n")

    folds = _json("--data", str(train), "--folds", "3")
    assert folds["mode"] == "folds" and folds["n"] == 600 and folds["format"] == "two-model"
    for key in ("apgr", "cpt50", "cpt80", "n"):
        assert key in folds
    routers = folds["routers"]
    assert isinstance(routers, dict) and {"text", "random", "counter"} <= set(routers)
    assert float(folds["apgr"]) > 0.7  # type: ignore[arg-type]
    assert routers["text"]["ci"]["apgr"] is not None and len(routers["random"]["curve"]) == 11

    replay = _json("--data", str(train), "--replay", "--warmup", "100", "--seed", "3", "--router", "text+tag")
    assert replay["n"] == 500 and replay["router"] == "text+tag" and replay["tags"] is True

    trained = _json("--data", str(test), "--train", str(train), "--exclude", str(excl))
    assert trained["mode"] == "train" and trained["excluded"] == 2 and trained["n"] == 398

    table = architect("router", "eval", "--data", str(train), "--folds", "2", "--bootstrap", "0", check=True)
    assert "APGR" in table.stdout and "counter" in table.stdout and "random" in table.stdout


def test_routerbench_many_models_and_a_pair(tmp_path: Path) -> None:
    train, test = tmp_path / "rb_train.csv", tmp_path / "rb_test.csv"
    _routerbench(train, 400, 3)
    _routerbench(test, 200, 4)
    res = _json("--data", str(test), "--train", str(train), "--folds", "3")
    assert res["format"] == "routerbench" and res["dropped"] == 4 and res["n"] == 196
    assert res["best_model"] == "dear" and res["train"]["dropped"] == 8  # type: ignore[index]
    assert {"text", "counter", "tfidf-lr"} <= set(res["routers"])  # type: ignore[arg-type]
    fig = res["routers"]["text"]["target"]  # type: ignore[index]
    assert fig["frontier"] and 0 < fig["within_1pt_train_chosen"]["cost_share"] <= 1.0
    assert res["oracle"]["cost_share"] < 0.5  # type: ignore[index]
    assert {m["model"] for m in res["single_models"]} == set(MODELS)  # type: ignore[attr-defined]
    assert res["within_1pt"] is not None

    pair = _json("--data", str(test), "--weak", "cheap", "--strong", "dear", "--folds", "3")
    assert pair["models"] == ["cheap", "dear"] and "apgr" in pair and "mean_cost" in pair

    table = architect("router", "eval", "--data", str(test), "--folds", "2", "--bootstrap", "0", check=True)
    assert "per-prompt oracle" in table.stdout and "within 1 point" in table.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--data", "{tmp}/missing.csv"], "--data"),
        (["--data", "{tmp}/unknown.csv"], "--data"),
        (["--data", "{tmp}/rb.csv", "--weak", "nobody", "--strong", "dear"], "--weak"),
        (["--data", "{tmp}/rb.csv", "--train", "{tmp}/rb.csv", "--replay"], "--replay"),
        (["--data", "{tmp}/rb.csv", "--router", "oracle"], "--router"),
        (["--data", "{tmp}/rb.csv", "--replay", "--warmup", "5000"], "--warmup"),
        (["--data", "{tmp}/rb.csv", "--exclude", "{tmp}/missing.jsonl"], "--exclude"),
        (["--data", "{tmp}/rb.csv", "--train", "{tmp}/two.csv"], "--train"),
    ],
)
def test_bad_input_exits_2_naming_the_option(tmp_path: Path, args: list[str], option: str) -> None:
    (tmp_path / "unknown.csv").write_text("question,answer\nq,a\n")
    _routerbench(tmp_path / "rb.csv", 60, 5)
    _two_model(tmp_path / "two.csv", 60, 6)
    res = architect("router", "eval", *[a.format(tmp=tmp_path) for a in args])
    assert res.returncode == 2, res.stdout + res.stderr
    assert option in res.stderr and "Traceback" not in res.stderr + res.stdout
