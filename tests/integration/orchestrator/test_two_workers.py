"""Two `architect worker` processes on one PostgreSQL with --concurrency 3 --rate 8/s: never more
than 3 running tasks, never more than 8 starts in any 1-second window, every task done once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.store import open_store


def test_two_worker_processes_respect_concurrency_and_rate(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url, migrate="upgrade")
    lines = ["# Feature: Limits", "## Phase 1: All"] + [
        f"- [ ] T{i:03d} t `$ sleep 0.25`" for i in range(1, 31)
    ]
    Manager(store.tasks).import_plans(parse_markdown("\n".join(lines)))
    env = {**os.environ, "ARCHITECT_DATABASE_URL": pg_url}
    cmd = [sys.executable, "-m", "architect", "worker", "--concurrency", "3", "--rate", "8/s", "--slots", "3",
           "--exit-when-idle", "--lease", "10", "--poll", "0.02"]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(2)]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
    f = store.tasks.get_feature("limits")
    assert {t["status"] for t in store.tasks.tasks(f["id"])} == {"succeeded"}
    events = store.tasks.events(f["id"])
    claims = sorted((e["ts"], e["task_key"], e["worker_id"]) for e in events if e["kind"] == "claimed")
    ends = {(e["task_key"]): e["ts"] for e in events if e["kind"] == "succeeded"}
    assert len(claims) == 30 and len(ends) == 30
    assert len({w for _, _, w in claims}) == 2  # both processes did work
    starts = [c[0] for c in claims]
    for i in range(len(starts) - 8):
        assert starts[i + 8] - starts[i] >= 1.0 - 1e-6, f"9 starts within {starts[i + 8] - starts[i]:.3f}s"
    points = sorted(
        [(ts, 1) for ts, _, _ in claims] + [(ts, -1) for ts in ends.values()], key=lambda p: (p[0], p[1])
    )
    running = peak = 0
    for _, d in points:
        running += d
        peak = max(peak, running)
    assert peak <= 3
    assert max(Counter(e["task_key"] for e in events if e["kind"] == "succeeded").values()) == 1
    store.close()
