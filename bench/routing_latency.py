"""Per-request cost of the router's decision: features of one prompt and P(acceptable) for each candidate.

    OMP_NUM_THREADS=1 python bench/routing_latency.py [--tokens 2000] [--runs 2000]

A `text+tag` router is fitted on 500 synthetic outcomes (2 candidates), then asked about one prompt of
about `--tokens` tokens (4 characters a token) at a time, as the gateway would per request; prints p50/p95
of the whole decision and of the feature step alone, in microseconds.

Then the gateway's own `auto` decision (`routing.decide.AutoRouter.decide`, what the pipeline runs per
call to an auto group): a chat call of `--tokens` tokens (a system and a user message) to an auto group
of 3 candidates: the prompt's text, its hashed features, P(acceptable) per candidate, the policy, the
chain, the reason and header; once with the prior (`PriorModel`) and once with a stand-in for the learner
that does what its prediction does per call (a per-candidate weight vector's dot product with the
features on top of the prior's logit).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from architect.config import parse_config
from architect.gateway.call import Call
from architect.gateway.routing import Router
from architect.principal import Principal
from architect.routing.decide import AutoRouter
from architect.routing.features import HashedFeatures
from architect.routing.predict import Features, PriorModel, QualityModel
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
    for label, model in (("prior", PriorModel()), ("learned (stand-in)", _Learned(rng))):
        xs = _auto_decisions(model, prompts, a.runs)
        q = np.percentile(xs, [50, 95])
        print(
            f"auto decision, {label}: p50 {q[0]:.0f} µs, p95 {q[1]:.0f} µs ({a.tokens} tokens, 3 candidates)"
        )


class _Learned(PriorModel):
    """What the learner's prediction does per call: sigmoid(logit(prior) + w_c . x) per candidate."""

    def __init__(self, rng: random.Random) -> None:
        dim = HashedFeatures().dim
        gen = np.random.default_rng(rng.randint(0, 2**31))
        self.w = {c: gen.normal(0, 0.1, dim) for c in ("fast", "mid", "strong")}

    def predict(self, x: Features | None, *, project, task_type, candidates, prior):  # type: ignore[no-untyped-def, override]
        out = {}
        for c in candidates:
            p = prior[c]
            z = np.log(p / (1 - p)) + (float(self.w[c][x[0]] @ x[1]) if x is not None else 0.0)
            out[c] = float(1 / (1 + np.exp(-z)))
        return out


def _auto_decisions(model: QualityModel, prompts: list[str], runs: int) -> list[float]:
    cfg = parse_config(
        {
            "providers": [{"name": "sim", "kind": "simulated"}],
            "models": [
                *(
                    {
                        "name": n,
                        "deployments": [{"provider": "sim", "model": n, "price": {"input_per_mtok": p}}],
                    }
                    for n, p in (("fast", 0.1), ("mid", 0.6), ("strong", 3.0))
                ),
                {"name": "auto", "strategy": "auto", "candidates": ["fast", "mid", "strong"]},
            ],
        },
        env={},
    )
    router = Router.build(cfg)
    auto = router.groups["auto"]
    eligible = [router.groups[n] for n in ("fast", "mid", "strong")]
    decide = AutoRouter(model, rng=random.Random(0))
    principal = Principal(kind="anonymous")
    out = []
    for i in range(runs):
        body = {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "You are a careful assistant."},
                {"role": "user", "content": prompts[i % len(prompts)]},
            ],
        }
        call = Call("chat", body, b"", principal, {"type": "t"})
        call.group, call.est_prompt_tokens, call.task_type = auto, 2000, "t"
        t0 = time.perf_counter()
        decide.resolve(call)
        decide.decide(call, auto, eligible, eligible)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


if __name__ == "__main__":
    main()
