"""A live server with data to probe: the admin key, two tenants (virtual keys A "alpha" and B "bravo",
each bound to its own project), a feature with tasks and an item per tenant, budgets, and ledger calls made through
`/v1` against the stub upstream. Used by the fuzz and the tenant-isolation tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from architect.store import open_store
from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer

__all__ = ["ADMIN_KEY", "Seeded", "Tenant", "seeded_server"]

ADMIN_KEY = "admin-fuzz-secret-0123456789"

_PLAN = """# Feature: {title}
{spec}
## Phase 1: Build
- [ ] T001 {task} first step
- [ ] T002 {task} second step (after T001)
"""


@dataclass
class Tenant:
    """One virtual key and what it owns; every text of it carries `name` (a word no other tenant uses)."""

    name: str
    project: str
    key: str = ""
    key_id: str = ""
    key_prefix: str = ""
    feature_slug: str = ""
    feature_id: int = 0
    item_id: int = 0
    budget_ids: list[int] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    @property
    def bearer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}

    @property
    def key_name(self) -> str:
        return f"{self.name}-key-name"

    @property
    def feature_title(self) -> str:
        return f"{self.name.title()} Secret Feature"

    def secrets(self) -> list[str]:
        """Every text of this tenant that no other key may ever see in a response."""
        return [
            self.key,
            self.key_prefix,
            self.key_id,
            self.key_name,
            self.project,
            self.feature_slug,
            self.feature_title,
            f"Spec of {self.name} only",
            f"{self.name} task",
            f"{self.name} private risk",
            f"{self.name} question",
            *self.request_ids,
        ]


@dataclass
class Seeded:
    server: LiveServer
    a: Tenant
    b: Tenant

    @property
    def url(self) -> str:
        return self.server.url


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def _seed_tenant(c: httpx.Client, t: Tenant) -> None:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    created = _ok(
        c.post(
            "/api/v1/keys",
            json={"name": t.key_name, "tags": {"project": t.project}, "budget_usd": 50.0},
            headers=admin,
        ),
        201,
    )
    t.key, t.key_id, t.key_prefix = created["key"], created["id"], created["prefix"]
    plan = _PLAN.format(title=t.feature_title, spec=f"Spec of {t.name} only.", task=f"{t.name} task")
    features = _ok(
        c.post("/api/v1/plans", json={"format": "md", "text": plan, "project": t.project}, headers=admin), 201
    )
    t.feature_slug, t.feature_id = features[0]["feature"]["slug"], features[0]["feature"]["id"]
    item = _ok(
        c.post(
            f"/api/v1/features/{t.feature_slug}/items",
            json={"kind": "risk", "title": f"{t.name} private risk", "task_key": "T001"},
            headers=admin,
        ),
        201,
    )
    t.item_id = item["id"]
    budget = _ok(
        c.post(
            "/api/v1/budgets",
            json={"scope": "project", "target": t.project, "period": "day", "limit_usd": 10.0},
            headers=admin,
        ),
        201,
    )
    t.budget_ids = [budget["id"], *(b["id"] for b in created.get("budgets", []))]
    for i in range(2):
        r = c.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": f"{t.name} question {i}"}]},
            headers={**t.bearer, "x-architect-tags": f"feature={t.feature_slug},task=T001"},
        )
        _ok(r)
        t.request_ids.append(r.headers["x-request-id"])


@contextlib.contextmanager
def seeded_server(database_url: str, **server: Any) -> Iterator[Seeded]:
    """A running server on `database_url` with tenants A (project alpha) and B (project beta)."""
    with StubServer() as stub:
        cfg = stub_config(stub.url)
        cfg["auth"] = {"admin_key": ADMIN_KEY}
        if server:
            cfg["server"] = server
        with (
            LiveServer(make_config(cfg), open_store(database_url, migrate="upgrade")) as srv,
            httpx.Client(base_url=srv.url, timeout=30) as c,
        ):
            a, b = Tenant("alpha", "alpha-project"), Tenant("bravo", "bravo-project")
            _seed_tenant(c, a)
            _seed_tenant(c, b)
            srv.runtime.ledger.flush()
            yield Seeded(srv, a, b)
