"""The current standing of the virtual keys behind dashboard sessions.

A session opened with a virtual key is checked against the key's row on every request. Rows are read
by key id from the access store, off the event loop, and kept for `ttl_s` (default 1 s) in one cache
entry per key shared by all of that key's sessions; concurrent requests for a key whose entry is stale
wait for one read rather than each reading. A key revoked, rotated, expired or deleted by any process
sharing the store (the CLI on the store directly included) thus ends its sessions within `ttl_s` plus
one store round trip. Expiry is also checked on every use against the cached row."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

from architect.access.keys import principal_for
from architect.access.sessions import KeyStanding
from architect.store.keys import KeyRepo

__all__ = ["KeyStates"]

Entry = tuple[KeyStanding | None, float | None]  # (None: gone or revoked, the key's expiry)


class KeyStates:
    """key id -> KeyStanding, or None when the key is gone, revoked or expired (`Authenticator.key_states`)."""

    def __init__(
        self,
        repo: KeyRepo,
        *,
        ttl_s: float = 1.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self.clock, self.wall = clock, wall
        self._rows: OrderedDict[str, tuple[float, Entry]] = OrderedDict()  # key id -> (read at, entry)
        self._reading: dict[str, asyncio.Task[Entry]] = {}

    def invalidate(self, key_id: str | None = None) -> None:
        """Forget one key's entry (or all): the next check reads the store."""
        if key_id is None:
            self._rows.clear()
        else:
            self._rows.pop(key_id, None)

    async def __call__(self, key_id: str) -> KeyStanding | None:
        standing, expires_at = await self._entry(key_id)
        if expires_at is not None and expires_at <= self.wall():
            return None
        return standing

    async def _entry(self, key_id: str) -> Entry:
        hit = self._rows.get(key_id)
        if hit is not None and self.clock() - hit[0] < self.ttl_s:
            return hit[1]
        task = self._reading.get(key_id)
        if task is None:  # one read per key at a time; it outlives a request that gives up waiting
            task = asyncio.ensure_future(self._read(key_id))
            self._reading[key_id] = task
            task.add_done_callback(lambda t: self._done(key_id, t))
        return await asyncio.shield(task)

    async def _read(self, key_id: str) -> Entry:
        started = self.clock()
        row = await asyncio.to_thread(self.repo.get_key, key_id)
        entry: Entry = (None, None)
        if row is not None and row.get("revoked_at") is None:
            entry = (KeyStanding(principal_for(row), str(row["secret_hash"])), row.get("expires_at"))
        self._rows[key_id] = (started, entry)
        self._rows.move_to_end(key_id)
        while len(self._rows) > self.max_entries:
            self._rows.popitem(last=False)
        return entry

    def _done(self, key_id: str, task: asyncio.Task[Entry]) -> None:
        if self._reading.get(key_id) is task:
            del self._reading[key_id]
        if not task.cancelled():
            task.exception()  # a failed read nobody waited for any more is not "never retrieved"
