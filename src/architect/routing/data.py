"""Outcome files for router evaluation, in the two formats `architect router eval` reads.

    two-model   `prompt, weak_correct, strong_correct` (optional `subject`): whether the weak and the
                strong model answered the prompt acceptably (True/False or 1/0), as RouteLLM's MMLU
                responses; the models are named `weak` and `strong`
    RouterBench a score column per model (0/1, or a score in [0, 1]) with its `<model>|total_cost` in
                USD, and `prompt` (kept as text, or a Python list literal of turns joined by blank
                lines); `eval_name`, when present, is the row's tag

The format is detected from the header. A row whose score (or cost) for any model is empty is dropped
and counted; so is a row whose prompt is on the exclusion list (`--exclude`, JSONL of prompts, matched on
the exact prompt text). Every problem is a `RoutingDataError` naming the option it came from.
"""

from __future__ import annotations

import ast
import csv
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from architect.errors import RoutingDataError

__all__ = ["Outcomes", "load_exclusions", "load_outcomes", "select_pair"]

Kind = Literal["two-model", "routerbench"]

_TRUE = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0, "yes": 1.0, "no": 0.0}
_COST = "|total_cost"


@dataclass(frozen=True)
class Outcomes:
    """The rows kept from one outcome file: prompt text, tag, and per model its score (and cost)."""

    path: str
    kind: Kind
    prompts: list[str]
    tags: list[str]  # the subject / eval_name column, "" when the file has none
    models: tuple[str, ...]
    scores: NDArray[np.float64]  # (n, models): 1 = acceptable
    costs: NDArray[np.float64] | None  # (n, models) USD per prompt; None for two-model files
    dropped: int = 0  # rows lacking a score (or a cost)
    excluded: int = 0  # rows whose prompt is on the exclusion list
    has_tags: bool = False

    @property
    def n(self) -> int:
        return len(self.prompts)

    def take(self, index: NDArray[np.intp]) -> Outcomes:
        """The rows at `index`, in that order."""
        return replace(
            self,
            prompts=[self.prompts[i] for i in index],
            tags=[self.tags[i] for i in index],
            scores=self.scores[index],
            costs=None if self.costs is None else self.costs[index],
        )


def _read_rows(path: str, option: str) -> tuple[list[str], list[dict[str, str]]]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise RoutingDataError(option, f"no such file: {path}")
    csv.field_size_limit(sys.maxsize)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): v or "" for k, v in row.items()} for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RoutingDataError(option, f"{path} is not a UTF-8 CSV file: {exc}") from None
    if not header:
        raise RoutingDataError(option, f"{path} is empty (no header)")
    return header, rows


