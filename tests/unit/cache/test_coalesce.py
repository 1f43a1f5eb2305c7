"""Coalescing: one leader, followers get its answer or its upstream error, hand-over when the leader
leaves for a reason of its own, bounded waits."""

from __future__ import annotations

import asyncio

import pytest

from architect.cache.coalesce import Coalescer
from architect.errors import BudgetExceeded, ClientClosed, UpstreamError
from tests.helpers import wait_until_async


async def test_followers_get_the_leaders_answer() -> None:
    c: Coalescer[str] = Coalescer()
    flight, v = await c.join("k", 5)
    assert flight is not None and v is None
    followers = [asyncio.create_task(c.join("k", 5)) for _ in range(20)]
    await asyncio.sleep(0)
    assert c.waiting() == 20
    c.publish(flight, "answer")
    results = await asyncio.gather(*followers)
    assert all(r == (None, "answer") for r in results)
    assert len(c) == 0 and c.coalesced == 20
    # the next caller leads a new flight
    f2, _ = await c.join("k", 5)
    assert f2 is not None and f2 is not flight


async def test_upstream_error_is_shared() -> None:
    c: Coalescer[str] = Coalescer()
    flight, _ = await c.join("k", 5)
    assert flight is not None
    followers = [asyncio.create_task(c.join("k", 5)) for _ in range(3)]
    await asyncio.sleep(0)
    c.fail(flight, UpstreamError("boom", kind="server_error"))
    for f in followers:
        with pytest.raises(UpstreamError, match="boom"):
            await f


@pytest.mark.parametrize("error", [ClientClosed("gone"), BudgetExceeded("poor"), None, RuntimeError("x")])
async def test_leader_leaving_hands_over_to_one_follower(error: BaseException | None) -> None:
    c: Coalescer[str] = Coalescer()
    flight, _ = await c.join("k", 5)
    assert flight is not None
    followers = [asyncio.create_task(c.join("k", 5)) for _ in range(5)]
    await asyncio.sleep(0)
    c.fail(flight, error)
    await wait_until_async(lambda: any(f.done() for f in followers))
    for _ in range(10):  # give any other follower that would wrongly wake the turns to do it
        await asyncio.sleep(0)
    done = [f for f in followers if f.done()]
    assert len(done) == 1  # exactly one follower took over as the new leader
    new_flight, v = done[0].result()
    assert new_flight is not None and v is None and c.handovers == 1
    c.publish(new_flight, "second")
    rest = await asyncio.gather(*[f for f in followers if f is not done[0]])
    assert all(r == (None, "second") for r in rest)


async def test_nobody_waits_forever() -> None:
    c: Coalescer[str] = Coalescer()
    flight, _ = await c.join("k", 5)
    assert flight is not None
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await c.join("k", 0.05) == (None, None)  # gave up waiting: proceed alone
    assert 0.04 <= loop.time() - t0 < 1 and c.timeouts == 1
    assert c.waiting() == 0


async def test_a_follower_disconnecting_does_not_affect_the_others() -> None:
    c: Coalescer[str] = Coalescer()
    flight, _ = await c.join("k", 5)
    assert flight is not None
    f1 = asyncio.create_task(c.join("k", 5))
    f2 = asyncio.create_task(c.join("k", 5))
    await asyncio.sleep(0)
    f1.cancel()
    await wait_until_async(lambda: f1.done() and c.waiting() == 1)
    assert c.waiting() == 1 and not flight.future.cancelled()
    c.publish(flight, "v")
    assert await f2 == (None, "v")
