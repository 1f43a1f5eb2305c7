"""Gateway overhead benchmark, measured in one run: direct calls to a fast upstream, the same calls
through a feature-less pass-through proxy (the floor), and through Architect.

    python bench/gateway/run.py [--conc 1 16 64] [--duration 8] [--repeats 3] [--modes nonstream stream]

The upstream and wrk run on CPU 0, the proxies on CPU 1 (taskset). Prints medians over the repeats,
CPU ms per request for each proxy, and the targets: Architect's throughput >= 50% of the floor's at
concurrency 64; added p50 <= 1 ms at concurrency 1; added p99 <= 2x the floor's at concurrency 16."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable
UP, PT, GW = 18090, 18091, 18092
BODIES = {
    "nonstream": {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16,
    },
    "stream": {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
    },
}


def wait(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, body: Path, conc: int, duration: int) -> dict[str, float]:
    env = {**os.environ, "BODY_FILE": str(body)}
    cmd = [
        "taskset",
        "-c",
        "0",
        "wrk",
        "-t1",
        f"-c{conc}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(HERE / "wrk_post.lua"),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 30).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
    n, errors, p50, p99, dur_us = (int(x) for x in line.split()[1:])
    return {"rps": n / (dur_us / 1e6), "errors": errors, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "n": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conc", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", nargs="+", default=["nonstream", "stream"])
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--config", type=Path, default=HERE / "architect-bench.yaml", help="Architect's config")
    args = ap.parse_args()
    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise SystemExit("needs wrk and taskset: apt-get install -y wrk util-linux")
    for port in (UP, PT, GW):  # a leftover server would be measured instead of the one started here
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"port {port} is already in use: stop what is listening there first")
    tmp = Path(tempfile.mkdtemp(prefix="gwbench-"))
    for mode, body in BODIES.items():
        (tmp / f"{mode}.json").write_text(json.dumps(body))
    env = {
        **os.environ,
        "ARCHITECT_HOME": str(tmp / "home"),
        "BENCH_UPSTREAM_PORT": str(UP),
        "ARCHITECT_ADMIN_KEY": "",
    }
    procs = [
        subprocess.Popen(["taskset", "-c", "0", PY, str(HERE / "upstream.py"), str(UP)]),
        subprocess.Popen(
            ["taskset", "-c", "1", PY, str(HERE / "passthrough.py"), str(PT), f"http://127.0.0.1:{UP}"]
        ),
        subprocess.Popen(
            [
                "taskset",
                "-c",
                "1",
                PY,
                "-m",
                "architect",
                "serve",
                "--config",
                str(args.config),
                "--port",
                str(GW),
                "--log-level",
                "warning",
            ],
            env=env,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        wait(f"http://127.0.0.1:{UP}/health")
        wait(f"http://127.0.0.1:{PT}/healthz")
        wait(f"http://127.0.0.1:{GW}/healthz")
        targets = {"direct": (UP, None), "floor": (PT, procs[1].pid), "architect": (GW, procs[2].pid)}
        results: dict[tuple[str, str, int], list[dict[str, float]]] = {}
        for rep in range(args.repeats):
            for mode in args.modes:
                for conc in args.conc:
                    for name, (port, pid) in targets.items():
                        url = f"http://127.0.0.1:{port}/v1/chat/completions"
                        wrk(url, tmp / f"{mode}.json", conc, 1)  # warm-up
                        c0 = cpu_seconds(pid) if pid else 0.0
                        r = wrk(url, tmp / f"{mode}.json", conc, args.duration)
                        r["cpu_ms_per_req"] = ((cpu_seconds(pid) - c0) * 1000 / r["n"]) if pid else 0.0
                        results.setdefault((name, mode, conc), []).append(r)
                        print(
                            f"rep {rep + 1} {mode:9} c={conc:<3} {name:9} {r['rps']:9.0f} req/s "
                            f"p50 {r['p50_ms']:6.2f} ms p99 {r['p99_ms']:7.2f} ms "
                            f"cpu {r['cpu_ms_per_req']:.3f} ms/req errors {r['errors']}",
                            flush=True,
                        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)

    def med(name: str, mode: str, conc: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(name, mode, conc)])

    print(
        f"\nmedians of {args.repeats} runs, {args.duration} s each; upstream+wrk on CPU 0, proxies on CPU 1\n"
    )
    print(
        "| mode | conc | direct rps | floor rps | architect rps | architect/floor | added p50 floor | "
        "added p50 architect | added p99 floor | added p99 architect | CPU ms/req floor | CPU ms/req architect |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    verdicts = []
    for mode in args.modes:
        for conc in args.conc:
            d50, d99 = med("direct", mode, conc, "p50_ms"), med("direct", mode, conc, "p99_ms")
            f_rps, a_rps = med("floor", mode, conc, "rps"), med("architect", mode, conc, "rps")
            f50, a50 = med("floor", mode, conc, "p50_ms") - d50, med("architect", mode, conc, "p50_ms") - d50
            f99, a99 = med("floor", mode, conc, "p99_ms") - d99, med("architect", mode, conc, "p99_ms") - d99
            print(
                f"| {mode} | {conc} | {med('direct', mode, conc, 'rps'):,.0f} | {f_rps:,.0f} | {a_rps:,.0f} | "
                f"{a_rps / f_rps:.2f} | {f50:.2f} | {a50:.2f} | {f99:.2f} | {a99:.2f} | "
                f"{med('floor', mode, conc, 'cpu_ms_per_req'):.3f} | {med('architect', mode, conc, 'cpu_ms_per_req'):.3f} |"
            )
            if conc == 64:
                verdicts.append(
                    (f"{mode} c=64 throughput >= 50% of floor", a_rps / f_rps >= 0.5, f"{a_rps / f_rps:.2f}")
                )
            if conc == 1:
                verdicts.append((f"{mode} c=1 added p50 <= 1 ms", a50 <= 1.0, f"{a50:.2f} ms"))
            if conc == 16:
                verdicts.append(
                    (
                        f"{mode} c=16 added p99 <= 2x floor",
                        a99 <= 2 * max(f99, 0.01),
                        f"{a99:.2f} vs {f99:.2f} ms",
                    )
                )
    print()
    for what, ok, value in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {what}: {value}")
    if args.json:
        args.json.write_text(json.dumps({f"{k[0]}|{k[1]}|{k[2]}": v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
