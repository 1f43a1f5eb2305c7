"""Offline evaluation of the semantic tier on labelled question pairs (`{"a", "b", "duplicate"}` per
line, e.g. ../shared/data/cache/qqp_dev.jsonl).

For each pair, `a` is the cached question and `b` the query: the query is a hit when cos(a, b) >= t,
and a hit is correct when people labelled the pair a duplicate.
    precision = correct hits / hits          recall = correct hits / duplicate pairs
(Scoring each query against its own pair's question, not against every cached `a`, keeps people's
labels meaningful: QQP repeats questions across pairs, and a neighbour from another pair has no
label.) Lookup latency is measured on a real index holding every `a`.
The curve sweeps t; the threshold's promise is checked on held-out data: the pairs are split in two
(seeded), t is chosen on one half as the lowest threshold reaching the target precision, and the
precision it gives on the other half is reported with a 95% Wilson interval.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from architect.cache.embedders import Embedder
from architect.errors import ConfigError

__all__ = ["EvalResult", "Pair", "evaluate", "load_pairs", "wilson"]


@dataclass(slots=True)
class Pair:
    a: str
    b: str
    duplicate: bool


@dataclass
class EvalResult:
    model: str
    pairs: int
    duplicates: int
    threshold: float
    precision: float
    recall: float
    f1: float
    hits: int
    curve: list[dict[str, float]]
    recall_at_precision: dict[str, float | None]
    threshold_at_precision: dict[str, float | None]
    split: dict[str, Any]
    embed_ms_p50: float
    embed_ms_p95: float
    search_ms_p50: float
    search_ms_p95: float
    verifier: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_pairs(path: str | Path, limit: int | None = None, seed: int = 0) -> list[Pair]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such file (the evaluation data lives in ../shared/data/cache/)")
    pairs: list[Pair] = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            pairs.append(Pair(str(obj["a"]), str(obj["b"]), bool(obj["duplicate"])))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{p}:{i + 1}: expected {{'a', 'b', 'duplicate'}}: {exc}") from None
    if limit is not None and limit < len(pairs):
        pairs = random.Random(seed).sample(pairs, limit)
    return pairs


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, centre - half), min(1.0, centre + half))


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _embed_all(embedder: Embedder, texts: list[str], cache_dir: Path | None, tag: str) -> Any:
    import numpy as np

    path = None
    if cache_dir is not None:
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        path = cache_dir / f"{embedder.name}-{tag}-{digest}.npy"
        if path.exists():
            return np.load(path)
    out = np.concatenate([embedder.embed(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out


_THRESHOLDS = [round(0.5 + 0.01 * i, 3) for i in range(50)] + [0.995]


def _point(sims: list[float], correct: list[bool], idx: list[int], t: float, dups: int) -> dict[str, float]:
    hits = [i for i in idx if sims[i] >= t]
    tp = sum(1 for i in hits if correct[i])
    p = tp / len(hits) if hits else 1.0
    r = tp / dups if dups else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "threshold": t,
        "precision": p,
        "recall": r,
        "f1": f,
        "hits": float(len(hits)),
        "correct": float(tp),
    }


async def evaluate(
    pairs: list[Pair],
    embedder: Embedder,
    threshold: float,
    *,
    target_precision: float = 0.90,
    cache_dir: Path | None = None,
    verifier: Callable[[str, str], Awaitable[bool]] | None = None,
    verifier_limit: int = 200,
    seed: int = 0,
) -> EvalResult:
    from architect.cache.semantic import VectorIndex

    cached = _embed_all(embedder, [p.a for p in pairs], cache_dir, "a")
    queries = _embed_all(embedder, [p.b for p in pairs], cache_dir, "b")
    index = VectorIndex(embedder.dim, dtype="f32")
    index.add(list(range(len(pairs))), cached)
    search_ms: list[float] = []
    for q in queries[: min(2000, len(queries))]:
        t0 = time.perf_counter()
        index.search(q, 1)
        search_ms.append((time.perf_counter() - t0) * 1000)
    sims = [float(x) for x in (cached * queries).sum(axis=1)]
    correct = [p.duplicate for p in pairs]
    everyone = list(range(len(pairs)))
    dups = sum(p.duplicate for p in pairs)
    curve = [_point(sims, correct, everyone, t, dups) for t in _THRESHOLDS]
    at = _point(sims, correct, everyone, threshold, dups)
    rap: dict[str, float | None] = {}
    tap: dict[str, float | None] = {}
    for target in (0.90, 0.95):
        ok = [c for c in curve if c["precision"] >= target and c["hits"] > 0]
        rap[f"{target:.2f}"] = max((c["recall"] for c in ok), default=None)
        tap[f"{target:.2f}"] = min((c["threshold"] for c in ok), default=None)
    # held-out check of the threshold choice
    order = everyone[:]
    random.Random(seed).shuffle(order)
    half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
    dups_a = sum(pairs[i].duplicate for i in half_a)
    dups_b = sum(pairs[i].duplicate for i in half_b)
    chosen = next(
        (
            t
            for t in _THRESHOLDS
            if _point(sims, correct, half_a, t, dups_a)["precision"] >= target_precision
            and _point(sims, correct, half_a, t, dups_a)["hits"] > 0
        ),
        None,
    )
    split: dict[str, Any] = {"target_precision": target_precision, "chosen_on_half_a": chosen}
    if chosen is not None:
        held = _point(sims, correct, half_b, chosen, dups_b)
        lo, hi = wilson(int(held["correct"]), int(held["hits"]))
        split.update(
            held_out_precision=held["precision"],
            held_out_recall=held["recall"],
            held_out_hits=int(held["hits"]),
            ci95=[lo, hi],
        )
    # embedding latency of one query at a time (what a lookup pays), timed separately from search
    embed_ms = []
    for p in pairs[: min(30, len(pairs))]:
        t0 = time.perf_counter()
        embedder.embed([p.b])
        embed_ms.append((time.perf_counter() - t0) * 1000)
    result = EvalResult(
        model=embedder.name,
        pairs=len(pairs),
        duplicates=dups,
        threshold=threshold,
        precision=at["precision"],
        recall=at["recall"],
        f1=at["f1"],
        hits=int(at["hits"]),
        curve=curve,
        recall_at_precision=rap,
        threshold_at_precision=tap,
        split=split,
        embed_ms_p50=_pct(embed_ms, 0.5),
        embed_ms_p95=_pct(embed_ms, 0.95),
        search_ms_p50=_pct(search_ms, 0.5),
        search_ms_p95=_pct(search_ms, 0.95),
    )
    if verifier is not None:
        hits = [i for i in everyone if sims[i] >= threshold][:verifier_limit]
        accepted = kept_correct = 0
        for i in hits:
            if await verifier(pairs[i].b, pairs[i].a):
                accepted += 1
                kept_correct += int(correct[i])
        lo, hi = wilson(kept_correct, accepted)
        result.verifier = {
            "candidates_checked": len(hits),
            "accepted": accepted,
            "precision_after": kept_correct / accepted if accepted else None,
            "precision_before": (sum(correct[i] for i in hits) / len(hits)) if hits else None,
            "ci95_after": [lo, hi],
            "correct_kept": kept_correct,
            "correct_candidates": sum(correct[i] for i in hits),
        }
    return result
