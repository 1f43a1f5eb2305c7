"""The ratios of `bench/gateway/reference.sh`'s rounds: Architect's throughput over the bare proxy's at
each concurrency, and each one's added p50 (its p50 minus the direct call's p50 in the same run.sh
invocation), per round and as medians over the rounds.

    python bench/gateway/reference_report.py OUT_DIR [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def _runs(folder: Path) -> dict[tuple[str, int], dict[str, float]]:
    """(mode, concurrency) -> the gateway's rps, added p50 and CPU ms per request in one run.sh folder
    (medians when it repeated the matrix)."""
    direct: dict[tuple[str, int], list[dict[str, Any]]] = {}
    gateway: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        key = (r["mode"], int(r["conc"]))
        (direct if r["target"] == "direct" else gateway).setdefault(key, []).append(r)
    out: dict[tuple[str, int], dict[str, float]] = {}
    for key, gws in gateway.items():
        d50 = statistics.median(r["wrk"]["lat_ms"]["p50"] for r in direct[key])
        out[key] = {
            "rps": statistics.median(r["wrk"]["rps"] for r in gws),
            "added_p50_ms": statistics.median(r["wrk"]["lat_ms"]["p50"] for r in gws) - d50,
            "cpu_ms": statistics.median(1000 * r["gw_cpu_s"] / max(1, r["wrk"]["requests"]) for r in gws),
            "errors": sum(sum(r["wrk"]["errors"].values()) for r in gws),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rounds = sorted({p.name.split("-")[1] for p in args.out.glob("architect-*") if p.is_dir()}, key=int)
    rows: list[dict[str, Any]] = []
    for r in rounds:
        if not all((args.out / f"{t}-{r}" / "results.jsonl").exists() for t in ("architect", "bare")):
            continue  # a round still running (or stopped)
        a, b = _runs(args.out / f"architect-{r}"), _runs(args.out / f"bare-{r}")
        for key in sorted(a.keys() & b.keys()):
            rows.append(
                {
                    "round": int(r),
                    "mode": key[0],
                    "conc": key[1],
                    "architect_rps": a[key]["rps"],
                    "bare_rps": b[key]["rps"],
                    "ratio": a[key]["rps"] / b[key]["rps"],
                    "architect_added_p50_ms": a[key]["added_p50_ms"],
                    "bare_added_p50_ms": b[key]["added_p50_ms"],
                    "architect_cpu_ms": a[key]["cpu_ms"],
                    "bare_cpu_ms": b[key]["cpu_ms"],
                    "errors": a[key]["errors"] + b[key]["errors"],
                }
            )
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(
        "| round | mode | conc | architect rps | bare rps | ratio | added p50 ms, architect / bare | CPU ms/req, architect / bare | errors |"
    )
    print("|---:|---|---:|---:|---:|---:|---|---|---:|")
    for x in rows:
        print(
            f"| {x['round']} | {x['mode']} | {x['conc']} | {x['architect_rps']:,.0f} | {x['bare_rps']:,.0f} | "
            f"{x['ratio']:.2f} | {x['architect_added_p50_ms']:.2f} / {x['bare_added_p50_ms']:.2f} | "
            f"{x['architect_cpu_ms']:.3f} / {x['bare_cpu_ms']:.3f} | {x['errors']} |"
        )
    print("\nMedians over the rounds:\n")
    print("| mode | conc | throughput ratio | added p50 ms, architect / bare |")
    print("|---|---:|---:|---|")
    for mode, conc in sorted({(x["mode"], x["conc"]) for x in rows}):
        sel = [x for x in rows if x["mode"] == mode and x["conc"] == conc]
        print(
            f"| {mode} | {conc} | {statistics.median(x['ratio'] for x in sel):.2f} | "
            f"{statistics.median(x['architect_added_p50_ms'] for x in sel):.2f} / "
            f"{statistics.median(x['bare_added_p50_ms'] for x in sel):.2f} |"
        )


if __name__ == "__main__":
    main()
