"""Who is calling: the admin key, a virtual key (from the access store), a dashboard session, or
anonymous when no admin key is configured (loopback-only mode).

Dashboard sessions (`Sessions`): logging in at /ui with a key creates a server-side session; the
browser holds only its random id in an HttpOnly, SameSite=Strict cookie. A request authenticates with
a session only when it carries both that cookie AND `Authorization: Session <csrf token>` (the token
is per session and shown only to pages of that session), so a cross-site form or link, which cannot
set the header, can never act with a session. The key itself is never kept.

A session opened with a virtual key is checked against the key on every request (`key_states`, set by
the access domain: the key's row cached at most 1 s): once the key is revoked, expired, deleted or
rotated, by any process sharing the store, its sessions end. Sessions of the admin key and of the
anonymous operator have no key row; they end with the process (sessions live in its memory)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from architect.access.sessions import KeyStanding, Session, SessionLimitReached, Sessions
from architect.errors import AuthenticationFailed
from architect.principal import ADMIN, ANONYMOUS, Principal

__all__ = [
    "SESSION_COOKIE",
    "Authenticator",
    "KeyStanding",
    "Session",
    "SessionLimitReached",
    "Sessions",
]

SESSION_COOKIE = "architect_session"
_MISSING = "missing API key: send 'Authorization: Bearer <key>'"
_MISSING_ANTHROPIC = "missing API key: send 'x-api-key: <key>' (or 'Authorization: Bearer <key>')"


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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

    def __init__(
        self,
        admin_key: str | None,
        key_resolver: Any = None,
        *,
        sessions: Sessions | None = None,
        key_states: Callable[[str], Awaitable[KeyStanding | None]] | None = None,
    ) -> None:
        self._admin = admin_key.encode() if admin_key else None
        self.key_resolver = key_resolver
        self.sessions = sessions if sessions is not None else Sessions()
        self.key_states = key_states  # key id -> its standing now; without it key sessions are refused

    async def session(self, session_id: str | None, csrf: str | None = None) -> Session | None:
        """The live session with this id (and, when given, this CSRF token) whose key still stands.

        A session of a virtual key takes the key's current principal; it ends when the key is gone,
        revoked or expired (every session of the key then ends) or its secret was rotated."""
        s = self.sessions.get(session_id)
        if s is None:
            return None
        if csrf is not None and not hmac.compare_digest(csrf.encode(), s.csrf.encode()):
            return None
        key_id = s.principal.key_id
        if s.principal.kind != "key" or key_id is None:
            return s
        standing = await self.key_states(key_id) if self.key_states is not None else None
        if standing is None:
            self.sessions.drop_key(key_id)
            return None
        if s.credential is None or not hmac.compare_digest(
            standing.credential.encode(), s.credential.encode()
        ):
            self.sessions.drop(s.id)
            return None
        s.principal = standing.principal
        return s

    @property
    def open_mode(self) -> bool:
        return self._admin is None

    async def authenticate(
        self, authorization: str | None, cookies: Mapping[str, str] | None = None, *, anthropic: bool = False
    ) -> Principal:
        """The principal of a request's credentials. `anthropic`: the request is one of Anthropic's
        API, whose clients send their key as `x-api-key` (which a missing key's message names)."""
        csrf = _session_token(authorization)
        if csrf is not None:
            s = await self.session(cookies.get(SESSION_COOKIE), csrf) if cookies else None
            if s is None:
                raise AuthenticationFailed("the dashboard session has expired or is invalid; log in again")
            return s.principal
        token = bearer(authorization)
        if self._admin is None and token is None:
            return ANONYMOUS
        if token is None:
            raise AuthenticationFailed(_MISSING_ANTHROPIC if anthropic else _MISSING)
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
