"""Circuit breaker, backoff and the per-deployment limiter, with injected clocks (no sleeping)."""

from __future__ import annotations

import random

import pytest

from architect.config import BreakerConfig, LimitsConfig, RetryConfig
from architect.gateway.limits import BUCKET_S, WINDOW_S, DeploymentLimiter
from architect.gateway.resilience import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, backoff_delay


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _breaker(clock: Clock, **cfg: float) -> CircuitBreaker:
    return CircuitBreaker("d", BreakerConfig(**cfg), clock=clock, wall=clock)  # type: ignore[arg-type]


def test_breaker_opens_on_consecutive_failures_and_probes_after_cooldown() -> None:
    clock = Clock()
    seen: list[str] = []
    b = _breaker(clock, consecutive_failures=3, cooldown_s=10, half_open_probes=1)
    b.listener = lambda br, entry: seen.append(entry["to"])
    for _ in range(2):
        assert b.allow()
        b.record(False)
    b.record(True)  # a success resets the run
    for _ in range(3):
        b.record(False)
    assert b.state == OPEN and not b.allow()
    assert b.retry_in() == pytest.approx(10)
    clock.t += 9.9
    assert not b.allow()
    clock.t += 0.2
    assert b.allow() and b.state == HALF_OPEN  # the one probe
    assert not b.allow()  # bounded probes
    b.record(False, probe=True)
    assert b.state == OPEN
    clock.t += 10.1
    assert b.allow()
    b.record(True, probe=True)
    assert b.state == CLOSED and b.allow()
    assert seen == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]
    assert [h["to"] for h in b.snapshot()["history"]] == seen


def test_the_breaker_window_holds_counts_not_one_entry_per_call() -> None:
    clock = Clock()
    b = _breaker(clock, failure_rate=0.5, window_s=30, min_calls=10, consecutive_failures=100)
    for i in range(120_000):  # 2,000 calls/s for 60 s, one in ten failing
        clock.t += 0.0005
        b.record(i % 10 != 0)
    assert b.state == CLOSED
    assert len(b.outcomes) <= 33  # time buckets, whatever the call rate
    assert 60_000 <= b.snapshot()["window_calls"] <= 62_000  # the last 30 s (and at most one bucket more)
    assert b.snapshot()["window_failures"] == pytest.approx(b.snapshot()["window_calls"] / 10, rel=0.01)


def test_breaker_opens_on_failure_rate_over_the_window_with_a_minimum_of_calls() -> None:
    clock = Clock()
    b = _breaker(clock, failure_rate=0.5, window_s=30, min_calls=10, consecutive_failures=100)
    for i in range(9):  # 9 calls, 5 failures: above the rate but under the minimum
        b.record(i % 2 == 1)
    assert b.state == CLOSED
    clock.t += 31  # everything so far leaves the window
    for _ in range(6):
        b.record(True)
    for _ in range(3):
        b.record(False)
    assert b.state == CLOSED and b.snapshot()["window_calls"] == 9
    b.record(False)  # 10 calls, 4 failures = 40%
    assert b.state == CLOSED
    b.record(False)  # 11 calls, 5 failures = 45%
    b.record(False)  # 12 calls, 6 failures = 50%
    assert b.state == OPEN and "failure rate 50%" in b.history[-1]["reason"]


def test_a_probe_released_without_an_outcome_frees_its_slot() -> None:
    clock = Clock()
    b = _breaker(clock, consecutive_failures=1, cooldown_s=1)
    b.record(False)
    clock.t += 2
    assert b.allow()
    b.release(probe=True)  # the client went away
    assert b.state == HALF_OPEN and b.allow()
    b.record(True, probe=False)  # a late call from before the breaker opened does not close it
    assert b.state == HALF_OPEN


def test_backoff_full_jitter_and_retry_after() -> None:
    retry = RetryConfig(backoff_base_s=0.1, backoff_max_s=1.0, max_retry_after_s=5)
    rng = random.Random(3)
    d = [backoff_delay(retry, 3, None, rng) for _ in range(500)]
    assert 0 <= min(d) < 0.05 and 0.35 < max(d) <= 0.4  # uniform over [0, 0.1 * 2^2]
    assert max(backoff_delay(retry, 10, None, rng) for _ in range(200)) <= 1.0
    assert backoff_delay(retry, 1, 2.0, rng) >= 2.0
    assert backoff_delay(retry, 1, 60.0, rng) == 5.0