def _score(text: str, option: str, where: str) -> float | None:
    t = text.strip().lower()
    if not t:
        return None
    if t in _TRUE:
        return _TRUE[t]
    try:
        v = float(t)
    except ValueError:
        raise RoutingDataError(option, f"{where}: expected a score (True/False, 0/1), got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise RoutingDataError(option, f"{where}: a score must be in [0, 1], got {text!r}")
    return v


def _cost(text: str, option: str, where: str) -> float | None:
    t = text.strip()
    if not t:
        return None
    try:
        v = float(t)
    except ValueError:
        raise RoutingDataError(option, f"{where}: expected a cost in USD, got {text!r}") from None
    if v < 0 or v != v:
        raise RoutingDataError(option, f"{where}: a cost must be >= 0, got {text!r}")
    return v


def _prompt_text(raw: str) -> str:
    """RouterBench stores a prompt as a Python list literal of turns: joined by blank lines."""
    s = raw.strip()
    if s.startswith("[") and s.endswith("]"):
        try:
            parts = ast.literal_eval(s)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return raw
        if isinstance(parts, list) and all(isinstance(x, str) for x in parts):
            return "\n\n".join(parts)
    return raw


def _detect(header: list[str], path: str, option: str) -> tuple[Kind, tuple[str, ...]]:
    cols = set(header)
    if {"prompt", "weak_correct", "strong_correct"} <= cols:
        return "two-model", ("weak", "strong")
    models = tuple(h[: -len(_COST)] for h in header if h.endswith(_COST) and h[: -len(_COST)] in cols)
    if "prompt" in cols and models:
        return "routerbench", models
    raise RoutingDataError(
        option,
        f"unknown format of {path}: expected a header with prompt, weak_correct, strong_correct "
        f"(two-model outcomes) or prompt and, per model, <model> and <model>{_COST} (RouterBench); "
        f"found {', '.join(header[:8])}{', ...' if len(header) > 8 else ''}",
    )


def load_exclusions(path: str, option: str = "--exclude") -> set[str]:
    """The prompts of a contamination list: JSONL whose lines are a JSON string or an object with
    `eval_prompt` and/or `prompt` (RouteLLM's `contaminated_prompts.jsonl`)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise RoutingDataError(option, f"no such file: {path}")
    out: set[str] = set()
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise RoutingDataError(option, f"{path} is not UTF-8: {exc}") from None
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RoutingDataError(option, f"{path} line {no} is not JSON: {exc.msg}") from None
        found = [item] if isinstance(item, str) else []
        if isinstance(item, dict):
            found = [v for k in ("eval_prompt", "prompt") if isinstance(v := item.get(k), str)]
        if not found:
            raise RoutingDataError(
                option, f"{path} line {no}: expected a JSON string or an object with eval_prompt or prompt"
            )
        out.update(found)
    return out


def load_outcomes(path: str, *, option: str = "--data", exclude: set[str] | None = None) -> Outcomes:
    """Read an outcome file (format detected from its header), dropping and counting rows that lack a
    score or a cost and rows whose prompt is in `exclude`."""
    header, rows = _read_rows(path, option)
    kind, models = _detect(header, path, option)
    prompts: list[str] = []
    tags: list[str] = []
    scores: list[list[float]] = []
    costs: list[list[float]] = []
    dropped = excluded = 0
    tag_col = "subject" if kind == "two-model" else "eval_name"
    score_cols = ["weak_correct", "strong_correct"] if kind == "two-model" else list(models)
    for line, row in enumerate(rows, 2):
        where = f"{path} line {line}"
        raw = row.get("prompt", "")
        if exclude and raw in exclude:
            excluded += 1
            continue
        s = [_score(row.get(c, ""), option, f"{where}, column {c}") for c in score_cols]
        c: list[float | None] = []
        if kind == "routerbench":
            c = [_cost(row.get(m + _COST, ""), option, f"{where}, column {m}{_COST}") for m in models]
        if any(v is None for v in s) or any(v is None for v in c):
            dropped += 1
            continue
        text = _prompt_text(raw) if kind == "routerbench" else raw
        if exclude and text in exclude:
            excluded += 1
            continue
        prompts.append(text)
        tags.append(row.get(tag_col, "").strip())
        scores.append([float(v or 0.0) for v in s])
        if kind == "routerbench":
            costs.append([float(v or 0.0) for v in c])
    if not prompts:
        raise RoutingDataError(
            option, f"{path} has no usable rows ({dropped} lack a score, {excluded} excluded)"
        )
    m = len(models)
    return Outcomes(
        path=path,
        kind=kind,
        prompts=prompts,
        tags=tags,
        models=models,
        scores=np.asarray(scores, dtype=np.float64).reshape(-1, m),
        costs=np.asarray(costs, dtype=np.float64).reshape(-1, m) if kind == "routerbench" else None,
        dropped=dropped,
        excluded=excluded,
        has_tags=tag_col in header,
    )


def select_pair(o: Outcomes, weak: str | None, strong: str | None) -> Outcomes:
    """A RouterBench file as a two-model evaluation of `weak` against `strong` (columns weak, strong;
    costs kept). A two-model file is returned as it is. Unknown model → error naming --weak/--strong."""
    if weak is None and strong is None:
        return o
    if weak is None or strong is None:
        raise RoutingDataError("--weak" if weak is None else "--strong", "give both --weak and --strong")
    if o.kind == "two-model":
        return o
    for opt, name in (("--weak", weak), ("--strong", strong)):
        if name not in o.models:
            raise RoutingDataError(
                opt, f"unknown model {name!r} in {o.path}; its models: {', '.join(o.models)}"
            )
    if weak == strong:
        raise RoutingDataError("--strong", "the strong model must differ from the weak one")
    cols = np.array([o.models.index(weak), o.models.index(strong)])
    return replace(
        o,
        models=(weak, strong),
        scores=o.scores[:, cols],
        costs=None if o.costs is None else o.costs[:, cols],
    )
