"""In-flight coalescing: N identical concurrent requests cause one upstream call.

The first caller of a key becomes the *leader* and makes the upstream call in its own task (the
pipeline runs it there); later callers are *followers* and wait on the flight's future.

What happens when things go wrong — the choices and why:

* The leader's upstream call fails with an upstream error (`ProviderError`: 5xx, 429 from the
  provider, bad request, timeout): every follower gets that error (a copy), since their identical
  request would have failed the same way and retrying it N times would only multiply the load.
* The leader goes away for a reason of its own — its client disconnected (the app cancels its
  task, which cancels the upstream call running in it), its budget or key limit refused it, or an
  unexpected error: that says nothing about the followers' request, so the flight is handed over.
  The followers wake, the first one becomes the new leader and makes the upstream call, the others
  wait on its flight. The upstream call is thus restarted rather than kept alive — the pipeline runs
  it inside the first caller's task, and detaching it would mean moving the upstream call out of
  the pipeline — but nobody hangs and no follower is failed because another client left. When every
  caller has gone there is no one left to take over and nothing runs.
* Nobody waits forever: a follower waits at most `wait_s` (over all hand-overs); then it stops
  waiting and makes its own upstream call (its answer is cached like any other miss). A stuck leader
  thus costs its followers at most `wait_s` of latency, never an error.
* A follower that disconnects only stops waiting (the shared future is shielded).
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from architect.errors import ProviderError

__all__ = ["Coalescer", "Flight", "is_shared_error"]

T = TypeVar("T")


class _Handover:
    """The leader left without an answer; a follower should take over."""


_HANDOVER = _Handover()


@dataclass(slots=True)
class _Failed:
    error: BaseException


@dataclass(eq=False)
class Flight(Generic[T]):
    key: str
    future: asyncio.Future[Any]
    waiters: int = 0


def is_shared_error(error: BaseException | None) -> bool:
    """An error of the upstream call itself (shared by every identical request)."""
    return isinstance(error, ProviderError)


class Coalescer(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[str, Flight[T]] = {}
        self.coalesced = 0  # followers served by a leader's answer
        self.handovers = 0
        self.timeouts = 0

    def __len__(self) -> int:
        return len(self._flights)

    def waiting(self) -> int:
        return sum(f.waiters for f in self._flights.values())

    async def join(self, key: str, wait_s: float) -> tuple[Flight[T] | None, T | None]:
        """(flight, None): the caller leads and must end the flight with `publish` or `fail`.
        (None, value): a leader's answer. (None, None): waited `wait_s` in vain; proceed alone.
        Raises the leader's upstream error."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            flight = self._flights.get(key)
            if flight is None:
                flight = Flight(key, loop.create_future())
                self._flights[key] = flight
                return flight, None
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.timeouts += 1
                return None, None
            flight.waiters += 1
            try:
                result = await asyncio.wait_for(asyncio.shield(flight.future), remaining)
            except TimeoutError:
                self.timeouts += 1
                return None, None
            finally:
                flight.waiters -= 1
            if result is _HANDOVER:
                continue
            if isinstance(result, _Failed):
                raise copy.copy(result.error)
            self.coalesced += 1
            return None, result

    def _end(self, flight: Flight[T], result: Any) -> None:
        if self._flights.get(flight.key) is flight:
            del self._flights[flight.key]
        if not flight.future.done():
            flight.future.set_result(result)

    def publish(self, flight: Flight[T], value: T) -> None:
        self._end(flight, value)

    def fail(self, flight: Flight[T], error: BaseException | None) -> None:
        if is_shared_error(error):
            assert error is not None
            self._end(flight, _Failed(error))
        else:
            if flight.waiters:
                self.handovers += 1
            self._end(flight, _HANDOVER)
