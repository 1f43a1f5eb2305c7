"""An in-process event bus: publishers never block; each subscriber has a bounded queue and
drops its oldest events (counted) when it falls behind. Feeds the SSE streams of the API."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventBus", "Subscription"]


@dataclass(frozen=True, slots=True)
class Event:
    topic: str  # "call", "task", "breaker", "alert", ...
    data: dict[str, Any]
    id: int = 0
    ts: float = field(default_factory=time.time)


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subs: set[asyncio.Queue[Event]] = set()
        self._ids = itertools.count(1)
        self._queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the subscribers wait on
        self.dropped = 0

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        """Thread-unsafe by design: call it from the event loop (use `publish_threadsafe` elsewhere)."""
        if not self._subs:
            return
        ev = Event(topic, data, next(self._ids))
        for q in self._subs:
            if q.full():
                q.get_nowait()
                self.dropped += 1
            q.put_nowait(ev)

    def publish_threadsafe(self, loop: asyncio.AbstractEventLoop, topic: str, data: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(self.publish, topic, data)

    def publish_from_thread(self, topic: str, data: dict[str, Any]) -> None:
        """`publish` from any thread: handed to the loop the subscribers wait on (nothing to do while
        there is no subscriber)."""
        loop = self._loop
        if not self._subs or loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self.publish, topic, data)
        except RuntimeError:  # the loop closed meanwhile: its subscribers are gone
            pass

    def subscription(self, topics: set[str] | None = None) -> Subscription:
        """A new subscriber, receiving every event published from now on (of `topics`, or all) until
        it is closed."""
        self._loop = asyncio.get_running_loop()
        sub = Subscription(self, topics, asyncio.Queue(self._queue_size))
        self._subs.add(sub.queue)
        return sub

    @property
    def subscribers(self) -> int:
        return len(self._subs)


@dataclass(eq=False, slots=True)
class Subscription:
    """One subscriber's queue on a bus. `get` is safe to time out (no event is lost by a timeout);
    `close` unsubscribes."""

    bus: EventBus
    topics: set[str] | None
    queue: asyncio.Queue[Event]

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event of the wanted topics, or None when `timeout` seconds pass without one."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            try:
                left = None if deadline is None else max(0.0, deadline - loop.time())
                ev = await asyncio.wait_for(self.queue.get(), left)
            except TimeoutError:
                return None
            if self.topics is None or ev.topic in self.topics:
                return ev

    def close(self) -> None:
        self.bus._subs.discard(self.queue)
