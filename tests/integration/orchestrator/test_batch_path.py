"""`complete_and_claim` (on PostgreSQL one statement, see `store.orchestrator.fastpath`): fenced
completion, dependency count-down, claims exactly within n and the filters, events recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.store import Store, open_store
from architect.store.orchestrator import ClaimOptions, Outcome


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url, migrate="upgrade")
    yield s
    s.close()


def _plan(slug: str, chains: int, length: int, executor_cmd: str = "true") -> str:
    lines = [f"# Feature: {slug}", "## Phase 1: All"]
    for c in range(chains):
        for i in range(length):
            after = f" (after C{c}S{i - 1})" if i else ""
            lines.append(f"- [ ] C{c}S{i} task{after} `$ {executor_cmd}`")
    return "\n".join(lines) + "\n"


def test_complete_and_claim_fences_counts_down_and_records_events(store: Store) -> None:
    repo = store.tasks
    Manager(repo).import_plans(parse_markdown(_plan("Chains", 3, 2)))
    fid = repo.get_feature("chains")["id"]
    now = time.time()
    first = repo.claim("w1", 2, now, 30, ClaimOptions())
    assert len(first) == 2 and {t["key"] for t in first} <= {"C0S0", "C1S0", "C2S0"}
    a, b = first
    stale = (a["id"], a["attempt"] + 1, Outcome("succeeded", duration_s=0.5))  # not the current attempt
    items = [stale, (b["id"], b["attempt"], Outcome("succeeded", duration_s=0.25))]
    done, claimed = repo.complete_and_claim(items, "w1", 1, now + 0.1, 30, ClaimOptions())
    assert done == [False, True]
    assert len(claimed) == 1 and claimed[0]["status"] == "running" and claimed[0]["worker_id"] == "w1"
    assert claimed[0]["attempt"] == 1 and claimed[0]["id"] not in (a["id"], b["id"])
    tasks = {t["key"]: t for t in repo.tasks(fid)}
    assert tasks[a["key"]]["status"] == "running"  # the stale completion was fenced off
    assert tasks[b["key"]]["status"] == "succeeded"
    after_b = b["key"].replace("S0", "S1")
    assert tasks[after_b]["pending_deps"] == 0 and tasks[after_b]["status"] in ("ready", "running")
    assert tasks[a["key"].replace("S0", "S1")]["status"] == "pending"
    evs = repo.events(fid)
    ok = [e for e in evs if e["kind"] == "succeeded"]
    assert [(e["task_key"], e["attempt"], e["worker_id"]) for e in ok] == [(b["key"], 1, "w1")]
    assert ok[0]["data"] == {"duration_s": 0.25}
    claims = [e for e in evs if e["kind"] == "claimed"]
    assert sorted(e["task_id"] for e in claims) == sorted([a["id"], b["id"], claimed[0]["id"]])
    # the same outcome again is fenced: recorded once
    done2, _ = repo.complete_and_claim(items[1:], "w1", 0, now + 0.2, 30, ClaimOptions())
    assert done2 == [False]
    assert sum(1 for e in repo.events(fid) if e["kind"] == "succeeded") == 1


def test_claim_filters_and_exclusion(store: Store) -> None:
    repo = store.tasks
    m = Manager(repo)
    m.import_plans(parse_markdown(_plan("One", 4, 1)))
    m.import_plans(parse_markdown(_plan("Two", 4, 1)))
    one, two = repo.get_feature("one")["id"], repo.get_feature("two")["id"]
    now = time.time()
    assert repo.claim("w", 10, now, 30, ClaimOptions(exclude_executors=("command",))) == []
    got = repo.claim("w", 10, now, 30, ClaimOptions(feature_ids=(two,), exclude_executors=("llm",)))
    assert len(got) == 4 and {t["feature_id"] for t in got} == {two}
    target = repo.tasks(one)[2]
    (t,) = repo.claim("w", 10, now, 30, ClaimOptions(task_ids=(target["id"],)))
    assert t["id"] == target["id"]
    m.pause("one")
    assert repo.claim("w", 10, now, 30, ClaimOptions()) == []  # paused features are not claimed


def test_concurrent_batches_claim_each_task_once(store: Store) -> None:
    repo = store.tasks
    Manager(repo).import_plans(parse_markdown(_plan("Load", 6, 5)))
    fid = repo.get_feature("load")["id"]
    runs: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        held = repo.claim(name, 2, time.time(), 30, ClaimOptions())
        with lock:
            runs.extend(t["id"] for t in held)
        idle = 0
        while idle < 20:
            items = [(t["id"], t["attempt"], Outcome("succeeded")) for t in held]
            done, held = repo.complete_and_claim(items, name, 2, time.time(), 30, ClaimOptions())
            assert all(done)
            with lock:
                runs.extend(t["id"] for t in held)
            idle = 0 if held or items else idle + 1
            if not held:
                time.sleep(0.01)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [t["status"] for t in repo.tasks(fid)]
    assert statuses.count("succeeded") == 30
    evs = repo.events(fid)
    assert sum(1 for e in evs if e["kind"] == "succeeded") == 30
    assert sum(1 for e in evs if e["kind"] == "claimed") == 30
    assert len(runs) == len(set(runs))  # no task was handed out twice
