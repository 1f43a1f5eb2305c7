"""The attempts of agent tasks, the recorded base SHA and the per-feature merge locks behave the same
on the unit-test double, SQLite and PostgreSQL: attempt rows written once and fenced, rows left
`running` by a dead worker found, a merge lock that one holder at a time takes (threads racing on
the real databases), that its holder extends and that expires; and migration 0010 goes both ways."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from architect.errors import NotFoundInStore
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.records import CallRecord
from architect.store import Store, migrate, open_store
from architect.store.engine import make_engine
from architect.store.orchestrator import ClaimOptions, Outcome, TaskRepo

PLAN = (
    "---\nrepo: /srv/shop\n---\n# Feature: Agents\n## Phase 1: A\n- [ ] T1 Edit `@`\n- [ ] T2 Also `@aider`\n"
)


def _feature(repo: TaskRepo) -> tuple[Manager, int, dict[str, Any]]:
    m = Manager(repo, check_repos=lambda plans: None)
    fid = m.import_plans(parse_markdown(PLAN))[0]["feature"]["id"]
    return m, fid, {t["key"]: t for t in repo.tasks(fid)}


def test_an_attempt_is_started_updated_and_finished_once(store: Store) -> None:
    repo = store.tasks
    _, fid, t = _feature(repo)
    row = {"task_id": t["T1"]["id"], "feature_id": fid, "attempt": 1, "started_at": 100.0, "agent": "builtin"}
    aid = repo.start_attempt({**row, "runner": "builtin", "model": "fast", "worker_id": "w1"})
    got = repo.get_attempt(aid)
    assert (got["outcome"], got["agent"], got["files"], got["finished_at"]) == (
        "running",
        "builtin",
        None,
        None,
    )
    assert repo.update_attempt(aid, {"key_id": "k-1", "worktree": "/r/.git/architect/worktrees/agents/T1-a1"})
    assert repo.update_attempt(aid, {})  # nothing to record: still running
    done = {
        "outcome": "validation_failed", "reason": "2 tests failed", "output": "FAILED test_x\n" * 3,
        "files": ["a.py", "b/c.py"], "files_changed": 2, "lines_added": 10, "lines_removed": 3,
        "commits": [{"sha": "ab" * 20, "subject": "edit"}], "validation": {"exit_code": 1, "passed": 3, "failed": 2},
        "head_sha": "cd" * 20, "isolation": "bwrap", "finished_at": 112.5,
    }  # fmt: skip
    assert repo.finish_attempt(aid, done)
    got = repo.get_attempt(aid)
    assert {k: got[k] for k in done} == done
    assert (got["duration_s"], got["key_id"], got["started_at"]) == (12.5, "k-1", 100.0)
    # fenced: a finished attempt is not finished again, nor updated
    assert not repo.finish_attempt(aid, {"outcome": "succeeded", "finished_at": 200.0})
    assert not repo.update_attempt(aid, {"head_sha": "ef" * 20})
    assert repo.get_attempt(aid)["outcome"] == "validation_failed"
    second = repo.start_attempt({**row, "attempt": 2, "started_at": 120.0})
    other = repo.start_attempt({**row, "task_id": t["T2"]["id"], "started_at": 121.0})
    assert [a["id"] for a in repo.attempts(task_id=t["T1"]["id"])] == [aid, second]
    assert [a["id"] for a in repo.attempts(feature_id=fid)] == [aid, second, other]
    last = repo.last_attempt(t["T1"]["id"])
    assert last is not None and last["id"] == second
    assert repo.last_attempt(10**6) is None
    with pytest.raises(NotFoundInStore):
        repo.get_attempt(10**6)


def test_bad_attempt_fields_are_programming_errors(store: Store) -> None:
    repo = store.tasks
    _, fid, t = _feature(repo)
    with pytest.raises(ValueError, match="a new attempt needs attempt, started_at"):
        repo.start_attempt({"task_id": t["T1"]["id"], "feature_id": fid})
    aid = repo.start_attempt({"task_id": t["T1"]["id"], "feature_id": fid, "attempt": 1, "started_at": 1.0})
    with pytest.raises(ValueError, match="cannot set colour"):
        repo.update_attempt(aid, {"colour": "red"})
    with pytest.raises(ValueError, match="cannot set attempt"):
        repo.update_attempt(aid, {"attempt": 7})
    with pytest.raises(ValueError, match="unknown outcome 'great'"):
        repo.finish_attempt(aid, {"outcome": "great"})
    with pytest.raises(ValueError, match="needs its outcome"):
        repo.finish_attempt(aid, {"reason": "x"})


def test_attempts_left_running_by_a_dead_worker_are_stale(store: Store) -> None:
    repo = store.tasks
    m, fid, t = _feature(repo)
    now = time.time()
    (claimed,) = repo.claim("w1", 1, now, 5.0, ClaimOptions(task_ids=(t["T1"]["id"],)))
    first = repo.start_attempt(
        {
            "task_id": claimed["id"],
            "feature_id": fid,
            "attempt": claimed["attempt"],
            "started_at": now,
            "key_id": "k1",
        }
    )
    assert repo.stale_attempts(claimed["id"]) == []  # its worker still holds the task
    assert [r["key"] for r in repo.reap(now + 10)] == ["T1"]  # the lease ran out: requeued
    assert [(a["id"], a["key_id"]) for a in repo.stale_attempts(claimed["id"])] == [(first, "k1")]
    (again,) = repo.claim("w2", 1, now + 11, 5.0, ClaimOptions(task_ids=(t["T1"]["id"],)))
    assert again["attempt"] == claimed["attempt"] + 1
    fresh = repo.start_attempt(
        {"task_id": again["id"], "feature_id": fid, "attempt": again["attempt"], "started_at": now + 11}
    )
    assert [a["id"] for a in repo.stale_attempts()] == [first]  # all tasks: still only the dead one
    assert repo.finish_attempt(
        first, {"outcome": "crashed", "reason": "worker lost", "finished_at": now + 11}
    )
    assert repo.stale_attempts() == []
    assert repo.complete(again["id"], again["attempt"], now + 12, Outcome("succeeded"), "w2")
    assert [a["id"] for a in repo.stale_attempts(again["id"])] == [fresh]  # finished task, row still running
    m.repo.delete_feature(fid)
    assert repo.attempts(feature_id=fid) == []


def test_the_base_sha_recorded_first_stays(store: Store) -> None:
    repo = store.tasks
    _, fid, _ = _feature(repo)
    assert repo.get_feature(fid)["base_sha"] is None
    assert repo.set_base_sha(fid, "a" * 40) == "a" * 40
    assert repo.set_base_sha(fid, "b" * 40) == "a" * 40
    with pytest.raises(NotFoundInStore):
        repo.set_base_sha(10**6, "c" * 40)


def test_a_merge_lock_has_one_holder_until_released_or_expired(store: Store) -> None:
    repo = store.tasks
    _, fid, _ = _feature(repo)
    assert repo.merge_lock(fid) is None
    assert repo.acquire_merge_lock(fid, "w1", 30.0, 100.0)
    assert not repo.acquire_merge_lock(fid, "w2", 30.0, 110.0)  # held
    assert repo.acquire_merge_lock(fid, "w1", 30.0, 120.0)  # its holder extends it
    assert repo.merge_lock(fid) == {"feature_id": fid, "holder": "w1", "expires_at": 150.0}
    assert not repo.acquire_merge_lock(fid, "w2", 30.0, 149.0)
    assert repo.acquire_merge_lock(fid, "w2", 30.0, 150.0)  # expired: taken over
    assert not repo.release_merge_lock(fid, "w1")  # no longer w1's
    assert repo.release_merge_lock(fid, "w2")
    assert repo.merge_lock(fid) is None
    assert repo.acquire_merge_lock(fid, "w1", 30.0, 151.0)
    assert repo.acquire_merge_lock(fid + 1, "w2", 30.0, 151.0)  # one lock per feature


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_racing_holders_never_both_take_the_lock(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    stores = [open_store(url, migrate="upgrade") for _ in range(4)]  # separate engines, as workers
    try:
        now = time.time()
        for rnd in range(20):
            start = threading.Barrier(len(stores))
            won: list[str] = []

            def take(i: int, s: Store, feature: int, start: threading.Barrier, won: list[str]) -> None:
                start.wait()
                if s.tasks.acquire_merge_lock(feature, f"w{i}", 60.0, now):
                    won.append(f"w{i}")

            threads = [
                threading.Thread(target=take, args=(i, s, rnd, start, won)) for i, s in enumerate(stores)
            ]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert len(won) == 1, (rnd, won)
            lock = stores[0].tasks.merge_lock(rnd)
            assert lock is not None and lock["holder"] == won[0]
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_ledger_spend_of_each_attempt_by_its_key(backend: str, request: pytest.FixtureRequest) -> None:
    store = open_store(
        request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"), migrate="upgrade"
    )
    try:
        repo = store.tasks
        _, fid, t = _feature(repo)
        a1 = repo.start_attempt(
            {"task_id": t["T1"]["id"], "feature_id": fid, "attempt": 1, "started_at": 1.0, "key_id": "k1"}
        )
        a2 = repo.start_attempt(
            {"task_id": t["T1"]["id"], "feature_id": fid, "attempt": 2, "started_at": 2.0, "key_id": "k2"}
        )
        repo.start_attempt(
            {"task_id": t["T2"]["id"], "feature_id": fid, "attempt": 1, "started_at": 3.0}
        )  # no key
        calls = [("k1", "fast", 0.01, "config"), ("k1", "fast", 0.02, "config"), ("k2", "strong", 0.5, "catalogue"),
                 ("k2", "strong", 0.0, "unknown"), ("k3", "fast", 9.0, "config")]  # fmt: skip
        store.ledger.record(
            [CallRecord(request_id=f"r{i}", ts=10.0 + i, endpoint="chat", model=g, model_group=g, key_id=k,
                        cost_usd=c, cost_source=src, prompt_tokens=100, completion_tokens=10)
             for i, (k, g, c, src) in enumerate(calls)]
        )  # fmt: skip
        rows = repo.attempt_costs(fid)
        got = [(r["attempt_id"], r["attempt"], r["model_group"], r["calls"], round(r["cost_usd"], 6), r["prompt_tokens"], r["unpriced"]) for r in rows]  # fmt: skip
        assert got == [(a1, 1, "fast", 2, 0.03, 200, 0), (a2, 2, "strong", 2, 0.5, 200, 1)]
    finally:
        store.close()


def test_migration_0010_goes_down_and_up_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        from alembic import command

        cfg = migrate._alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0009")
        insp = sa.inspect(engine)
        assert "task_attempts" not in insp.get_table_names() and "merge_locks" not in insp.get_table_names()
        assert "repo" not in {c["name"] for c in insp.get_columns("features")}
        migrate.upgrade(engine)
        insp = sa.inspect(engine)
        assert {"task_attempts", "merge_locks"} <= set(insp.get_table_names())
        assert {"agent", "budget_usd"} <= {c["name"] for c in insp.get_columns("tasks")}
    finally:
        engine.dispose()
