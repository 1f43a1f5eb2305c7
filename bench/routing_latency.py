"""Per-request cost of the router's decision: features of one prompt and P(acceptable) for each candidate.

    OMP_NUM_THREADS=1 python bench/routing_latency.py [--tokens 2000] [--runs 2000]

A `text+tag` router is fitted on 500 synthetic outcomes (2 candidates), then asked about one prompt of
about `--tokens` tokens (4 characters a token) at a time, as the gateway would per request; prints p50/p95
of the whole decision and of the feature step alone, in microseconds.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from architect.routing.features import HashedFeatures
from architect.routing.routers import Prompts, TextRouter

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "or",
    "an",
    "which",
    "code",
    "def",
    "return",
    "value",
]


def _prompt(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    n = 0
    while n < chars:
        w = rng.choice(WORDS) + (str(rng.randint(0, 999)) if rng.random() < 0.2 else "")
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=2000)
    a = ap.parse_args()
    rng = random.Random(0)
    train = [_prompt(rng, rng.randint(100, 3000)) for _ in range(500)]
    scores = np.array([[rng.random() < 0.7, rng.random() < 0.85] for _ in train], dtype=float)
    router = TextRouter(use_tags=True)
    router.fit(Prompts(train, ["t"] * len(train)), scores)
    fe = HashedFeatures()
    prompts = [_prompt(rng, a.tokens * 4) for _ in range(50)]
    total, feats = [], []
    for i in range(a.runs):
        p = prompts[i % len(prompts)]
        t0 = time.perf_counter()
        router.predict(Prompts([p], ["t"]))
        t1 = time.perf_counter()
        fe.transform([p])
        t2 = time.perf_counter()
        total.append((t1 - t0) * 1e6)
        feats.append((t2 - t1) * 1e6)
    for name, xs in (("decision", total), ("features", feats)):
        q = np.percentile(xs, [50, 95])
        print(
            f"{name}: p50 {q[0]:.0f} µs, p95 {q[1]:.0f} µs ({a.tokens} tokens, {len(prompts[0]):,} characters)"
        )


if __name__ == "__main__":
    main()