def test_rpm_never_exceeds_the_limit_in_any_60s_window() -> None:
    clock = Clock(0.0)
    lim = DeploymentLimiter(LimitsConfig(rpm=10), clock=clock)
    starts: list[float] = []
    rng = random.Random(1)
    while clock.t < 600:
        if lim.check(1) == 0:
            lim.release(lim.acquire(1), 1)
            starts.append(clock.t)
        clock.t += rng.uniform(0, 3)
    assert len(starts) >= 95  # close to 10 per minute over 10 minutes: the limit is not overly strict
    for i, t in enumerate(starts):  # every window of 60 s holds at most 10
        assert sum(1 for s in starts[i:] if s < t + WINDOW_S) <= 10


def test_rpm_wait_says_when_the_oldest_request_leaves_the_window() -> None:
    clock = Clock(0.0)
    lim = DeploymentLimiter(LimitsConfig(rpm=2), clock=clock)
    lim.acquire(0)
    clock.t = 10
    lim.acquire(0)
    clock.t = 20
    # the request at t=0 is counted until its whole 1 s bucket has left the window: never shorter
    assert lim.check(0) == pytest.approx(40 + BUCKET_S)
    clock.t = 60 + BUCKET_S * 0.5
    assert lim.check(0) > 0
    clock.t = 60 + BUCKET_S
    assert lim.check(0) == 0


def test_tpm_charges_the_estimate_then_corrects_with_usage() -> None:
    clock = Clock(0.0)
    lim = DeploymentLimiter(LimitsConfig(tpm=1000), clock=clock)
    t1 = lim.acquire(600)  # estimate: prompt + max_tokens
    assert lim.check(500) > 0  # 600 + 500 > 1000 while the estimate stands
    lim.release(t1, 150)  # the provider reported 150
    assert lim.snapshot()["tpm_used"] == 150
    assert lim.check(800) == 0
    t2 = lim.acquire(800)
    clock.t = 30
    assert lim.check(100) == pytest.approx(30 + BUCKET_S)  # until the first bucket leaves the window
    assert lim.check(5000) == WINDOW_S  # can never fit
    clock.t = 61
    lim.release(t2, 900)  # a late correction after its entry left the window changes nothing
    assert lim.snapshot()["tpm_used"] == 0


def test_tpm_holds_over_any_60s_window() -> None:
    clock = Clock(0.0)
    lim = DeploymentLimiter(LimitsConfig(tpm=5000), clock=clock)
    used: list[tuple[float, int]] = []
    rng = random.Random(2)
    while clock.t < 400:
        n = rng.randint(100, 900)
        if lim.check(n) == 0:
            lim.release(lim.acquire(n), n)
            used.append((clock.t, n))
        clock.t += rng.uniform(0, 2)
    for t, _ in used:
        assert sum(n for s, n in used if t <= s < t + WINDOW_S) <= 5000


def test_max_concurrency() -> None:
    lim = DeploymentLimiter(LimitsConfig(max_concurrency=2))
    a, _b = lim.acquire(0), lim.acquire(0)
    assert lim.check(0) > 0
    lim.release(a, None)
    assert lim.check(0) == 0


def test_limiter_memory_does_not_grow_with_the_call_rate() -> None:
    clock = Clock(0.0)
    lim = DeploymentLimiter(LimitsConfig(rpm=10**9, tpm=10**12), clock=clock)
    for _ in range(120_000):  # 2,000 calls a second for a minute
        assert lim.check(50) == 0
        lim.release(lim.acquire(50), 40)
        clock.t += 0.0005
    assert len(lim.buckets) <= WINDOW_S / BUCKET_S + 1
    assert lim.snapshot()["rpm_used"] == 120_000
    assert lim.snapshot()["tpm_used"] == 120_000 * 40
