from __future__ import annotations

import pytest

from architect.errors import StateConflict
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.store.orchestrator import ClaimOptions, SQLiteMemoryTaskRepo

PLAN = """# Feature: F
## Phase 1: A
- [ ] T001 a `$ true`
- [ ] T002 b (after T001) `$ true`
- [ ] T003 c (after T002) `$ true`
- [ ] T004 d `$ true`
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def m() -> Manager:
    mgr = Manager(SQLiteMemoryTaskRepo(), clock=Clock(), backoff_base_s=10)
    mgr.import_plans(parse_markdown(PLAN))
    return mgr


def _claim(m: Manager, n: int = 10) -> list[dict[str, object]]:
    return m.claim("w", n, 30, ClaimOptions())


def test_only_tasks_whose_dependencies_succeeded_are_ready(m: Manager) -> None:
    assert sorted(t["key"] for t in _claim(m)) == ["T001", "T004"]
    assert _claim(m) == []


def test_failure_retries_with_backoff_then_blocks_the_chain(m: Manager) -> None:
    clock = m.clock
    assert isinstance(clock, Clock)
    t1 = next(t for t in _claim(m) if t["key"] == "T001")
    assert m.complete(t1, "w", ok=False, reason="boom")
    assert _claim(m) == []  # backoff: run_after = now + 10
    clock.t += 10
    t1 = _claim(m)[0]
    assert t1["attempt"] == 2 and t1["failures"] == 1
    m.complete(t1, "w", ok=False, reason="boom")
    clock.t += 20  # doubled
    t1 = _claim(m)[0]
    m.complete(t1, "w", ok=False, reason="boom")
    tasks = {t["key"]: t for t in m.repo.tasks(1)}
    assert tasks["T001"]["status"] == "failed" and tasks["T001"]["failures"] == 3
    assert tasks["T002"]["reason"] == "blocked by T001 (failed)"
    assert tasks["T003"]["reason"] == "blocked by T002 ← T001 (failed)"
    # a manual retry unblocks the chain
    m.retry_task("f", "T001")
    tasks = {t["key"]: t for t in m.repo.tasks(1)}
    assert tasks["T001"]["status"] == "ready" and tasks["T002"]["status"] == "pending"


def test_backoff_is_exponential_and_capped() -> None:
    m = Manager(SQLiteMemoryTaskRepo(), backoff_base_s=2, backoff_max_s=10)
    assert [m.backoff(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 10]


def test_pause_resume_cancel(m: Manager) -> None:
    m.pause("f")
    assert _claim(m) == []
    with pytest.raises(StateConflict, match="paused"):
        m.pause("f")
    m.resume("f")
    running = _claim(m, 1)
    m.cancel("f")
    assert {t["status"] for t in m.repo.tasks(1)} == {"cancelled"}
    assert not m.complete(running[0], "w", ok=True)  # a cancelled attempt cannot complete


def test_manual_completion_and_cancel_task(m: Manager) -> None:
    t = m.finish_manual("f", "T001", note="did it")
    assert t["status"] == "succeeded" and t["result"] == {"note": "did it"}
    assert m.repo.get_task(1, "T002")["status"] == "ready"
    with pytest.raises(StateConflict, match="only a ready task"):
        m.finish_manual("f", "T003")
    m.cancel_task("f", "T002")
    assert m.repo.get_task(1, "T003")["reason"] == "blocked by T002 (cancelled)"
