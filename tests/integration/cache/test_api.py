"""GET /api/v1/cache/stats and POST /api/v1/cache/purge: admin only, and they act on every tier."""

from __future__ import annotations

import httpx

from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer

ADMIN = {"authorization": "Bearer admin-secret"}
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def test_stats_and_purge(stub: StubServer) -> None:
    cfg = make_config({**stub_config(stub.url), "auth": {"admin_key": "admin-secret"}})
    with LiveServer(cfg) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        assert c.get("/api/v1/cache/stats").status_code == 401
        from architect.access.keys import KeyService

        secret, view = KeyService(srv.store.keys, srv.store.budgets, srv.store.audit).create(
            name="user", actor="test"
        )
        user = {"authorization": f"Bearer {secret}"}
        assert c.get("/api/v1/cache/stats", headers=user).status_code == 403
        assert c.post("/api/v1/cache/purge", json={"all": True}, headers=user).status_code == 403
        for _ in range(3):
            assert c.post("/v1/chat/completions", json=BODY, headers=user).status_code == 200
        st = c.get("/api/v1/cache/stats", headers=ADMIN).json()
        assert st["by_tier"]["miss"] == 1 and st["by_tier"]["hit-l1"] == 2 and st["hits"] == 2
        assert st["l1"]["entries"] == 1 and st["l2"]["entries"] == 1 and st["saved_cost_usd"] > 0
        r = c.post("/api/v1/cache/purge", json={}, headers=ADMIN)
        assert r.status_code == 400  # a filter or all=true is required
        r = c.post("/api/v1/cache/purge", json={"older_than_s": -1}, headers=ADMIN)
        assert r.status_code == 400 and r.json()["error"]["param"] == "older_than_s"
        r = c.post("/api/v1/cache/purge", json={"key_id": "someone-else"}, headers=ADMIN)
        assert r.json()["removed"] == {"l1": 0, "l2": 0}
        r = c.post("/api/v1/cache/purge", json={"key_id": view["id"]}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["removed"] == {"l1": 1, "l2": 1}
        again = c.post("/v1/chat/completions", json=BODY, headers=user)
        assert again.headers["x-architect-cache"] == "miss"
