"""Who is calling: the admin key, a virtual key (from the access store), a dashboard session, or
anonymous when no admin key is configured (loopback-only mode).

Dashboard sessions (`Sessions`): logging in at /ui with a key creates a server-side session; the
browser holds only its random id in an HttpOnly, SameSite=Strict cookie. A request authenticates with
a session only when it carries both that cookie AND `Authorization: Session <csrf token>` (the token
is per session and shown only to pages of that session), so a cross-site form or link, which cannot
set the header, can never act with a session. The key itself is never kept."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from architect.errors import AuthenticationFailed

__all__ = [
    "ANONYMOUS",
    "SCOPES",
    "SESSION_COOKIE",
    "TASKS_EXECUTE",
    "Authenticator",
    "Principal",
    "Scope",
    "Session",
    "Sessions",
]

SESSION_COOKIE = "architect_session"

# Scopes a virtual key may be granted on top of its ordinary rights.
Scope = Literal["tasks:execute"]
TASKS_EXECUTE: Final[Scope] = "tasks:execute"  # may write the fields of a task that run code
SCOPES: Final[tuple[Scope, ...]] = (TASKS_EXECUTE,)


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "admin" | "key" | "anonymous"
    key_id: str | None = None
    name: str | None = None
    models: frozenset[str] | None = None  # allowed model groups; None = all
    tags: Mapping[str, str] = field(default_factory=dict)  # default tags added to every call
    projects: frozenset[str] | None = None  # projects it may see; None = all
    scopes: frozenset[str] = frozenset()  # granted scopes (SCOPES); the admin needs none
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.kind in ("admin", "anonymous")


ANONYMOUS = Principal(kind="anonymous")
ADMIN = Principal(kind="admin", key_id="admin", name="admin")


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    principal: Principal
    created: float
    last_seen: float


class Sessions:
    """Server-side dashboard sessions in memory: id -> principal, with idle and absolute expiry."""

    def __init__(self, idle_s: float = 3600.0, max_age_s: float = 12 * 3600.0, limit: int = 10_000) -> None:
        self.idle_s, self.max_age_s, self.limit = idle_s, max_age_s, limit
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, principal: Principal) -> Session:
        now = time.time()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), principal, now, now)
        with self._lock:
            self._expire(now)
            if len(self._by_id) >= self.limit:  # drop the oldest rather than grow without bound
                oldest = min(self._by_id.values(), key=lambda x: x.last_seen)
                del self._by_id[oldest.id]
            self._by_id[s.id] = s
        return s

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = time.time()
        with self._lock:
            s = self._by_id.get(session_id)
            if s is None:
                return None
            if now - s.last_seen > self.idle_s or now - s.created > self.max_age_s:
                del self._by_id[session_id]
                return None
            s.last_seen = now
            return s

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    def drop_key(self, key_id: str) -> int:
        """End every session of a virtual key (call it when the key is revoked)."""
        with self._lock:
            gone = [sid for sid, s in self._by_id.items() if s.principal.key_id == key_id]
            for sid in gone:
                del self._by_id[sid]
        return len(gone)

    def __len__(self) -> int:
        return len(self._by_id)

    def _expire(self, now: float) -> None:
        dead = [
            sid
            for sid, s in self._by_id.items()
            if now - s.last_seen > self.idle_s or now - s.created > self.max_age_s
        ]
        for sid in dead:
            del self._by_id[sid]


def _session_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "session" else None


class Authenticator:
    """Resolves a request's Authorization header to a Principal.

    `key_resolver` (set by the access domain) maps a presented secret to a Principal or None.
    Open mode (no admin key; loopback only) is single-user: a request without a key, or with any
    token while no virtual key exists, is the local operator (anonymous, with admin rights). Once a
    virtual key exists, a Bearer token that is not a valid key is refused (401), so a revoked or
    expired key never falls back to the operator's rights.
    """

    def __init__(self, admin_key: str | None, key_resolver: Any = None) -> None:
        self._admin = admin_key.encode() if admin_key else None
        self.key_resolver = key_resolver
        self.sessions = Sessions()

    @property
    def open_mode(self) -> bool:
        return self._admin is None

    async def authenticate(
        self, authorization: str | None, cookies: Mapping[str, str] | None = None
    ) -> Principal:
        csrf = _session_token(authorization)
        if csrf is not None:
            s = self.sessions.get(cookies.get(SESSION_COOKIE)) if cookies else None
            if s is None or not hmac.compare_digest(csrf.encode(), s.csrf.encode()):
                raise AuthenticationFailed("the dashboard session has expired or is invalid; log in again")
            return s.principal
        token = bearer(authorization)
        if self._admin is None and token is None:
            return ANONYMOUS
        if token is None:
            raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <key>'")
        if self._admin is not None and hmac.compare_digest(token.encode(), self._admin):
            return ADMIN
        if self.key_resolver is not None:
            p = await self.key_resolver(token)
            if p is not None:
                return p  # type: ignore[no-any-return]
        if self._admin is None and not await self._keys_exist():
            return ANONYMOUS  # open mode before any key exists: any token is the local operator
        raise AuthenticationFailed("invalid API key (unknown, revoked or expired)")

    async def _keys_exist(self) -> bool:
        """Whether the key resolver's store holds any virtual key (cached by the resolver)."""
        check = getattr(self.key_resolver, "keys_exist", None)
        return bool(await check()) if check is not None else False
