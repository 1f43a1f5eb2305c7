"""Outcome files: format detection from the header, dropped and excluded rows, errors naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from architect.errors import RoutingDataError
from architect.routing.data import load_exclusions, load_outcomes, select_pair


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_two_model_file(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "two.csv",
        'subject,prompt,weak_correct,strong_correct\nmath,"What is 2+2?\nA. 4",True,True\n'
        "law,Who?,False,1\nlaw,Empty,,True\n",
    )
    o = load_outcomes(f)
    assert o.kind == "two-model" and o.models == ("weak", "strong") and o.has_tags
    assert o.n == 2 and o.dropped == 1 and o.excluded == 0
    assert o.prompts[0] == "What is 2+2?\nA. 4" and o.tags == ["math", "law"]
    assert o.scores.tolist() == [[1.0, 1.0], [0.0, 1.0]] and o.costs is None
    # --weak/--strong leave a two-model file as it is
    assert select_pair(o, "a", "b") is o


def test_two_model_without_subject(tmp_path: Path) -> None:
    o = load_outcomes(_write(tmp_path / "t.csv", "prompt,weak_correct,strong_correct\nq,0,1\n"))
    assert not o.has_tags and o.tags == [""]


def test_routerbench_file(tmp_path: Path) -> None:
    header = "sample_id,prompt,eval_name,a,b,c,a|model_response,a|total_cost,b|total_cost,c|total_cost\n"
    rows = [
        "1,\"['first turn', 'second turn']\",arc,1,0,1.0,x,0.001,0.01,0.1\n",
        "2,plain prompt,arc,0,1,1,x,0.001,0.01,0.1\n",
        "3,no score,arc,1,,1,x,0.001,0.01,0.1\n",
        "4,no cost,arc,1,1,1,x,0.001,,0.1\n",
    ]
    o = load_outcomes(_write(tmp_path / "rb.csv", header + "".join(rows)))
    assert o.kind == "routerbench" and o.models == ("a", "b", "c")
    assert o.n == 2 and o.dropped == 2
    assert o.prompts == ["first turn\n\nsecond turn", "plain prompt"] and o.tags == ["arc", "arc"]
    assert o.costs is not None and o.costs[0].tolist() == [0.001, 0.01, 0.1]
    p = select_pair(o, "a", "c")
    assert p.models == ("a", "c") and p.scores.tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert p.costs is not None and p.costs[:, 1].tolist() == [0.1, 0.1]
    with pytest.raises(RoutingDataError) as e:
        select_pair(o, "zz", "c")
    assert e.value.option == "--weak" and "'zz'" in str(e.value) and "a, b, c" in str(e.value)
    with pytest.raises(RoutingDataError) as e:
        select_pair(o, "a", None)
    assert e.value.option == "--strong"


def test_exclusions(tmp_path: Path) -> None:
    ex = tmp_path / "ex.jsonl"
    ex.write_text(
        json.dumps({"train_prompt": "x", "eval_prompt": "Who?"}) + "\n\n" + json.dumps("What is 2+2?") + "\n"
    )
    assert load_exclusions(str(ex)) == {"Who?", "What is 2+2?"}
    f = _write(
        tmp_path / "t.csv", "prompt,weak_correct,strong_correct\nWho?,0,1\nWhat is 2+2?,1,1\nKept,1,0\n"
    )
    o = load_outcomes(f, exclude=load_exclusions(str(ex)))
    assert o.prompts == ["Kept"] and o.excluded == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(RoutingDataError, match=r"--exclude: .*line 1"):
        load_exclusions(str(bad))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("question,answer\nq,a\n", "unknown format .*prompt, weak_correct, strong_correct"),
        ("", "empty"),
        ("prompt,weak_correct,strong_correct\nq,maybe,1\n", "line 2, column weak_correct: expected a score"),
        ("prompt,weak_correct,strong_correct\nq,,1\n", "no usable rows"),
        ("prompt,a,a|total_cost\nq,1,-1\n", "a cost must be >= 0"),
    ],
)
def test_bad_files_name_the_option(tmp_path: Path, text: str, match: str) -> None:
    f = _write(tmp_path / "bad.csv", text)
    with pytest.raises(RoutingDataError, match=match) as e:
        load_outcomes(f, option="--train")
    assert e.value.option == "--train" and str(e.value).startswith("--train: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RoutingDataError, match="--data: no such file"):
        load_outcomes(str(tmp_path / "nope.csv"))
    with pytest.raises(RoutingDataError, match="--exclude: no such file"):
        load_exclusions(str(tmp_path / "nope.jsonl"))
