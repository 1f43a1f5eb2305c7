"""/readyz answers every caller whether the gateway is up; only the admin sees the fleet behind it."""

from __future__ import annotations

import httpx

from architect.access.keys import KeyService
from architect.store import Store
from tests.helpers import LiveServer, make_config, stub_config

ADMIN = "admin-secret-readyz-0123"


def test_readyz_shows_the_fleet_only_to_the_admin() -> None:
    store = Store.memory()
    secret, _ = KeyService(store.keys, store.budgets, store.audit).create(name="tenant", actor="test")
    cfg = make_config({**stub_config("http://127.0.0.1:9"), "auth": {"admin_key": ADMIN}})
    with LiveServer(cfg, store=store) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        for headers in ({}, {"authorization": f"Bearer {secret}"}, {"authorization": "Bearer wrong"}):
            r = c.get("/readyz", headers=headers)
            assert r.status_code == 200
            assert r.json() == {"status": "ok", "checks": {"store": {"ok": True}}}, headers
            assert "stub" not in r.text and "queue_depth" not in r.text
        full = c.get("/readyz", headers={"authorization": f"Bearer {ADMIN}"}).json()
        assert full["checks"]["models"]["m"]["deployments"] == {"m/stub/stub-model": "closed"}
        assert {"queue_depth", "written", "dropped", "quarantined"} <= set(full["checks"]["ledger"])
