"""Open mode (no admin key, loopback only) is single-user: before any virtual key exists any token
is the local operator (the README's `api_key="anything"`); once one exists, a token that is not a
valid key (unknown, or a revoked key) is refused with 401 instead of falling back to the operator."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from tests.helpers import LiveServer, make_config, stub_config, wait_until
from tests.stubs.openai_stub import StubServer

from architect.store import open_store


@pytest.fixture
def stub() -> object:
    with StubServer() as s:
        yield s


def _h(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_open_mode_refuses_unknown_and_revoked_keys_once_a_key_exists(stub: StubServer, db_url: str) -> None:
    cfg = make_config(stub_config(stub.url))
    with (
        LiveServer(cfg, store=open_store(db_url, migrate="upgrade")) as srv,
        httpx.Client(base_url=srv.url) as c,
    ):
        sdk = openai.OpenAI(base_url=srv.url + "/v1", api_key="anything", max_retries=0)
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        assert sdk.chat.completions.create(**chat).choices[0].message.content  # no key exists: accepted
        assert c.get("/api/v1/audit", headers=_h("anything")).status_code == 200

        r = c.post("/api/v1/keys", json={"name": "ci"})  # the local operator creates a key
        assert r.status_code == 201, r.text
        secret, key_id = r.json()["key"], r.json()["id"]
        start = time.monotonic()
        wait_until(lambda: c.get("/api/v1/audit", headers=_h("anything")).status_code == 401, timeout=5)
        assert time.monotonic() - start <= 1.5  # the "does a key exist" check is cached for under a second
        r = c.get("/api/v1/features", headers=_h("anything"))
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        with pytest.raises(openai.AuthenticationError):
            sdk.chat.completions.create(**chat)
        ok = openai.OpenAI(base_url=srv.url + "/v1", api_key=secret, max_retries=0)
        assert ok.chat.completions.create(**chat).choices[0].message.content
        assert c.get("/api/v1/keys", headers=_h(secret)).json()["keys"][0]["id"] == key_id  # itself only
        assert c.get("/api/v1/audit").status_code == 200  # no token at all: still the local operator

        assert c.post(f"/api/v1/keys/{key_id}/revoke").status_code == 200
        wait_until(lambda: c.get("/api/v1/keys", headers=_h(secret)).status_code == 401, timeout=5)
        assert c.get("/api/v1/audit", headers=_h(secret)).status_code == 401  # never the operator's rights
