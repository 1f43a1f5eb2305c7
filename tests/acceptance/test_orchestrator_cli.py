"""Acceptance: the real `architect` CLI in subprocesses. A 3-phase, 20-task Markdown plan with
dependencies runs as `command` tasks (some fail once, one always fails); a worker is killed with
SIGKILL mid-run and another started; every task ends in the right state, none runs to completion
twice, the blocked chain is reported, and the report's numbers match the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from architect.store import open_store

RUN_SH = """#!/bin/sh
# run.sh MODE SECONDS: MODE is ok, flaky (fails the first time it gets to the end) or fail (always)
echo "start $ARCHITECT_TASK $ARCHITECT_ATTEMPT" >> log.txt
sleep "$2"
case "$1" in
  flaky) if [ ! -e "failed-$ARCHITECT_TASK" ]; then touch "failed-$ARCHITECT_TASK"; exit 1; fi ;;
  fail) echo "broken for good"; exit 7 ;;
esac
echo "end $ARCHITECT_TASK $ARCHITECT_ATTEMPT $(date +%s.%N)" >> log.txt
"""

PLAN = """# Feature: Checkout flow
A checkout for the shop.

## Phase 1: Foundation
- [ ] T001 Cart schema `$ sh run.sh ok 0.1`
- [ ] T002 Slow migration (after T001) `$ sh run.sh ok 3`
- [ ] T003 Config loader (after T001) `$ sh run.sh ok 0.1`
- [ ] T004 Seed data (after T001) `$ sh run.sh flaky 0.1`
- [ ] T005 Logging `$ sh run.sh ok 0.1`
- [ ] T006 Search index build (after T005) `$ sh run.sh ok 0.3`

## Phase 2: Services
- [ ] T007 Pricing service (after T002, T003) `$ sh run.sh ok 0.1`
- [ ] T008 Cart service (after T004) `$ sh run.sh flaky 0.1`
- [ ] T009 Payments adapter (after T003) `$ sh run.sh fail 0.1`
- [ ] T010 Receipts (after T009) `$ sh run.sh ok 0.1`
- [ ] T011 Inventory (after T007) `$ sh run.sh ok 0.1`
- [ ] T012 Search service (after T006) `$ sh run.sh flaky 0.1`
- [ ] T013 Notifications (after T005) `$ sh run.sh ok 0.1`

