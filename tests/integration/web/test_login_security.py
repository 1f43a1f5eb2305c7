"""Dashboard sessions and login over real HTTP: sessions end with their key (revoked or rotated by the
CLI on the store directly, or expired), login is throttled and audited, the login CSRF token is the
server's, and one key's logins never end another key's session."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from architect.access.keys import KeyService, principal_for
from architect.store import Store, open_store
from tests.helpers import LiveServer, make_config, wait_until

ADMIN = "sk-admin-login-test"


def _config(**auth: Any) -> Any:
    return make_config(
        {
            "auth": {"admin_key": ADMIN, **auth},
            "providers": [{"name": "sim", "kind": "simulated"}],
            "models": [{"name": "fast", "deployments": [{"provider": "sim", "model": "sim-fast"}]}],
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(_config()) as s:
        yield s


def login(c: httpx.Client, key: str, address: str | None = None) -> httpx.Response:
    page = c.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    headers = {"x-forwarded-for": address} if address else None  # uvicorn trusts it from 127.0.0.1
    return c.post("/ui/login", data={"csrf": token.group(1), "key": key, "next": "/ui/keys"}, headers=headers)


def session_token(c: httpx.Client) -> str:
    page = c.get("/ui/overview")
    assert page.status_code == 200, page.status_code
    m = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert m
    return m.group(1)


def api(c: httpx.Client, token: str) -> int:
    return c.get("/api/v1/keys", headers={"authorization": f"Session {token}"}).status_code


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`architect ARGS` in its own process, on the store directly (no --server)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ARCHITECT_SERVER", "ARCHITECT_ADMIN_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "architect", *args], env=env, capture_output=True, text=True, timeout=60
    )


def new_key(store: Store, name: str, **kw: Any) -> tuple[str, str]:
    secret, view = KeyService(store.keys, store.budgets, store.audit).create(name=name, actor="test", **kw)
    return secret, str(view["id"])


def test_a_session_ends_within_a_second_of_the_cli_revoking_its_key_in_the_store(db_url: str) -> None:
    store = open_store(db_url, migrate="upgrade")
    secret, key_id = new_key(store, "dash")
    with LiveServer(_config(), store=store) as srv, httpx.Client(base_url=srv.url) as c:
        assert login(c, secret).status_code == 303
        token = session_token(c)
        assert api(c, token) == 200  # the key's row is now cached
        res = cli("keys", "revoke", key_id, "--database-url", db_url)
        assert res.returncode == 0, res.stderr
        revoked = time.monotonic()
        wait_until(lambda: api(c, token) == 401, timeout=5)
        assert time.monotonic() - revoked < 1.5
        page = c.get("/ui/overview")
        assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")


def test_a_session_ends_when_the_cli_rotates_its_key_and_the_new_secret_logs_in(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    secret, key_id = new_key(store, "dash")
    with LiveServer(_config(), store=store) as srv, httpx.Client(base_url=srv.url) as c:
        assert login(c, secret).status_code == 303
        token = session_token(c)
        res = cli("keys", "rotate", key_id, "--database-url", sqlite_url)
        assert res.returncode == 0, res.stderr
        rotated = time.monotonic()
        wait_until(lambda: api(c, token) == 401, timeout=5)
        assert time.monotonic() - rotated < 1.5
        new_secret = re.search(r"sk-arch-[A-Za-z0-9_-]{43}", res.stdout)
        assert new_secret and new_secret.group(0) != secret
        with httpx.Client(base_url=srv.url) as c2:
            assert login(c2, new_secret.group(0)).status_code == 303
            assert api(c2, session_token(c2)) == 200


def test_a_session_ends_when_its_key_expires(server: LiveServer) -> None:
    expires_at = time.time() + 2.0
    secret, _ = new_key(server.store, "short-lived", expires_at=expires_at)
    with httpx.Client(base_url=server.url) as c:
        assert login(c, secret).status_code == 303
        token = session_token(c)
        assert api(c, token) == 200
        wait_until(lambda: api(c, token) == 401, timeout=6)
        ended = time.time()
        assert expires_at <= ended < expires_at + 1.0
        assert c.get("/ui/keys").status_code == 303


def test_wrong_logins_are_limited_a_correct_key_too_then_it_works_after_the_window(
    server: LiveServer,
) -> None:
    guard = server.runtime.login
    clock = Clock()
    guard.throttle.clock = guard.audit.clock = clock  # the window passes without waiting for it
    wrong = [f"sk-arch-{secrets.token_urlsafe(32)}" for _ in range(200)]
    with httpx.Client(base_url=server.url) as c:
        answers = [login(c, key) for key in wrong]
        assert [r.status_code for r in answers] == [200] * 10 + [429] * 190
        assert all("That key was not accepted." in r.text for r in answers[:10])
        limited = answers[-1]
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert re.search(
            r"Too many failed logins\. Try again in \d+ s \(at \d\d:\d\d:\d\d UTC\)", limited.text
        )
        refused = login(c, ADMIN)  # the right key is refused while the limit holds
        assert refused.status_code == 429 and "architect_session" not in c.cookies
        clock.now += 61
        assert login(c, ADMIN).status_code == 303
        assert api(c, session_token(c)) == 200

    rows = server.store.audit.list_audit(action="login.failed", limit=1000)
    assert len(rows) == 5  # the first failures of the address one by one ...
    assert {(r["actor"], r["after"]["reason"]) for r in rows} == {("ip:127.0.0.1", "invalid_key")}
    assert {r["target"] for r in rows} == {key[:12] for key in wrong[:5]}
    with httpx.Client(base_url=server.url) as c:
        login(c, "sk-arch-one-more-wrong-key-in-a-new-window-000000000", address="198.51.100.7")
    (summary,) = server.store.audit.list_audit(action="login.failed.summary")
    assert summary["after"]["failures_not_listed"] == 196  # ... then one row with the count of the rest
    assert summary["after"]["top_addresses"] == {"127.0.0.1": 196}
    everything = json.dumps(server.store.audit.list_audit(limit=10_000))
    assert ADMIN not in everything and not any(key in everything for key in wrong)


def test_failures_are_limited_per_key_prefix_across_addresses(server: LiveServer) -> None:
    secret, _ = new_key(server.store, "victim")
    with httpx.Client(base_url=server.url) as c:
        for i in range(5):
            guess = secret[:12] + secrets.token_urlsafe(32)[:39]
            assert login(c, guess, address=f"203.0.113.{i}").status_code == 200
        r = login(c, secret, address="203.0.113.99")
        assert r.status_code == 429 and "retry-after" in r.headers
        assert login(c, ADMIN, address="203.0.113.99").status_code == 303  # other keys are not affected


def test_a_client_chosen_login_csrf_value_is_refused(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        chosen = "my-own-token"
        r = c.post(
            "/ui/login",
            data={"csrf": chosen, "key": ADMIN},
            headers={"cookie": f"architect_login_csrf={chosen}"},
        )
        assert r.status_code == 403 and "architect_session" not in r.headers.get("set-cookie", "")
        for changed, status in ((lambda t: t + "x", 403), (lambda t: t, 303)):
            page = c.get("/ui/login")  # each form comes with a new token, set in the cookie too
            issued = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert issued
            r = c.post("/ui/login", data={"csrf": changed(issued.group(1)), "key": ADMIN})
            assert r.status_code == status


def test_10050_logins_with_one_key_leave_another_keys_session_alive(server: LiveServer) -> None:
    secret_a, id_a = new_key(server.store, "busy")
    secret_b, _ = new_key(server.store, "bystander")
    with httpx.Client(base_url=server.url) as a, httpx.Client(base_url=server.url) as b:
        assert login(b, secret_b).status_code == 303
        token_b = session_token(b)
        assert login(a, secret_a).status_code == 303
        token_a = session_token(a)
        principal_a = principal_for(server.store.keys.get_key(id_a) or {})
        for _ in range(10_050):  # the bulk straight through the sessions API, as many logins would
            server.runtime.auth.sessions.create(principal_a)
        with httpx.Client(base_url=server.url) as a2:
            assert login(a2, secret_a).status_code == 303
            assert api(a2, session_token(a2)) == 200
        assert api(b, token_b) == 200
        assert api(a, token_a) == 401  # A's own least recently used session made room
        assert server.runtime.auth.sessions.count(id_a) == 20


def test_a_full_server_refuses_a_new_login_rather_than_end_a_session() -> None:
    with LiveServer(_config(sessions={"max": 2})) as srv:
        secret, _ = new_key(srv.store, "late")
        with httpx.Client(base_url=srv.url) as admin, httpx.Client(base_url=srv.url) as late:
            assert login(admin, ADMIN).status_code == 303
            token = session_token(admin)
            with httpx.Client(base_url=srv.url) as admin2:
                assert login(admin2, ADMIN).status_code == 303
            r = login(late, secret)
            assert r.status_code == 503 and r.headers["retry-after"] == "60"
            assert "maximum of 2 dashboard sessions" in r.text
            assert api(admin, token) == 200
