"""Cost per task from the ledger's tags, and the REST API (CRUD, transitions, SSE) on a real store."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from architect.api import create_api
from architect.events import EventBus
from architect.orchestrator.manager import Manager
from architect.orchestrator.metrics import feature_metrics
from architect.orchestrator.plans import parse_markdown
from architect.principal import Principal
from architect.runtime import Runtime
from architect.store import Store, open_store
from tests.helpers import make_config, record_rows

MD = "# Feature: Api\n## Phase 1: A\n- [ ] T001 a `$ true`\n- [ ] T002 b (after T001)\n"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = open_store(sqlite_url)
    yield s
    s.close()


def test_cost_per_task_comes_from_the_ledger_tags(store: Store) -> None:
    Manager(store.tasks).import_plans(parse_markdown(MD))
    base = {
        "ts": time.time(),
        "endpoint": "chat",
        "model": "m",
        "status": "ok",
        "http_status": 200,
        "total_ms": 1.0,
    }
    record_rows(
        store.ledger,
        [
            {
                **base,
                "request_id": "r1",
                "project": "default",
                "feature": "api",
                "task": "T001",
                "cost_usd": 0.25,
            },
            {
                **base,
                "request_id": "r2",
                "project": "default",
                "feature": "api",
                "task": "T001",
                "cost_usd": 0.5,
            },
            {
                **base,
                "request_id": "r3",
                "project": "other",
                "feature": "api",
                "task": "T001",
                "cost_usd": 9.0,
            },
        ],
    )
    met = feature_metrics(store.tasks, "api")
    assert met["cost_by_task"] == {"T001": 0.75} and met["calls_by_task"] == {"T001": 2}
    assert met["cost_by_phase"] == {1: 0.75} and met["model_calls"] == 2


def _client(store: Store, key_resolver: object = None) -> tuple[TestClient, EventBus]:
    rt = Runtime(make_config({"auth": {"admin_key": "admin-secret"}}), store)
    if key_resolver is not None:
        rt.auth.key_resolver = key_resolver
    return TestClient(create_api(rt)), rt.events


ADMIN = {"authorization": "Bearer admin-secret"}


def test_rest_crud_transitions_and_errors(store: Store) -> None:
    c, _ = _client(store)
    r = c.post("/plans", json={"format": "md", "text": MD}, headers=ADMIN)
    assert r.status_code == 201 and r.json()[0]["created"] == 2
    assert c.post("/plans", json={"format": "md", "text": "# Feature: X\n## Phase 1: A\n- [ ] T001 a (after T9)"},
                  headers=ADMIN).json()["error"]["message"].endswith("task T001 depends on unknown task T9")  # fmt: skip
    r = c.post("/plans", json={"format": "toml", "text": "x"}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["param"] == "format"
    assert c.get("/features", headers=ADMIN).json()[0]["slug"] == "api"
    assert c.get("/features/nope", headers=ADMIN).status_code == 404
    assert c.get("/features", headers={}).status_code == 401
    r = c.patch("/features/api/tasks/T001", json={"priority": 11}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["param"] == "priority"
    assert c.patch("/features/api/tasks/T001", json={"priority": 9}, headers=ADMIN).json()["priority"] == 9
    r = c.post("/features/api/items", json={"kind": "risk", "title": "Vendor lock-in"}, headers=ADMIN)
    assert r.status_code == 201
    assert c.get("/features/api/items", headers=ADMIN).json()[0]["title"] == "Vendor lock-in"
    assert c.post("/features/api/pause", headers=ADMIN).json()["status"] == "paused"
    assert c.post("/features/api/pause", headers=ADMIN).status_code == 409  # already paused
    assert c.post("/features/api/resume", headers=ADMIN).json()["status"] == "active"
    assert (
        c.post("/features/api/tasks/T001/complete", json={"ok": True}, headers=ADMIN).json()["status"]
        == "succeeded"
    )
    assert c.get("/features/api/tasks/T002", headers=ADMIN).json()["status"] == "ready"
    assert "- [x] T001 a" in c.get("/features/api/export", headers=ADMIN).text
    assert c.get("/features/api/report", headers=ADMIN).json()["summary"]["by_status"] == {
        "succeeded": 1,
        "ready": 1,
    }
    assert c.get("/features/api/metrics", headers=ADMIN).json()["tasks_done"] == 1
    r = c.get("/tasks/events", params={"feature": "api", "once": True}, headers=ADMIN)
    assert r.headers["content-type"].startswith("text/event-stream")
    kinds = [line for line in r.text.splitlines() if line.startswith("data: ")]
    assert any('"kind":"succeeded"' in k for k in kinds) and any(
        '"kind":"feature_paused"' in k for k in kinds
    )
    last = int([line for line in r.text.splitlines() if line.startswith("id: ")][-1][4:])
    r = c.get("/tasks/events", params={"once": True}, headers={**ADMIN, "last-event-id": str(last)})
    assert "data: " not in r.text  # resumed after the last one: nothing new


def test_keys_only_see_their_projects(store: Store) -> None:
    async def resolve(token: str) -> Principal | None:
        return Principal(kind="key", key_id="k", projects=frozenset({"mine"})) if token == "k1" else None

    c, _ = _client(store, resolve)
    c.post("/plans", json={"format": "md", "text": MD, "project": "theirs"}, headers=ADMIN)
    key = {"authorization": "Bearer k1"}
    assert c.get("/features", headers=key).json() == []
    assert c.get("/features/api", headers=key).status_code == 404
    r = c.post(
        "/plans", json={"format": "md", "text": MD.replace("Api", "Other"), "project": "theirs"}, headers=key
    )
    assert r.status_code == 403 and "theirs" in r.json()["error"]["message"]
    manual = MD.replace("Api", "Mine").replace(" `$ true`", "")  # a key without tasks:execute: no commands
    assert c.post("/plans", json={"format": "md", "text": manual, "project": "mine"},
                  headers=key).status_code == 201  # fmt: skip
    assert [f["slug"] for f in c.get("/features", headers=key).json()] == ["mine"]


def test_a_bad_status_filter_and_an_unknown_task_are_named(store: Store) -> None:
    c, _ = _client(store)
    assert c.post("/plans", json={"format": "md", "text": MD}, headers=ADMIN).status_code == 201
    r = c.get("/features/api/tasks", params={"status": "bogus"}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["param"] == "status"
    assert "'pending', 'ready', 'running'" in r.json()["error"]["message"]
    # the statuses the API's schema offers are the store's
    from typing import get_args

    from architect.api.orchestrator import TaskStatus
    from architect.store.schema_orchestrator import TASK_STATUSES

    assert get_args(TaskStatus) == TASK_STATUSES
    assert [
        t["key"] for t in c.get("/features/api/tasks", params={"status": "ready"}, headers=ADMIN).json()
    ] == ["T001"]
    r = c.get("/features/api/tasks/T999", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["message"] == "task 'T999' not found in feature api"
