"""Memory of `architect serve` under load: resident memory before the first request, the peak (VmHWM)
under `--phase-s` of non-streaming then `--phase-s` of streaming calls at concurrency `--conc`, and
the growth from 20 s into the load to its end.

    python bench/memory_bench.py [--scenario reference dashboard] [--phase-s 30] [--conc 32]
                                 [--soak-s 600] [--json FILE]

Scenarios (each a fresh server and a fresh SQLite store under a temporary ARCHITECT_HOME):
- `reference`: the reference bench's config (bench/gateway/architect-bench.yaml), open mode.
- `dashboard`: the same config with an admin key; a virtual key with a budget and a tpm limit (both far
  above what the load uses, so they are checked on every call and never refuse) sends the load; the
  overview page is loaded (its HTML, scripts, stylesheet and API calls), its live event stream stays
  open and is read, and its API calls repeat every 3 s as the page does while calls arrive.

The SQLite database is migrated beforehand by `architect db upgrade` (a server restarting on its
database); `--fresh-db` leaves it empty, so the server migrates it at start (and imports Alembic).

The upstream is the shared reference mock (`../shared/bench/gateway/mock_upstream.py`); wrk sends the
load (`bench/gateway/wrk_post.lua`). Upstream, wrk and this script run on CPU 0, the gateway on CPU 1.
`--soak-s N` instead alternates non-stream and stream phases for N seconds and prints the resident
memory once a minute (the "flat over 10 minutes" check). A run whose load had errors says so: its
figures are then not a measurement of the intended load.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
ADMIN = "sk-admin-memory-bench"
BODY: dict[str, Any] = {
    "model": "mock-model",
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 16,
}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


def shared_mock() -> Path:
    """The shared reference mock upstream, looked for beside the project root (and one level up, for
    a git worktree under a folder of worktrees)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        p = base / "shared" / "bench" / "gateway" / "mock_upstream.py"
        if p.exists():
            return p
    raise SystemExit("the shared mock upstream (../shared/bench/gateway/mock_upstream.py) is not there")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """VmRSS of one process every `interval` s, as (seconds since `t0`, kB)."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.t0 = time.monotonic()
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic() - self.t0, status_kb(self.pid, "VmRSS")))
            except OSError:
                return
            self.stop.wait(self.interval)

    def at(self, t: float) -> int:
        """The sample closest to `t` seconds."""
        return min(self.samples, key=lambda s: abs(s[0] - t))[1]


def wrk(url: str, body: Path, conc: int, seconds: float, key: str) -> dict[str, Any]:
    env = {**os.environ, "BODY_FILE": str(body), "BENCH_KEY": key}
    cmd = ["taskset", "-c", "0", "wrk", "-t1", f"-c{conc}", f"-d{int(seconds)}s", "--timeout", "10s", "--latency",
           "-s", str(HERE / "gateway" / "wrk_post.lua"), url]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"wrk printed no RESULT line:\n{out}")
    n, errors, p50, _p99, dur_us = (int(x) for x in line.split()[1:])
    return {"requests": n, "errors": errors, "rps": round(n / (dur_us / 1e6)), "p50_ms": p50 / 1000}


class Dashboard:
    """A browser with the overview page open: logged in with the admin key, its HTML, assets and API
    calls fetched, the live event stream read, the API calls repeated every 3 s while calls arrive."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.csrf = ""
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.events_bytes = 0
        self.reloads = 0

    def get(self, path: str, api: bool = False) -> bytes:
        req = urllib.request.Request(self.base + path)
        if api:
            req.add_header("Authorization", f"Session {self.csrf}")
        with self.opener.open(req, timeout=30) as r:
            if r.status != 200:
                self.failures.append(f"{path}: {r.status}")
            return bytes(r.read())

    def login(self) -> None:
        page = self.get("/ui/login").decode()
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token, "no login form"
        form = urllib.parse.urlencode({"csrf": token.group(1), "key": ADMIN}).encode()
        with self.opener.open(urllib.request.Request(self.base + "/ui/login", data=form), timeout=30):
            pass

    def load_page(self) -> None:
        html = self.get("/ui/overview").decode()
        m = re.search(r'name="csrf-token" content="([^"]+)"', html)
        assert m, "not logged in"
        self.csrf = m.group(1)
        assets = set(re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', html))
        for asset in sorted(assets):
            text = self.get(asset).decode()
            assets |= {f"/ui/static/{p.lstrip('./')}" for p in re.findall(r'from "(\.\.?/[^"]+)"', text)}
        for asset in sorted(assets):
            self.get(asset)
        self.api_calls(alerts=True, recent=True)

    def api_calls(self, alerts: bool = False, recent: bool = False) -> None:
        """What overview.js's `load()` asks for (plus `loadAlerts`/`loadRecent` on the first load)."""
        now = time.time()
        day = time.mktime((*time.localtime(now)[:3], 0, 0, 0, 0, 0, -1))
        month = time.mktime((*time.localtime(now)[:2], 1, 0, 0, 0, 0, 0, -1))
        since = now - 3600
        paths = [
            f"/api/v1/metrics/summary?since={since}&until={now}&group_by=",
            f"/api/v1/metrics/summary?since={day}&until={now}&group_by=&percentiles=false",
            f"/api/v1/metrics/summary?since={month}&until={now}&group_by=&percentiles=false",
            f"/api/v1/metrics/timeseries?since={since}&until={now}&step=60",
            "/api/v1/budgets",
        ]
        if alerts:
            paths.append("/api/v1/alerts")
        if recent:
            paths.append("/api/v1/calls?limit=10")
        for p in paths:
            try:
                self.get(p, api=True)
            except OSError as exc:
                self.failures.append(f"{p}: {exc}")

    def run_live(self) -> list[threading.Thread]:
        def events() -> None:
            req = urllib.request.Request(self.base + "/api/v1/events?topics=call")
            req.add_header("Authorization", f"Session {self.csrf}")
            req.add_header("Accept", "text/event-stream")
            try:
                with self.opener.open(req, timeout=600) as r:
                    while not self.stop.is_set():
                        chunk = r.read1(65536)
                        if not chunk:
                            break
                        self.events_bytes += len(chunk)
            except OSError as exc:
                if not self.stop.is_set():
                    self.failures.append(f"events: {exc}")

        def reload() -> None:
            n = 0
            while not self.stop.wait(3.0):
                n += 1
                self.api_calls(alerts=n % 10 == 0)
                self.reloads += 1

        threads = [threading.Thread(target=events, daemon=True), threading.Thread(target=reload, daemon=True)]
        for t in threads:
            t.start()
        return threads


def api_json(base: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method)
    req.add_header("Authorization", f"Bearer {ADMIN}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        out: dict[str, Any] = json.loads(r.read())
        return out


def run_scenario(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    up, gw = free_port(), free_port()
    home = tmp / name
    home.mkdir()
    env = {**os.environ, "ARCHITECT_HOME": str(home), "BENCH_UPSTREAM_PORT": str(up),
           "ARCHITECT_ADMIN_KEY": ADMIN if name == "dashboard" else ""}  # fmt: skip
    env.pop("ARCHITECT_DATABASE_URL", None)
    if not args.fresh_db:  # a server restarting on its database, as it usually does
        subprocess.run([PY, "-m", "architect", "db", "upgrade"], env=env, check=True, capture_output=True)
    mock = subprocess.Popen(
        ["taskset", "-c", "0", PY, str(shared_mock()), str(up)], stdout=subprocess.DEVNULL
    )
    cmd = ["taskset", "-c", "1", PY, "-m", "architect", "serve", "--config", str(args.config),
           "--port", str(gw), "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(cmd, env=env, stderr=open(home / "server.log", "wb"))  # noqa: SIM115
    base = f"http://127.0.0.1:{gw}"
    out: dict[str, Any] = {"scenario": name}
    dash: Dashboard | None = None
    try:
        wait_up(f"http://127.0.0.1:{up}/health")
        wait_up(base + "/healthz")
        time.sleep(2.0)  # start-up work spawned in the background (if any) finishes
        out["rss_idle_mib"] = status_kb(server.pid, "VmRSS") / 1024
        out["hwm_idle_mib"] = status_kb(server.pid, "VmHWM") / 1024
        key = "bench"
        if name == "dashboard":
            created = api_json(
                base, "POST", "/api/v1/keys", {"name": "memory-bench", "budget_usd": 1e6, "tpm": 10**9}
            )
            key = created["key"]
            dash = Dashboard(base)
            dash.login()
            dash.load_page()
            out["rss_after_page_mib"] = status_kb(server.pid, "VmRSS") / 1024
            dash.run_live()
        for mode, body in (("nonstream", BODY), ("stream", STREAM_BODY)):
            (home / f"{mode}.json").write_text(json.dumps(body))
        url = base + "/v1/chat/completions"
        sampler = Sampler(server.pid)
        sampler.start()
        phases: list[dict[str, Any]] = []
        total = args.soak_s or 2 * args.phase_s
        i = 0
        while time.monotonic() - sampler.t0 < total - 1:
            mode = ("nonstream", "stream")[i % 2]
            left = total - (time.monotonic() - sampler.t0)
            r = wrk(url, home / f"{mode}.json", args.conc, min(args.phase_s, max(1.0, left)), key)
            phases.append({"mode": mode, **r})
            print(f"  {name} {mode:9} {r['rps']:6} req/s  errors {r['errors']}  p50 {r['p50_ms']:.1f} ms  "
                  f"rss {sampler.samples[-1][1] / 1024:.1f} MiB", flush=True)  # fmt: skip
            i += 1
        end = time.monotonic() - sampler.t0
        sampler.stop.set()
        sampler.join()
        out["hwm_mib"] = status_kb(server.pid, "VmHWM") / 1024
        out["rss_end_mib"] = sampler.samples[-1][1] / 1024
        out["rss_20s_mib"] = sampler.at(20.0) / 1024
        out["growth_20s_to_end_pct"] = 100 * (out["rss_end_mib"] / out["rss_20s_mib"] - 1)
        out["max_after_20s_mib"] = max(kb for t, kb in sampler.samples if t >= 20.0) / 1024
        out["samples_mib"] = [(round(t, 1), round(kb / 1024, 1)) for t, kb in sampler.samples[::4]]
        out["phases"] = phases
        out["errors"] = sum(p["errors"] for p in phases)
        out["seconds"] = round(end, 1)
        if args.soak_s:
            out["per_minute_mib"] = [
                round(sampler.at(60.0 * m) / 1024, 1) for m in range(1, int(end // 60) + 1)
            ]
        if dash is not None:
            dash.stop.set()
            out["dashboard"] = {"reloads": dash.reloads, "event_bytes": dash.events_bytes,
                                "failures": dash.failures[:5]}  # fmt: skip
    finally:
        if dash is not None:
            dash.stop.set()
        for p in (server, mock):
            p.terminate()
        for p in (server, mock):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--scenario", nargs="+", default=["reference", "dashboard"], choices=["reference", "dashboard"]
    )
    ap.add_argument("--phase-s", type=float, default=30.0)
    ap.add_argument("--conc", type=int, default=32)
    ap.add_argument("--soak-s", type=float, default=0.0, help="alternate phases for this long instead")
    ap.add_argument("--config", type=Path, default=HERE / "gateway" / "architect-bench.yaml")
    ap.add_argument(
        "--fresh-db", action="store_true", help="start on an empty database (the server migrates it first)"
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise SystemExit("needs wrk and taskset: apt-get install -y wrk util-linux")
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="membench-"))
    results = []
    try:
        for name in args.scenario:
            results.append(run_scenario(name, args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}; "
          f"concurrency {args.conc}, phases of {args.phase_s:g} s" + (", fresh database" if args.fresh_db else "") + (f", soak {args.soak_s:g} s" if args.soak_s else ""))  # fmt: skip
    print(
        "\n| scenario | RSS idle (MiB) | peak VmHWM (MiB) | RSS at 20 s | RSS at end | growth 20 s -> end | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['scenario']} | {r['rss_idle_mib']:.1f} | {r['hwm_mib']:.1f} | {r['rss_20s_mib']:.1f} | "
              f"{r['rss_end_mib']:.1f} | {r['growth_20s_to_end_pct']:+.1f}% | {r['errors']} |")  # fmt: skip
    for r in results:
        if "per_minute_mib" in r:
            print(f"{r['scenario']}: RSS per minute (MiB): {r['per_minute_mib']}")
        if r["errors"]:
            print(
                f"{r['scenario']}: the load had {r['errors']} errors: not a measurement of the intended load"
            )
        if r.get("dashboard", {}).get("failures"):
            print(f"{r['scenario']}: dashboard failures: {r['dashboard']['failures']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
