"""How well a prompt's UTF-8 byte count stands in for its token count (`architect.gateway.estimate`),
measured against tiktoken on real prompts.

    python bench/token_estimate.py [--data ../shared/data] [--seed 1]

Calibration: a random half of the RouteLLM MMLU prompts (seeded). Held out, never used to choose the
constants: the other MMLU half, the RouterBench ARC-Challenge prompts, the Quora question pairs (both
questions), the GPTCache paraphrase pairs, this project's own Python sources (code) and, when the
interpreter ships them, CPython's CJK test texts. Each prompt is sent as one user message; the truth is
`tokens.count_messages` (o200k_base, and cl100k_base for the bound). Prints the constants the
calibration gives, then per held-out set: violations of the bound (must be 0), the ratio
estimate/truth (2nd, 50th, 98th percentile), how often `low` is above the truth, the time per prompt
of the estimate and of tiktoken, and the memory tiktoken's encodings take when loaded.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from architect.gateway.estimate import TOKENS_PER_BYTE, TOKENS_PER_BYTE_LOW, chat_prompt_size
from architect.gateway.tokens import count_messages, encoding

ROOT = Path(__file__).resolve().parent.parent


def default_data() -> Path:
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return ROOT.parent / "shared" / "data"


def load_sets(data: Path, seed: int) -> tuple[list[str], dict[str, list[str]]]:
    csv.field_size_limit(1 << 30)
    with open(data / "routing" / "routellm_mmlu.csv", newline="") as f:
        mmlu = [r["prompt"] for r in csv.DictReader(f)]
    random.Random(seed).shuffle(mmlu)
    half = len(mmlu) // 2
    held: dict[str, list[str]] = {"mmlu (other half)": mmlu[half:]}
    arc: list[str] = []
    for part in ("train", "test"):
        with open(data / "routing" / f"routerbench_arc_challenge_{part}.csv", newline="") as f:
            arc += [r["prompt"] for r in csv.DictReader(f)]
    held["arc-challenge"] = arc
    with open(data / "cache" / "qqp_dev.jsonl") as f:
        pairs = [json.loads(line) for line in f]
    held["quora questions"] = [p["a"] for p in pairs] + [p["b"] for p in pairs]
    smoke = json.loads((data / "cache" / "paraphrase_smoke.json").read_text())
    held["paraphrases"] = [p["origin"] for p in smoke] + [p["similar"] for p in smoke]
    held["python code (src/)"] = [p.read_text() for p in sorted((ROOT / "src").rglob("*.py"))]
    cjk = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings"
    texts = [p.read_text(encoding="utf-8") for p in sorted(cjk.glob("*-utf8.txt"))] if cjk.is_dir() else []
    if texts:
        held["cjk texts (cpython tests)"] = texts
    return mmlu[:half], {k: [t for t in v if t] for k, v in held.items()}


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def tiktoken_memory() -> str:
    code = (
        "import os\n"
        "def rss():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024\n"
        "from architect.gateway import tokens\n"
        "a = rss(); tokens.encoding('o200k_base'); tokens.count_text('hello'); b = rss()\n"
        "tokens.encoding('cl100k_base'); c = rss()\n"
        "print(f'o200k_base +{b - a:.0f} MiB, cl100k_base +{c - b:.0f} MiB more')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    calib, held = load_sets(args.data, args.seed)

    def msgs(t: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": t}]

    ratios = []
    for t in calib:
        size = chat_prompt_size(msgs(t))
        ratios.append((count_messages(msgs(t)) - size.overhead) / size.text_bytes)
    print(f"calibration: {len(calib):,} MMLU prompts (seed {args.seed}); tokens per byte of text:")
    print(
        f"  median {statistics.median(ratios):.3f} (TOKENS_PER_BYTE = {TOKENS_PER_BYTE}), "
        f"2nd percentile {pct(ratios, 0.02):.3f} (TOKENS_PER_BYTE_LOW = {TOKENS_PER_BYTE_LOW}), "
        f"min {min(ratios):.3f}, max {max(ratios):.3f}"
    )
    print(
        "\n| held-out set | prompts | mean bytes | bound < truth (o200k / cl100k) | estimate/truth p2 / p50 / p98 "
        "| low > truth | low/truth p50 | estimate us/prompt | tiktoken us/prompt |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    o200k, cl100k = encoding("o200k_base"), encoding("cl100k_base")
    assert o200k and cl100k
    for name, texts in held.items():
        truth = [count_messages(msgs(t)) for t in texts]
        truth_cl = [count_messages(msgs(t), "gpt-4") for t in texts]
        t0 = time.perf_counter()
        sizes = [chat_prompt_size(msgs(t)) for t in texts]
        est_us = (time.perf_counter() - t0) / len(texts) * 1e6
        t0 = time.perf_counter()
        for t in texts:
            count_messages(msgs(t))
        tik_us = (time.perf_counter() - t0) / len(texts) * 1e6
        under = sum(s.bound < n for s, n in zip(sizes, truth, strict=True))
        under_cl = sum(s.bound < n for s, n in zip(sizes, truth_cl, strict=True))
        est = [s.estimate / n for s, n in zip(sizes, truth, strict=True)]
        low = [s.low / n for s, n in zip(sizes, truth, strict=True)]
        over = sum(x > 1 for x in low) / len(low)
        mean_bytes = statistics.mean(s.text_bytes for s in sizes)
        print(
            f"| {name} | {len(texts):,} | {mean_bytes:,.0f} | {under} / {under_cl} | "
            f"{pct(est, 0.02):.2f} / {pct(est, 0.5):.2f} / {pct(est, 0.98):.2f} | {100 * over:.1f}% | "
            f"{pct(low, 0.5):.2f} | {est_us:.1f} | {tik_us:.1f} |"
        )
    print(f"\ntiktoken's encodings in memory (loaded in a fresh process): {tiktoken_memory()}")


if __name__ == "__main__":
    main()
