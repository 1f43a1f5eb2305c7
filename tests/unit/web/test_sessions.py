"""Dashboard sessions: cookie + per-session token, expiry, the per-key and global caps (with an
injected clock), and the check of a session against its key's current standing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from architect.access.auth import SESSION_COOKIE, Authenticator, KeyStanding, SessionLimitReached, Sessions
from architect.access.keystate import KeyStates
from architect.errors import AuthenticationFailed
from architect.principal import ADMIN, ANONYMOUS, Principal

KEY = Principal(kind="key", key_id="k1", name="team")
OTHER = Principal(kind="key", key_id="k2", name="other")
CRED = "hash-of-k1"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeStates:
    """key id -> standing, as the access store would answer; counts the checks."""

    def __init__(self) -> None:
        self.standing: dict[str, KeyStanding | None] = {
            "k1": KeyStanding(KEY, CRED),
            "k2": KeyStanding(OTHER, "h2"),
        }
        self.calls: list[str] = []

    async def __call__(self, key_id: str) -> KeyStanding | None:
        self.calls.append(key_id)
        return self.standing.get(key_id)


async def test_a_session_needs_both_its_cookie_and_its_token() -> None:
    auth = Authenticator("sk-admin", key_states=FakeStates())
    s = auth.sessions.create(KEY, credential=CRED)
    assert await auth.authenticate(f"Session {s.csrf}", {SESSION_COOKIE: s.id}) == KEY
    with pytest.raises(AuthenticationFailed):  # the cookie alone (a cross-site form) is not enough
        await auth.authenticate(None, {SESSION_COOKIE: s.id})
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate("Session wrong-token", {SESSION_COOKIE: s.id})
    with pytest.raises(AuthenticationFailed):  # the token without the cookie is not enough either
        await auth.authenticate(f"Session {s.csrf}", {})
    other = auth.sessions.create(KEY, credential=CRED)
    with pytest.raises(AuthenticationFailed):  # tokens are per session
        await auth.authenticate(f"Session {other.csrf}", {SESSION_COOKIE: s.id})


async def test_bearer_keys_still_work_and_the_old_raw_key_cookie_does_not() -> None:
    auth = Authenticator("sk-admin")
    assert (await auth.authenticate("Bearer sk-admin")).kind == "admin"
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(None, {"architect_session_key": "sk-admin"})


def test_sessions_expire_when_idle_or_too_old_and_end_with_their_key() -> None:
    clock = Clock()
    sessions = Sessions(idle_s=60, max_age_s=300, clock=clock)
    s = sessions.create(KEY)
    clock.now += 59
    assert sessions.get(s.id) is s
    clock.now += 61
    assert sessions.get(s.id) is None
    s2 = sessions.create(KEY)
    for _ in range(6):
        clock.now += 55
        sessions.get(s2.id)
    assert sessions.get(s2.id) is None  # absolute limit despite activity
    s3, s4 = sessions.create(KEY), sessions.create(OTHER)
    assert sessions.drop_key("k1") == 1
    assert sessions.get(s3.id) is None and sessions.get(s4.id) is s4


def test_a_new_login_beyond_the_per_key_cap_ends_that_keys_least_recently_used_session() -> None:
    clock = Clock()
    sessions = Sessions(per_key=3, clock=clock)
    theirs = sessions.create(OTHER)
    mine = []
    for _ in range(3):
        clock.now += 1
        mine.append(sessions.create(KEY))
    clock.now += 1
    assert sessions.get(mine[0].id) is mine[0]  # in use: the least recently used is now mine[1]
    clock.now += 1
    newest = sessions.create(KEY)
    assert sessions.get(mine[1].id) is None
    assert [sessions.get(x.id) for x in (mine[0], mine[2], newest)] == [mine[0], mine[2], newest]
    assert sessions.get(theirs.id) is theirs and sessions.count("k1") == 3 and sessions.count("k2") == 1


def test_the_global_cap_never_ends_another_principals_session() -> None:
    clock = Clock()
    sessions = Sessions(idle_s=60, limit=3, per_key=5, clock=clock)
    a, b = sessions.create(KEY), sessions.create(OTHER)
    admin = sessions.create(ADMIN)
    with pytest.raises(SessionLimitReached) as refused:
        sessions.create(ANONYMOUS)
    assert refused.value.status == 503 and "3 dashboard sessions" in refused.value.message
    assert [sessions.get(x.id) for x in (a, b, admin)] == [a, b, admin]
    clock.now += 30
    sessions.get(a.id)
    sessions.get(admin.id)
    clock.now += 31  # b has been idle for 61 s: it has expired, so there is room
    anon = sessions.create(ANONYMOUS)
    assert sessions.get(b.id) is None
    assert [sessions.get(x.id) for x in (a, admin, anon)] == [a, admin, anon]


def test_10050_logins_with_one_key_leave_every_other_session_alive() -> None:
    sessions = Sessions()  # the defaults: 10,000 in all, 20 per key
    others = [sessions.create(Principal(kind="key", key_id=f"other{i}")) for i in range(100)]
    admin = sessions.create(ADMIN)
    for _ in range(10_050):
        sessions.create(KEY)
    assert sessions.count("k1") == 20 and len(sessions) == 20 + 100 + 1
    assert all(sessions.get(s.id) is s for s in others) and sessions.get(admin.id) is admin


async def test_a_key_session_follows_its_keys_standing() -> None:
    states = FakeStates()
    auth = Authenticator("sk-admin", key_states=states)
    s1, s2 = auth.sessions.create(KEY, credential=CRED), auth.sessions.create(KEY, credential=CRED)
    theirs = auth.sessions.create(OTHER, credential="h2")
    narrowed = Principal(kind="key", key_id="k1", name="team", models=frozenset({"fast"}))
    states.standing["k1"] = KeyStanding(narrowed, CRED)
    got = await auth.session(s1.id)
    assert got is s1 and got.principal == narrowed  # the key's current grants, not those at login
    states.standing["k1"] = KeyStanding(narrowed, "hash-after-rotation")
    assert await auth.session(s1.id) is None  # rotated: a session opened with the old secret ends
    states.standing["k1"] = None  # revoked, expired or deleted: every session of the key ends
    assert await auth.session(s2.id) is None
    assert auth.sessions.count("k1") == 0
    assert await auth.session(theirs.id) is theirs
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(f"Session {s2.csrf}", {SESSION_COOKIE: s2.id})


async def test_sessions_without_a_key_row_are_not_looked_up_and_key_sessions_need_a_check() -> None:
    states = FakeStates()
    auth = Authenticator("sk-admin", key_states=states)
    admin, anon = auth.sessions.create(ADMIN), auth.sessions.create(ANONYMOUS)
    assert await auth.session(admin.id) is admin and await auth.session(anon.id) is anon
    assert states.calls == []
    unchecked = Authenticator("sk-admin")  # no way to check the key: its sessions are refused
    s = unchecked.sessions.create(KEY, credential=CRED)
    assert await unchecked.session(s.id) is None


class Repo:
    """The part of the access store KeyStates reads; counts the reads."""

    def __init__(self, row: dict[str, Any] | None) -> None:
        self.row = row
        self.reads = 0

    def get_key(self, key_id: str) -> dict[str, Any] | None:
        self.reads += 1
        return None if self.row is None else dict(self.row)


def _row(**changes: Any) -> dict[str, Any]:
    row = {
        "id": "k1",
        "name": "team",
        "secret_hash": CRED,
        "revoked_at": None,
        "expires_at": None,
        "tags": {},
    }
    return row | changes


async def test_key_states_share_one_cached_read_per_key_for_at_most_the_ttl() -> None:
    repo, mono, wall = Repo(_row()), Clock(0.0), Clock(5000.0)
    states = KeyStates(repo, ttl_s=1.0, clock=mono, wall=wall)  # type: ignore[arg-type]
    got = await asyncio.gather(*(states("k1") for _ in range(50)))  # 50 sessions' requests at once
    assert repo.reads == 1 and all(g is not None and g.credential == CRED for g in got)
    repo.row = _row(revoked_at=4999.0)  # revoked by another process
    mono.now = 0.99
    assert await states("k1") is not None and repo.reads == 1  # cached, still inside the second
    mono.now = 1.0
    assert await states("k1") is None and repo.reads == 2
    repo.row = _row(expires_at=5001.0)
    mono.now = 2.0
    assert await states("k1") is not None and repo.reads == 3
    wall.now = 5001.0  # expiry is checked on every use against the cached row
    assert await states("k1") is None and repo.reads == 3
    repo.row = None
    mono.now = 3.0
    assert await states("k1") is None