## Phase 3: UI
- [ ] T014 Cart page (after T008, T011) `$ sh run.sh ok 0.1`
- [ ] T015 Checkout page (after T010) `$ sh run.sh ok 0.1`
- [ ] T016 Order history (after T015) `$ sh run.sh ok 0.1`
- [ ] T017 Search UI (after T012) `$ sh run.sh ok 0.1`
- [ ] T018 Email templates (after T013) `$ sh run.sh ok 0.1`
- [ ] T019 Docs (after T014, T017) `$ sh run.sh ok 0.1`
- [ ] T020 Release notes (after T019, T018) `$ sh run.sh ok 0.1`
"""

FAILED = {"T009"}
BLOCKED = {"T010": "blocked by T009 (failed)", "T015": "blocked by T010 ← T009 (failed)",
           "T016": "blocked by T015 ← T010 ← T009 (failed)"}  # fmt: skip


def _run(
    args: list[str], cwd: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "architect", *args], cwd=cwd, env=env, text=True,
                       capture_output=True, timeout=90)  # fmt: skip
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["ARCHITECT_DATABASE_URL"] = f"sqlite:///{tmp_path}/architect.db"
    e["ARCHITECT_HOME"] = str(tmp_path)
    e.pop("ARCHITECT_CONFIG", None)
    return e


def _wait_for(pred: object, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_plan_run_kill_worker_and_report(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "run.sh").write_text(RUN_SH)
    (tmp_path / "plan.md").write_text(PLAN)
    out = _run(["plan", "import", "plan.md"], tmp_path, env).stdout
    assert "checkout-flow: 20 created" in out
    # re-import never duplicates
    assert "0 created, 0 updated, 20 unchanged" in _run(["plan", "import", "plan.md"], tmp_path, env).stdout

    log = tmp_path / "log.txt"
    run_args = [
        "run",
        "checkout-flow",
        "--concurrency",
        "3",
        "--lease",
        "1.5",
        "--backoff",
        "0.2",
        "--no-progress",
    ]
    with (tmp_path / "first.out").open("w") as out_file:
        first = subprocess.Popen([sys.executable, "-m", "architect", *run_args], cwd=tmp_path, env=env,
                                 stdout=out_file, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        _wait_for(lambda: log.exists() and "start T002 1" in log.read_text(), 30)
        with closing(open_store(env["ARCHITECT_DATABASE_URL"])) as watch:  # T002's process is recorded
            fid = watch.tasks.get_feature("checkout-flow")["id"]
            _wait_for(lambda: watch.tasks.get_task(fid, "T002")["pgid"] is not None, 30)
        killed_at = time.time()
        first.send_signal(signal.SIGKILL)  # the worker dies; T002's `sleep 3` lives on as an orphan
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    second = _run(run_args, tmp_path, env, check=False)
    assert second.returncode == 1, second.stdout + second.stderr  # a failure and a blocked chain
    assert "lease of T002 (attempt 1) expired" in second.stdout
    for key, reason in BLOCKED.items():
        assert f"{key} blocked: {reason}" in second.stdout

    # every task in the right state, none run to completion twice
    store = open_store(env["ARCHITECT_DATABASE_URL"])
    f = store.tasks.get_feature("checkout-flow")
    tasks = {t["key"]: t for t in store.tasks.tasks(f["id"])}
    assert len(tasks) == 20
    for key, t in tasks.items():
        expected = "failed" if key in FAILED else "blocked" if key in BLOCKED else "succeeded"
        assert t["status"] == expected, (key, t)
    for key, reason in BLOCKED.items():
        assert tasks[key]["reason"] == reason
    assert tasks["T009"]["failures"] == 3  # max_attempts; a lost lease is counted apart, as a crash
    for t in tasks.values():
        assert t["attempt"] == t["failures"] + t["crashes"] + (t["status"] == "succeeded"), t
    assert tasks["T002"]["crashes"] >= 1 and tasks["T002"]["attempt"] >= 2
    for key in ("T004", "T008", "T012"):  # failed once (unless that failure died with the first worker)
        assert tasks[key]["failures"] + tasks[key]["crashes"] >= 1 and tasks[key]["failures"] <= 1, key
    assert sum(tasks[k]["failures"] for k in ("T004", "T008", "T012")) >= 2
    events = store.tasks.events(f["id"])
    succ = Counter(e["task_key"] for e in events if e["kind"] == "succeeded")
    assert max(succ.values()) == 1 and len(succ) == 16  # completed once each, in the store
    won = {e["task_key"]: e["attempt"] for e in events if e["kind"] == "succeeded"}
    ends = [line.split() for line in log.read_text().splitlines() if line.startswith("end ")]
    assert {e[1] for e in ends} == set(won)
    # no attempt of the killed worker ran to completion after its death: its shell died with it and
    # the orphaned group was killed before the task ran again; after the kill, only the attempt
    # recorded as the success reached the end of its command
    # (0.25 s of grace: SIGKILL delivery and the parent-death signal to the shell take a moment)
    late = [(key, int(att)) for _, key, att, ts in ends if float(ts) > killed_at + 0.25]
    assert all(won[key] == att for key, att in late), (late, won)
    assert Counter(key for key, _ in late).most_common(1)[0][1] == 1
    assert any(e["kind"] == "requeued" and e["task_key"] == "T002" for e in events)

    # the report's numbers match the store
    rep = json.loads(_run(["report", "checkout-flow", "--format", "json"], tmp_path, env).stdout)
    by_status = Counter(t["status"] for t in tasks.values())
    assert rep["summary"]["by_status"] == dict(by_status)
    assert rep["summary"]["attempts"] == sum(t["attempt"] for t in tasks.values())
    assert rep["summary"]["failed_attempts"] == sum(t["failures"] for t in tasks.values())
    assert rep["summary"]["lost_leases"] == sum(t["crashes"] for t in tasks.values())
    assert rep["current"]["tasks_done"] == 16 and rep["current"]["tasks_total"] == 20
    assert {b["task"]: b["reason"] for b in rep["current"]["blocked"]} == BLOCKED
    assert [x["task"] for x in rep["current"]["failed"]] == ["T009"]
    md = _run(["report", "checkout-flow"], tmp_path, env).stdout
    assert "T016 Order history: blocked by T015 ← T010 ← T009 (failed)" in md
    assert "## Decisions\n\n_No data recorded._" in md

    # export writes [x] for finished tasks and re-imports unchanged
    exported = _run(["plan", "export", "checkout-flow"], tmp_path, env).stdout
    assert "- [x] T001 Cart schema" in exported and "- [ ] T009 Payments adapter (after T003)" in exported
    (tmp_path / "again.md").write_text(exported)
    assert "0 created, 0 updated, 20 unchanged" in _run(["plan", "import", "again.md"], tmp_path, env).stdout
    store.close()


def test_bad_input_gives_a_message_not_a_traceback(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "cycle.md").write_text(
        "# Feature: X\n## Phase 1: A\n- [ ] T001 a (after T002)\n- [ ] T002 b (after T001)\n"
    )
    p = _run(["plan", "import", "cycle.md"], tmp_path, env, check=False)
    assert p.returncode != 0 and "dependency cycle: T001 → T002 → T001" in p.stderr
    assert "Traceback" not in p.stderr
    (tmp_path / "unknown.md").write_text("# Feature: X\n## Phase 1: A\n- [ ] T001 a (after T009)\n")
    p = _run(["plan", "import", "unknown.md"], tmp_path, env, check=False)
    assert p.returncode != 0 and "task T001 depends on unknown task T009" in p.stderr
    p = _run(["run", "nope", "--rate", "fast"], tmp_path, env, check=False)
    assert p.returncode != 0 and "--rate" in p.stderr and "Traceback" not in p.stderr
    p = _run(["report", "nope"], tmp_path, env, check=False)
    assert p.returncode == 2 and "feature 'nope' not found" in p.stderr


def test_run_with_a_manual_task_left_says_it_waits_for_a_person_and_exits_1(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "plan.md").write_text(
        "# Feature: Hand off\n## Phase 1: A\n- [ ] T001 build `$ true`\n- [ ] T002 check by hand (after T001)\n"
        "- [ ] T003 ship (after T002) `$ true`\n"
    )
    _run(["plan", "import", "plan.md"], tmp_path, env)
    p = _run(["run", "hand-off", "--no-progress", "--poll", "0.05"], tmp_path, env, check=False)
    assert p.returncode == 1, p.stdout + p.stderr  # not every task in scope succeeded
    assert "done: pending 1, ready 1, succeeded 1" in p.stdout
    assert (
        "  T002 waiting for a person: a manual task (complete it with `architect plan done hand-off T002`)"
        in p.stdout
    )
    assert "  T003 pending: waits for T002" in p.stdout
    _run(["plan", "done", "hand-off", "T002"], tmp_path, env)
    p = _run(["run", "hand-off", "--no-progress", "--poll", "0.05"], tmp_path, env, check=False)
    assert p.returncode == 0 and "done: succeeded 3" in p.stdout, p.stdout + p.stderr
