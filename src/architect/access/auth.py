"""Who is calling: the admin key, a virtual key (from the access store), or anonymous when no
admin key is configured (loopback-only mode)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from architect.errors import AuthenticationFailed

__all__ = ["ANONYMOUS", "Authenticator", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "admin" | "key" | "anonymous"
    key_id: str | None = None
    name: str | None = None
    models: frozenset[str] | None = None  # allowed model groups; None = all
    tags: Mapping[str, str] = field(default_factory=dict)  # default tags added to every call
    projects: frozenset[str] | None = None  # projects it may see; None = all
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


class Authenticator:
    """Resolves a request's Authorization header to a Principal.

    `key_resolver` (set by the access domain) maps a presented secret to a Principal or None.
    """

    def __init__(self, admin_key: str | None, key_resolver: Any = None) -> None:
        self._admin = admin_key.encode() if admin_key else None
        self.key_resolver = key_resolver

    @property
    def open_mode(self) -> bool:
        return self._admin is None

    async def authenticate(
        self, authorization: str | None, cookies: Mapping[str, str] | None = None
    ) -> Principal:
        token = bearer(authorization)
        if token is None and cookies:
            token = cookies.get("architect_session_key")
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
        if self._admin is None:
            return ANONYMOUS
        raise AuthenticationFailed("invalid API key")
