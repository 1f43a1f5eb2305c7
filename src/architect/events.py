"""An in-process event bus: publishers never block; each subscriber has a bounded queue and
drops its oldest events (counted) when it falls behind. Feeds the SSE streams of the API."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventBus"]


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

    async def subscribe(self, topics: set[str] | None = None) -> AsyncIterator[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subs.add(q)
        try:
            while True:
                ev = await q.get()
                if topics is None or ev.topic in topics:
                    yield ev
        finally:
            self._subs.discard(q)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
