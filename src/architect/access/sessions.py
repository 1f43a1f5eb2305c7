"""Dashboard sessions in the memory of one process: id -> who logged in, with idle and absolute
expiry, a cap per principal and a global cap that never ends another principal's session.

A session belongs to its *owner*: the virtual key's id, `admin` for the admin key, `anonymous` in
loopback-only mode. A new login beyond `per_key` sessions of one owner ends that owner's least
recently used session. When all sessions together reach `limit`, expired ones are removed; if none
is, the new login is refused (`SessionLimitReached`, 503) rather than ending someone else's session.
Every operation is O(1) apart from removing what has expired (each session is removed once)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from architect.config import SessionsConfig
from architect.errors import GatewayError

if TYPE_CHECKING:
    from architect.principal import Principal

__all__ = ["KeyStanding", "Session", "SessionLimitReached", "Sessions", "owner_of"]


class SessionLimitReached(GatewayError):
    """The server holds as many dashboard sessions as it may; a new login must wait."""

    status = 503
    type = "service_unavailable"
    code = "too_many_sessions"


class KeyStanding(NamedTuple):
    """A virtual key as the store holds it now: who it is and the hash of its current secret."""

    principal: Principal
    credential: str


def owner_of(principal: Principal) -> str:
    """The principal sessions are counted against: a key id, `admin` or `anonymous`."""
    return principal.key_id or principal.kind


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    principal: Principal
    created: float
    last_seen: float
    credential: str | None = None  # SHA-256 of the virtual key logged in with: a rotation ends the session

    @property
    def owner(self) -> str:
        return owner_of(self.principal)


class Sessions:
    """Server-side dashboard sessions; `clock` gives wall-clock seconds (injectable for tests)."""

    def __init__(
        self,
        idle_s: float = 3600.0,
        max_age_s: float = 12 * 3600.0,
        limit: int = 10_000,
        *,
        per_key: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle_s, self.max_age_s, self.limit, self.per_key = idle_s, max_age_s, limit, per_key
        self.clock = clock
        self._created: OrderedDict[str, Session] = OrderedDict()  # oldest login first
        self._used: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._owners: dict[str, OrderedDict[str, None]] = {}  # owner -> its sessions, least recent first
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: SessionsConfig) -> Sessions:
        return cls(config.idle_s, config.max_age_s, config.max, per_key=config.per_key)

    def create(self, principal: Principal, *, credential: str | None = None) -> Session:
        """A new session for `principal`. Raises SessionLimitReached when the server is full."""
        now = self.clock()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), principal, now, now, credential)
        with self._lock:
            self._expire(now)
            mine = self._owners.get(s.owner)
            while mine is not None and len(mine) >= self.per_key:
                self._remove(next(iter(mine)))  # that owner's least recently used session
                mine = self._owners.get(s.owner)
            if len(self._created) >= self.limit:
                raise SessionLimitReached(
                    f"the server already holds its maximum of {self.limit} dashboard sessions; "
                    "try again later (auth.sessions.max raises the limit)",
                    headers={"retry-after": "60"},
                )
            self._created[s.id] = s
            self._used[s.id] = None
            self._owners.setdefault(s.owner, OrderedDict())[s.id] = None
        return s

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (marked as used now), or None."""
        if not session_id:
            return None
        now = self.clock()
        with self._lock:
            s = self._created.get(session_id)
            if s is None:
                return None
            if self._expired(s, now):
                self._remove(session_id)
                return None
            s.last_seen = now
            self._used.move_to_end(session_id)
            self._owners[s.owner].move_to_end(session_id)
            return s

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            if session_id is not None and session_id in self._created:
                self._remove(session_id)

    def drop_key(self, key_id: str) -> int:
        """End every session of a virtual key (when it is revoked, rotated, expired or deleted)."""
        with self._lock:
            gone = list(self._owners.get(key_id, ()))
            for sid in gone:
                self._remove(sid)
        return len(gone)

    def count(self, owner: str) -> int:
        """Live or not yet removed sessions of one owner (a key id, `admin`, `anonymous`)."""
        with self._lock:
            return len(self._owners.get(owner, ()))

    def __len__(self) -> int:
        return len(self._created)

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.last_seen > self.idle_s or now - s.created > self.max_age_s

    def _remove(self, session_id: str) -> None:
        s = self._created.pop(session_id)
        del self._used[session_id]
        mine = self._owners[s.owner]
        del mine[session_id]
        if not mine:
            del self._owners[s.owner]

    def _expire(self, now: float) -> None:
        """Remove idle sessions (least recently used first) and too old ones (oldest login first)."""
        while self._used:
            sid = next(iter(self._used))
            if now - self._created[sid].last_seen <= self.idle_s:
                break
            self._remove(sid)
        while self._created:
            s = next(iter(self._created.values()))
            if now - s.created <= self.max_age_s:
                break
            self._remove(s.id)
