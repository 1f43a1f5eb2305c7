"""The shared rate limit (GCRA on the `task_limits` row) on real SQLite and PostgreSQL: starts spaced
by period / N, never more than N in any window of the period, no burst after idling, and the claim
says when the next start is allowed."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator

import pytest

from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.store import Store, open_store
from architect.store.engine import begin_immediate
from architect.store.orchestrator import ClaimOptions
from architect.store.orchestrator.limits import Gcra, lock_limiter, save_tat


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url, migrate="upgrade")
    yield s
    s.close()


def _import(store: Store, n: int) -> None:
    lines = ["# Feature: Rate", "## Phase 1: All"] + [f"- [ ] T{i:03d} t `$ true`" for i in range(1, n + 1)]
    Manager(store.tasks).import_plans(parse_markdown("\n".join(lines)))


def _max_in_window(starts: list[float], period: float) -> int:
    """The most starts in any half-open window [t, t + period) (sliding over every start)."""
    s = sorted(starts)
    return max(sum(1 for u in s[i:] if u < t + period) for i, t in enumerate(s))


def _take(store: Store, now: float, gcra: Gcra) -> tuple[bool, float]:
    """One limiter decision at the injected time `now`, as a claim makes it: (started, next TAT)."""
    assert store.engine is not None
    with store.engine.connect() as conn, begin_immediate(conn):
        tat = lock_limiter(conn, store.engine.dialect.name == "postgresql")
        started = gcra.allowed(tat, now)
        if started:
            tat = gcra.advance(tat, now, started)
            save_tat(conn, tat)
        return bool(started), tat


def test_gcra_spaces_starts_and_allows_no_burst_after_idling(store: Store) -> None:
    g = Gcra.of(5, 1.0)  # 5/s: one start every 0.2 s
    t0 = 1_000_000.0  # an injected clock
    assert _take(store, t0, g) == (True, pytest.approx(t0 + 0.2))
    assert _take(store, t0 + 0.1, g) == (False, pytest.approx(t0 + 0.2))  # held back: next at +0.2
    assert _take(store, t0 + 0.2, g) == (True, pytest.approx(t0 + 0.4))
    assert _take(store, t0 + 0.45, g) == (True, pytest.approx(t0 + 0.65))  # a late start moves the next
    assert _take(store, t0 + 0.6, g) == (False, pytest.approx(t0 + 0.65))
    # idle for a minute: still one start, then the spacing again (no burst of saved-up starts)
    assert _take(store, t0 + 60, g) == (True, pytest.approx(t0 + 60.2))
    assert _take(store, t0 + 60.01, g)[0] is False


def test_gcra_bounds_every_window_under_random_attempts(store: Store) -> None:
    g = Gcra.of(5, 1.0)
    rnd = random.Random(15)
    now, started = 2_000_000.0, []
    for _ in range(250):  # several workers' attempts at random moments over ~5 s
        now += rnd.uniform(0.0, 0.04)
        ok, _ = _take(store, now, g)
        if ok:
            started.append(now)
    assert _max_in_window(started, 1.0) == 5
    assert min(b - a for a, b in itertools.pairwise(started)) >= 0.2 - 1e-9
    assert len(started) >= 0.9 * 5 * (started[-1] - started[0])  # attempts every ~20 ms: close to 5/s


def test_claims_take_one_task_per_interval_and_say_when_the_next_may_start(store: Store) -> None:
    repo = store.tasks
    _import(store, 10)
    now = time.time() + 3600  # ahead of the clock, so the store's own clock reading does not move it
    opts = ClaimOptions(max_running=3, rate=2, rate_period=1.0)  # one start every 0.5 s
    got = repo.claim("a", 5, now, 30, opts)
    assert len(got) == 1 and got.next_start_at == pytest.approx(now + 0.5)
    held = repo.claim("b", 5, now + 0.3, 30, opts)
    assert held == [] and held.next_start_at == pytest.approx(now + 0.5)
    got = repo.claim("b", 5, now + 0.5, 30, opts)
    assert len(got) == 1 and got.next_start_at == pytest.approx(now + 1.0)
    assert len(repo.claim("c", 5, now + 1.0, 30, opts)) == 1
    full = repo.claim("c", 5, now + 1.5, 30, opts)  # 3 running: the concurrency limit binds
    assert full == [] and full.next_start_at is None
    # a limit of 120/m is the same spacing: 0.5 s
    per_minute = ClaimOptions(rate=120, rate_period=60.0)
    assert len(repo.claim("d", 5, now + 1.5, 30, per_minute)) == 1
    assert repo.claim("d", 5, now + 1.9, 30, per_minute).next_start_at == pytest.approx(now + 2.0)
    # without a rate the claim names no next start
    assert repo.claim("e", 1, now + 2.0, 30, ClaimOptions()).next_start_at is None


def test_concurrent_claimers_share_one_schedule(store: Store) -> None:
    """Four threads (own connections) claim as workers do, sleeping until the next allowed start:
    the start times the store records are spaced by the interval, whoever claimed."""
    repo = store.tasks
    _import(store, 24)
    opts = ClaimOptions(rate=20, rate_period=1.0)  # one start every 50 ms
    started: list[tuple[float, str]] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = repo.claim(name, 4, time.time(), 30, opts)
            with lock:
                started.extend((float(t["started_at"]), name) for t in got)
                if len(started) >= 24:
                    return
            if got.next_start_at is not None:
                time.sleep(max(0.0, got.next_start_at - time.time()))

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = sorted(t for t, _ in started)
    assert len(times) == 24
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.05 - 1e-6
    assert _max_in_window(times, 1.0) <= 20
    assert len({w for _, w in started}) >= 2  # the schedule was shared, not one thread's
