"""Names that are stored and filtered on, sent to the admin API with control characters, are refused
with a 400 naming the field, and nothing is created (keys, budgets, plans, orchestrator fields)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.helpers import LiveServer, make_config

from architect.store import open_store

ADMIN = {"authorization": "Bearer admin-secret-key-0123456789"}


def _server(url: str) -> LiveServer:
    cfg = make_config({"auth": {"admin_key": ADMIN["authorization"].split()[1]}})
    return LiveServer(cfg, open_store(url, migrate="upgrade"))


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    with _server(db_url) as srv:
        yield srv


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with _server(f"sqlite:///{tmp_path_factory.mktemp('ids')}/a.db") as srv:
        yield srv


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "ci\x00bot"}, "name"),
        ({"name": "ci\x1b[31mbot"}, "name"),
        ({"name": "ok", "models": ["m", "m\u202e"]}, "models[1]"),
        ({"name": "ok", "tags": {"project": "sh\x00op"}}, "tags.project"),
        ({"name": "ok", "tags": {"pro\x07ject": "shop"}}, "tags"),
    ],
)
def test_key_names_models_and_tags_with_control_characters_are_refused(
    sqlite_server: LiveServer, body: dict[str, object], param: str
) -> None:
    with httpx.Client(base_url=sqlite_server.url + "/api/v1", headers=ADMIN) as c:
        r = c.post("/keys", json=body)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["param"] == param and "control characters" in err["message"]
        assert c.get("/keys").json()["keys"] == []
        assert c.get("/audit").json()["audit"] == []


def test_a_budget_target_with_a_control_character_is_refused(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url + "/api/v1", headers=ADMIN) as c:
        r = c.post("/budgets", json={"scope": "project", "target": "sh\x00op", "limit_usd": 5})
        assert r.status_code == 400 and r.json()["error"]["param"] == "target"
        assert c.get("/budgets").json()["budgets"] == []
        assert (
            c.post("/budgets", json={"scope": "project", "target": "shop", "limit_usd": 5}).status_code == 201
        )


def test_plan_names_and_task_fields_with_control_characters_are_refused(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url + "/api/v1", headers=ADMIN) as c:
        md = "# Feature: Checkout\n## Phase 1: P\n- [ ] T001 add \x00 cart\n"
        r = c.post("/plans", json={"format": "md", "text": md})
        assert r.status_code == 400 and "features[0].phases[0].tasks[0].title" in r.json()["error"]["message"]
        r = c.post("/plans", json={"format": "md", "text": md.replace("\x00", ""), "project": "sh\x00op"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "project"
        assert c.get("/features").json() == []
        assert c.post("/plans", json={"format": "md", "text": md.replace("\x00", "")}).status_code == 201
        r = c.patch("/features/checkout/tasks/T001", json={"title": "new\x00title"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "title"
        r = c.post("/features/checkout/items", json={"kind": "bug", "title": "b", "task_key": "T0\x001"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "task_key"
        assert c.get("/features/checkout/tasks/T001").json()["title"] == "add  cart"
