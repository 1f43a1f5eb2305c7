"""The agent-facing APIs against chat completions on one gateway, in the same run: `/v1/messages`
(translated to the OpenAI-compatible mock upstream) and `/v1/responses` (when the gateway serves it)
against `/v1/chat/completions`, stream and non-stream, at concurrency 1 and 64, with the shared
instrument's mock upstream (../shared/bench/gateway/mock_upstream.py) and its wrk script.

    .venv/bin/python bench/gateway/apis_bench.py [--rounds 5] [--duration 8] [--conc 1 64] [--wrk-timeout S]

Architect (`serve --config bench/gateway/architect-bench.yaml`, open mode, a fresh ARCHITECT_HOME) is
pinned to CPU 1, the mock and wrk to CPU 0. Each round runs every (mode, concurrency) cell once per API
(`--apis`; `responses-nostore` is the Responses request with `store: false`, as Codex CLI sends
it) in an order that rotates between rounds, plus the mock directly at concurrency 1 (for added latency).
Prints, per cell, the median over rounds of each API's throughput ratio to chat completions in the same
round, and of its p50 latency added over the mock alone at concurrency 1."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "bench" / "gateway"
PORT, MOCK = 4000, 18080
PROMPT = "Write one sentence about benchmarks."
BODIES = {
    "chat": (
        "/v1/chat/completions",
        {"model": "mock-model", "messages": [{"role": "user", "content": PROMPT}]},
    ),
    "messages": (
        "/v1/messages",
        {"model": "mock-model", "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]},
    ),
    "responses": ("/v1/responses", {"model": "mock-model", "input": PROMPT}),
    # as Codex CLI sends it: nothing kept for previous_response_id
    "responses-nostore": ("/v1/responses", {"model": "mock-model", "input": PROMPT, "store": False}),
}


def wait(url: str) -> None:
    for _ in range(150):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answers at {url}")


def serves(path: str, body: dict[str, object]) -> bool:
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}", data=json.dumps(body).encode(), method="POST"
    )
    req.add_header("content-type", "application/json")
    try:
        urllib.request.urlopen(req, timeout=5).read()
        return True
    except OSError:
        return False


WRK_TIMEOUT: list[str] = []  # `--wrk-timeout`: wrk's own default (2 s) unless given


def wrk(url: str, body_file: Path, conc: int, duration: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "WRK_BODY_FILE": str(body_file), "WRK_OUT": out.name, "WRK_VALIDATE": "0"}
        threads = 1 if conc == 1 else 2
        cmd = [
            "taskset",
            "-c",
            "0",
            "wrk",
            f"-t{threads}",
            f"-c{conc}",
            f"-d{duration}s",
            *WRK_TIMEOUT,
            "-s",
            str(SHARED / "wrk_chat.lua"),
            url,
        ]
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=duration + 30)
        data = json.loads(Path(out.name).read_text())
    errors = sum(data["errors"].values())
    if errors:
        raise SystemExit(f"{url}: {errors} errors ({data['errors']}, {data['sample']})")
    return {"rps": data["rps"], "p50": data["lat_ms"]["p50"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--conc", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--apis", nargs="+", default=list(BODIES), help="chat is always measured")
    ap.add_argument(
        "--wrk-timeout",
        type=int,
        help="seconds before wrk counts a request as timed out (its default: 2); on a loaded machine a "
        "starved core can hold requests longer, and any error ends the run",
    )
    args = ap.parse_args()
    if args.wrk_timeout:
        WRK_TIMEOUT[:] = ["--timeout", f"{args.wrk_timeout}s"]
    home = tempfile.mkdtemp(prefix="apis-bench-")
    mock = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, str(SHARED / "mock_upstream.py"), str(MOCK)]
    )
    env = {**os.environ, "ARCHITECT_HOME": home, "ARCHITECT_ADMIN_KEY": "", "BENCH_UPSTREAM_PORT": str(MOCK)}
    gw = subprocess.Popen(
        [
            "taskset",
            "-c",
            "1",
            str(ROOT / ".venv/bin/architect"),
            "serve",
            "--config",
            str(ROOT / "bench/gateway/architect-bench.yaml"),
            "--port",
            str(PORT),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        wait(f"http://127.0.0.1:{MOCK}/health")
        wait(f"http://127.0.0.1:{PORT}/healthz")
        wanted = {"chat", *args.apis}
        apis = [a for a, (path, body) in BODIES.items() if a in wanted and serves(path, body)]
        files: dict[tuple[str, str], Path] = {}
        for api in apis:
            for mode in ("nonstream", "stream"):
                body = dict(BODIES[api][1], stream=mode == "stream")
                f = Path(home) / f"{api}-{mode}.json"
                f.write_text(json.dumps(body))
                files[api, mode] = f
        results: list[dict[str, object]] = []
        for r in range(args.rounds):
            order = apis[r % len(apis) :] + apis[: r % len(apis)]
            for mode in ("nonstream", "stream"):
                direct = wrk(
                    f"http://127.0.0.1:{MOCK}/v1/chat/completions", files["chat", mode], 1, args.duration
                )
                for conc in args.conc:
                    cell: dict[str, object] = {
                        "round": r,
                        "mode": mode,
                        "conc": conc,
                        "direct_p50": direct["p50"],
                    }
                    for api in order:
                        cell[api] = wrk(
                            f"http://127.0.0.1:{PORT}{BODIES[api][0]}", files[api, mode], conc, args.duration
                        )
                    results.append(cell)
                    print(json.dumps(cell), flush=True)
        print(
            "\n| mode | conc | API | rps ratio to chat (median) | rounds | added p50 over the mock, ms (median) |"
        )
        print("|---|---|---|---|---|---|")
        for mode in ("nonstream", "stream"):
            for conc in args.conc:
                cells = [c for c in results if c["mode"] == mode and c["conc"] == conc]
                for api in apis:
                    ratios = [c[api]["rps"] / c["chat"]["rps"] for c in cells]  # type: ignore[index]
                    added = [c[api]["p50"] - c["direct_p50"] for c in cells]  # type: ignore[index,operator]
                    shown = ", ".join(f"{x:.2f}" for x in ratios)
                    print(
                        f"| {mode} | {conc} | {api} | {statistics.median(ratios):.2f} | {shown} | {statistics.median(added):.2f} |"
                    )
    finally:
        gw.terminate()
        mock.terminate()
        gw.wait(20)
        mock.wait(20)


if __name__ == "__main__":
    main()
