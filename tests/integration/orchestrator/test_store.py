"""The orchestrator store on real SQLite and PostgreSQL: migration, atomic claims, fencing, the
lease reaper, shared limits, and killing a lost worker's orphaned process group."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import inspect

from architect.orchestrator.executors import default_executors
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.orchestrator.worker import Worker, WorkerOptions
from architect.store import Store, open_store
from architect.store.orchestrator import ClaimOptions, Outcome
from architect.store.schema import all_metadata


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url, migrate="upgrade")
    yield s
    s.close()


def _plan(n: int, command: str = "true", deps: bool = False) -> str:
    lines = ["# Feature: Load", "## Phase 1: All"]
    for i in range(1, n + 1):
        after = f" (after T{i - 1:03d})" if deps and i > 1 else ""
        lines.append(f"- [ ] T{i:03d} task {i}{after} `$ {command}`")
    return "\n".join(lines) + "\n"


def test_migration_creates_exactly_the_declared_tables(store: Store) -> None:
    assert store.engine is not None
    insp = inspect(store.engine)
    md = all_metadata()
    for name in (
        "features",
        "phases",
        "tasks",
        "task_deps",
        "task_events",
        "feature_items",
        "task_workers",
        "task_limits",
    ):
        declared = {c.name for c in md.tables[name].columns}
        actual = {c["name"] for c in insp.get_columns(name)}
        assert declared == actual, name
        declared_ix = {i.name for i in md.tables[name].indexes}
        assert declared_ix <= {i["name"] for i in insp.get_indexes(name)}, name


def test_concurrent_claims_never_overlap(store: Store) -> None:
    m = Manager(store.tasks)
    m.import_plans(parse_markdown(_plan(60)))
    got: dict[str, list[int]] = {}

    def claimer(name: str) -> None:
        mine: list[int] = []
        while True:
            rows = m.claim(name, 3, 30.0, ClaimOptions())
            if not rows:
                break
            mine += [r["id"] for r in rows]
        got[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for v in got.values() for i in v]
    assert len(ids) == 60 and len(set(ids)) == 60


def test_fenced_completion_and_reaper(store: Store) -> None:
    repo = store.tasks
    m = Manager(repo, backoff_base_s=0.0)
    m.import_plans(parse_markdown(_plan(2, deps=True)))
    now = time.time()
    (t,) = repo.claim("w1", 5, now, 0.5, ClaimOptions())
    assert t["key"] == "T001" and t["attempt"] == 1
    assert repo.reap(now + 0.2) == []  # lease still valid
    reaped = repo.reap(now + 1.0)
    assert [(r["key"], r["status"]) for r in reaped] == [("T001", "ready")]
    (t2,) = repo.claim("w2", 5, now + 1.1, 30, ClaimOptions())
    assert t2["attempt"] == 2 and t2["crashes"] == 1
    # the lost worker's late completion is fenced off; the current one counts, once
    assert not repo.complete(t["id"], 1, now + 1.2, Outcome("succeeded"), "w1")
    assert repo.complete(t2["id"], 2, now + 1.3, Outcome("succeeded"), "w2")
    assert not repo.complete(t2["id"], 2, now + 1.4, Outcome("succeeded"), "w2")
    fid = t["feature_id"]
    assert repo.get_task(fid, "T002")["status"] == "ready"
    assert sum(1 for e in repo.events(fid) if e["kind"] == "succeeded") == 1
    assert repo.heartbeat("w1", [t["id"]], now + 2, 30) == set()


def test_crash_cap_fails_and_blocks_dependents(store: Store) -> None:
    repo = store.tasks
    plan = parse_markdown(_plan(3, deps=True))
    plan[0]["tasks"][0]["max_crashes"] = 1
    Manager(repo).import_plans(plan)
    now = time.time()
    for i in range(2):
        (t,) = repo.claim("w", 1, now + i * 10, 1, ClaimOptions())
        repo.reap(now + i * 10 + 5)
    t1 = repo.get_task(t["feature_id"], "T001")
    assert t1["status"] == "failed" and "lease expired" in t1["reason"]
    assert repo.get_task(t["feature_id"], "T003")["reason"] == "blocked by T002 ← T001 (failed)"


def test_shared_rate_and_concurrency_limits(store: Store) -> None:
    repo = store.tasks
    Manager(repo).import_plans(parse_markdown(_plan(20)))
    now = time.time() + 60  # ahead of the clock, so that the store's own clock reading does not move it
    opts = ClaimOptions(max_running=3, rate=4, rate_period=1.0)  # one start every 0.25 s
    assert len(repo.claim("a", 5, now, 30, opts)) == 1  # spaced: one start now
    assert repo.claim("b", 5, now + 0.1, 30, opts) == []
    assert len(repo.claim("b", 5, now + 0.25, 30, opts)) == 1
    assert len(repo.claim("c", 5, now + 0.5, 30, opts)) == 1
    assert repo.claim("c", 5, now + 2.5, 30, opts) == []  # concurrency 3 caps it


def test_role_limits(store: Store) -> None:
    repo = store.tasks
    plan = parse_markdown(_plan(6))
    for i, t in enumerate(plan[0]["tasks"]):
        t["role"] = "backend" if i % 2 else "frontend"
    Manager(repo).import_plans(plan)
    got = repo.claim("a", 6, time.time(), 30, ClaimOptions(role_limits={"backend": 1}))
    roles = sorted(t["role"] for t in got)
    assert roles == ["backend", "frontend", "frontend", "frontend"]


def test_orphaned_process_group_is_killed_before_redispatch(store: Store, tmp_path: object) -> None:
    repo = store.tasks
    m = Manager(repo)
    m.import_plans(parse_markdown(_plan(1, command="echo rerun")))
    now = time.time()
    (t,) = repo.claim("lost-worker", 1, now, 0.2, ClaimOptions())
    orphan = subprocess.Popen(["sleep", "30"], start_new_session=True)  # what the lost worker left behind
    try:
        import socket

        assert repo.set_process(t["id"], t["attempt"], socket.gethostname(), orphan.pid)
        time.sleep(0.3)
        messages: list[str] = []
        w = Worker(m, default_executors(), WorkerOptions(slots=1, lease_s=5, poll_s=0.05, exit_when_idle=True),
                   on_status=messages.append)  # fmt: skip
        stats = asyncio.run(w.run())
        assert orphan.wait(5) == -signal.SIGKILL
        assert stats["orphans_killed"] == 1 and stats["succeeded"] == 1
        assert any("killed the orphaned process group" in x for x in messages)
        final = repo.get_task(t["feature_id"], "T001")
        assert final["status"] == "succeeded" and final["attempt"] == 2 and final["pgid"] is None
    finally:
        if orphan.poll() is None:
            os.kill(orphan.pid, signal.SIGKILL)
            orphan.wait()
