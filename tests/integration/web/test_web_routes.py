"""The /ui routes over real HTTP: login with CSRF, cookie flags, session-authenticated API use,
logout, redirects, security headers, static assets."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import LiveServer, make_config

ADMIN = "sk-admin-web"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    cfg = {
        "auth": {"admin_key": ADMIN},
        "providers": [{"name": "sim", "kind": "simulated"}],
        "models": [{"name": "fast", "deployments": [{"provider": "sim", "model": "sim-fast"}]}],
    }
    with LiveServer(make_config(cfg)) as s:
        yield s


def login(client: httpx.Client, key: str) -> httpx.Response:
    page = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    return client.post("/ui/login", data={"csrf": token.group(1), "key": key, "next": "/ui/ledger"})


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert m
    return m.group(1)


def test_pages_redirect_to_login_and_back(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        r = c.get("/ui/providers?range=6h")
        assert r.status_code == 303
        assert r.headers["location"] == "/ui/login?next=%2Fui%2Fproviders%3Frange%3D6h"
        r = login(c, ADMIN)
        assert r.status_code == 303 and r.headers["location"] == "/ui/ledger"
        cookie = r.headers["set-cookie"]
        assert "architect_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert ADMIN not in cookie
        page = c.get("/ui/ledger")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert ADMIN not in page.text
        assert c.get("/ui/static/common.js").status_code == 200
        assert c.get("/ui/nope").status_code == 404


def test_login_refuses_a_missing_csrf_token_and_a_bad_key(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        r = c.post("/ui/login", data={"key": ADMIN})
        assert r.status_code == 403 and "architect_session" not in r.headers.get("set-cookie", "")
        r = login(c, "sk-wrong")
        assert r.status_code == 200 and "That key was not accepted." in r.text
        assert "architect_session" not in c.cookies


def test_no_open_redirect_after_login(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        page = c.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = c.post("/ui/login", data={"csrf": token, "key": ADMIN, "next": "//evil.example/ui/x"})
        assert r.headers["location"] == "/ui/overview"


def test_the_api_accepts_a_session_only_with_its_token(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        login(c, ADMIN)
        token = csrf_of(c.get("/ui/overview").text)
        assert c.get("/api/v1/calls").status_code == 401  # the cookie alone: what a forged request has
        assert c.get("/api/v1/calls", headers={"authorization": f"Session {token}"}).status_code == 200
        assert c.post("/api/v1/config/reload", headers={"authorization": "Session forged"}).status_code == 401
    # the token without the cookie
    r = httpx.get(f"{server.url}/api/v1/calls", headers={"authorization": f"Session {token}"})
    assert r.status_code == 401


def test_logout_needs_the_token_and_ends_the_session(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        login(c, ADMIN)
        token = csrf_of(c.get("/ui/overview").text)
        assert c.post("/ui/logout", data={"csrf": "forged"}).status_code == 403
        assert c.get("/ui/overview").status_code == 200
        r = c.post("/ui/logout", data={"csrf": token})
        assert r.status_code == 303
        assert c.get("/api/v1/calls", headers={"authorization": f"Session {token}"}).status_code == 401
        assert c.get("/ui/overview").status_code == 303


def test_open_mode_needs_no_login() -> None:
    cfg = {"providers": [{"name": "sim", "kind": "simulated"}],
           "models": [{"name": "fast", "deployments": [{"provider": "sim", "model": "sim-fast"}]}]}  # fmt: skip
    with LiveServer(make_config(cfg)) as s, httpx.Client(base_url=s.url) as c:
        r = c.get("/ui/overview")
        assert r.status_code == 200 and "local (no admin key configured)" in r.text
        token = csrf_of(r.text)
        assert c.get("/api/v1/calls", headers={"authorization": f"Session {token}"}).status_code == 200
