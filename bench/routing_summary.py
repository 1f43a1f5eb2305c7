"""Markdown tables of the JSON runs of bench/routing_eval.sh: `python bench/routing_summary.py OUT`."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def _iv(ci: list[float] | None, pct: bool = False) -> str:
    if not ci:
        return ""
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    return f" [{f(ci[0])}, {f(ci[1])}]"


def _load(out: Path, name: str) -> dict[str, Any] | None:
    p = out / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() and p.stat().st_size else None


def two_model(r: dict[str, Any], title: str) -> None:
    print(f"\n#### {title}\n")
    print(
        f"n = {r['n']:,} ({r['dropped']} dropped, {r['excluded']} excluded); weak {r['weak_quality']:.3f}, strong {r['strong_quality']:.3f}\n"
    )
    print("| router | APGR | CPT(50%) | CPT(80%) | APGR - counter | APGR (every prompt) |")
    print("|---|---|---|---|---|---|")
    for name, f in r["routers"].items():
        ci = f["ci"]
        print(
            f"| {name} | {f['apgr']:.3f}{_iv(ci['apgr'])} | {100 * f['cpt50']:.1f}%{_iv(ci['cpt50'], True)} "
            f"| {100 * f['cpt80']:.1f}%{_iv(ci['cpt80'], True)} | {_iv(f.get('apgr_minus_counter_ci')).strip() or '-'} "
            f"| {f['apgr_fine']:.3f} |"
        )


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out-routing")
    seeds = [r for s in range(10) if (r := _load(out, f"mmlu_replay_s{s}"))]
    if seeds:
        two_model(seeds[0], "MMLU replay, warm-up 500, seed 0 (95% bootstrap over prompts)")
        print(
            "\nAcross shuffles (seeds "
            + ", ".join(str(r["seed"]) for r in seeds)
            + "): mean ± sd (min-max) of APGR\n"
        )
        print("| router | APGR | CPT(50%) | CPT(80%) |")
        print("|---|---|---|---|")
        for name in seeds[0]["routers"]:
            cols = []
            for k in ("apgr", "cpt50", "cpt80"):
                xs = [r["routers"][name][k] for r in seeds]
                sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
                cols.append(f"{statistics.mean(xs):.3f} ± {sd:.3f} ({min(xs):.3f}-{max(xs):.3f})")
            print(f"| {name} | " + " | ".join(cols) + " |")
    arcs = [r for s in range(10) if (r := _load(out, f"arc_s{s}"))]
    if arcs:
        r = arcs[0]
        print(
            f"\n#### RouterBench ARC-Challenge, train → test (n = {r['n']}, {r['dropped']} dropped; train n = {r['train']['n']}, {r['train']['dropped']} dropped)\n"
        )
        print("| model | quality | USD / prompt | share of GPT-4's cost |")
        print("|---|---|---|---|")
        for m in r["single_models"]:
            print(f"| {m['model']} | {m['quality']:.3f} | {m['cost']:.6f} | {100 * m['cost_share']:.1f}% |")
        o = r["oracle"]
        print(f"| per-prompt oracle | {o['quality']:.3f} | {o['cost']:.6f} | {100 * o['cost_share']:.1f}% |")
        mix = r["random_mix_within_1pt"]
        print(
            f"\nCandidates (convex hull on train): {', '.join(r['candidates'])}. Random mixing of single models within 1 point: {100 * mix['cost_share']:.1f}%.\n"
        )
        print(
            "| seed | router | policy | knob (chosen on train) | cost share on test | quality - GPT-4 (pt) | within 1 pt | chosen on test (optimistic) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in arcs:
            for name, by in r["routers"].items():
                for pol, f in by.items():
                    t, h = f["within_1pt_train_chosen"], f["within_1pt_test_chosen"]
                    here = "-" if h is None else f"{100 * h['cost_share']:.1f}%"
                    gap = t["quality_minus_best"]
                    gci = t["quality_minus_best_ci"]
                    print(
                        f"| {r['seed']} | {name} | {pol} | {t['knob']:g} | {100 * t['cost_share']:.1f}%{_iv(t['cost_share_ci'], True)} "
                        f"| {100 * gap:+.1f} [{100 * gci[0]:+.1f}, {100 * gci[1]:+.1f}] | {'yes' if t['within_1pt'] else 'no'} "
                        f"| {here} |"
                    )
    for name, title in (
        ("mmlu_to_arc", "Cross-file: trained on MMLU, tested on ARC-Challenge test (Mixtral vs GPT-4)"),
        ("arc_to_mmlu", "Cross-file: trained on ARC-Challenge train, tested on MMLU (Mixtral vs GPT-4)"),
        ("arc_pair", "Within ARC: train → test (Mixtral vs GPT-4)"),
    ):
        if r2 := _load(out, name):
            two_model(r2, title)


if __name__ == "__main__":
    main()
