"""Dashboard sessions in the Authenticator: cookie + per-session token, expiry, key revocation."""

from __future__ import annotations

import pytest

from architect.access.auth import SESSION_COOKIE, Authenticator, Principal, Sessions
from architect.errors import AuthenticationFailed

KEY = Principal(kind="key", key_id="k1", name="team")


async def test_a_session_needs_both_its_cookie_and_its_token() -> None:
    auth = Authenticator("sk-admin")
    s = auth.sessions.create(KEY)
    assert await auth.authenticate(f"Session {s.csrf}", {SESSION_COOKIE: s.id}) == KEY
    with pytest.raises(AuthenticationFailed):  # the cookie alone (a cross-site form) is not enough
        await auth.authenticate(None, {SESSION_COOKIE: s.id})
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate("Session wrong-token", {SESSION_COOKIE: s.id})
    with pytest.raises(AuthenticationFailed):  # the token without the cookie is not enough either
        await auth.authenticate(f"Session {s.csrf}", {})
    other = auth.sessions.create(KEY)
    with pytest.raises(AuthenticationFailed):  # tokens are per session
        await auth.authenticate(f"Session {other.csrf}", {SESSION_COOKIE: s.id})


async def test_bearer_keys_still_work_and_the_old_raw_key_cookie_does_not() -> None:
    auth = Authenticator("sk-admin")
    assert (await auth.authenticate("Bearer sk-admin")).kind == "admin"
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(None, {"architect_session_key": "sk-admin"})


def test_sessions_expire_when_idle_or_too_old_and_end_with_their_key(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("architect.access.auth.time.time", lambda: now[0])
    sessions = Sessions(idle_s=60, max_age_s=300)
    s = sessions.create(KEY)
    now[0] += 59
    assert sessions.get(s.id) is s
    now[0] += 61
    assert sessions.get(s.id) is None
    s2 = sessions.create(KEY)
    for _ in range(6):
        now[0] += 55
        sessions.get(s2.id)
    assert sessions.get(s2.id) is None  # absolute limit despite activity
    s3, s4 = sessions.create(KEY), sessions.create(Principal(kind="key", key_id="k2"))
    assert sessions.drop_key("k1") == 1
    assert sessions.get(s3.id) is None and sessions.get(s4.id) is s4


def test_the_session_store_is_bounded() -> None:
    sessions = Sessions(limit=3)
    made = [sessions.create(KEY) for _ in range(5)]
    assert len(sessions) == 3
    assert sessions.get(made[-1].id) is not None
