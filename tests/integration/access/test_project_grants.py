"""Project grants of virtual keys through a real server, the stub upstream and the openai SDK: a call
may put spend only on the projects its key is granted, a refusal reveals no budget, the orchestrator's
`llm` executor works with a granted key; budget deletion is audited; `expires_at` must be in the future."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from tests.helpers import LiveServer, make_config, stub_config, wait_until
from tests.stubs.openai_stub import StubServer

from architect.config import Config
from architect.errors import StoreError
from architect.orchestrator.executors.llm import LLMExecutor
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_yaml
from architect.orchestrator.worker import Worker, WorkerOptions
from architect.store import open_store
from architect.store.orchestrator import SQLiteMemoryTaskRepo

ADMIN = "admin-grants-key-0123456789"
MSG = [{"role": "user", "content": "hi there"}]
_ADMIN_H = {"authorization": f"Bearer {ADMIN}"}


def _config(stub: StubServer, price: float = 1.0) -> Config:
    cfg = stub_config(
        stub.url,
        deployments=[
            {
                "provider": "stub",
                "model": "stub-model",
                "price": {"input_per_mtok": price, "output_per_mtok": 2 * price},
            }
        ],
    )
    cfg["auth"] = {"admin_key": ADMIN}
    return make_config(cfg)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as s:
        yield s


def _key(c: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    r = c.post("/api/v1/keys", json={"name": name, **body}, headers=_ADMIN_H)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _sdk(srv: LiveServer, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url + "/v1", api_key=secret, max_retries=0)


def _chat(
    srv: LiveServer, secret: str, tags: str | None = None, metadata: dict[str, str] | None = None
) -> Any:
    """One chat completion through the openai SDK with `secret`, tagged by header and/or metadata."""
    with _sdk(srv, secret) as client:
        return client.chat.completions.create(
            model="m",
            messages=MSG,  # type: ignore[arg-type]
            max_tokens=7,
            extra_headers={"x-architect-tags": tags} if tags else None,
            extra_body={"metadata": metadata} if metadata else None,
        )


def _budget(c: httpx.Client, project: str) -> dict[str, Any]:
    rows = c.get("/api/v1/budgets", headers=_ADMIN_H).json()["budgets"]
    return next(b for b in rows if (b["scope"], b["target"]) == ("project", project))


def _assert_refused(exc: openai.PermissionDeniedError, param: str) -> None:
    assert exc.status_code == 403 and exc.code == "project_not_allowed" and exc.param == param
    text = exc.response.text.lower()
    assert "budget" not in text and "$" not in text and "limit" not in text and "left" not in text


def test_a_call_may_only_tag_projects_its_key_is_granted(stub: StubServer) -> None:
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url) as c:
        r = c.post(
            "/api/v1/budgets",
            json={"scope": "project", "target": "beta", "period": "month", "limit_usd": 100.0},
            headers=_ADMIN_H,
        )
        assert r.status_code == 201, r.text
        plain = _key(c, "plain")
        bound = _key(c, "bound", tags={"project": "alpha"})

        # no grant: refused by header and by metadata, nothing reaches the upstream or beta's budget
        upstream = len(stub.requests)
        with pytest.raises(openai.PermissionDeniedError) as e:
            _chat(srv, plain["key"], tags="project=beta")
        _assert_refused(e.value, "x-architect-tags")
        with pytest.raises(openai.PermissionDeniedError) as e:
            _chat(srv, plain["key"], metadata={"project": "beta"})
        _assert_refused(e.value, "metadata.project")
        # a key bound to alpha by its default tags may not move its spend to beta
        with pytest.raises(openai.PermissionDeniedError) as e:
            _chat(srv, bound["key"], tags="project=beta")
        _assert_refused(e.value, "x-architect-tags")
        assert len(stub.requests) == upstream
        srv.runtime.ledger.flush()
        time.sleep(0.1)  # a (wrong) background settlement would land here; nothing may have been held
        beta = _budget(c, "beta")
        assert beta["spent_usd"] == 0 and beta["reserved_usd"] == 0

        # granted keys may; the project the call names is the one it is charged to
        granted = _key(c, "granted", projects=["beta"])
        every = _key(c, "every", projects="*")
        assert (plain["projects"], granted["projects"], bound["projects"], every["projects"]) == (
            [],
            ["beta"],
            ["alpha"],
            "*",
        )
        assert _chat(srv, granted["key"], tags="project=beta").choices[0].message.content
        assert _chat(srv, every["key"], tags="project=beta").choices
        assert _chat(srv, every["key"], metadata={"project": "gamma"}).choices
        assert _chat(srv, bound["key"], tags="feature=f1").choices  # default tags fill in
        assert _chat(srv, bound["key"], tags="project=alpha").choices
        assert _chat(srv, ADMIN, tags="project=delta").choices  # the admin may tag any project
        wait_until(lambda: _budget(c, "beta")["spent_usd"] > 0)

        rows = {(r["key_id"], r["project"], r["feature"], r["status"]) for r in srv.calls()}
        assert (granted["id"], "beta", None, "ok") in rows
        assert (every["id"], "beta", None, "ok") in rows and (every["id"], "gamma", None, "ok") in rows
        assert (bound["id"], "alpha", "f1", "ok") in rows and (bound["id"], "alpha", None, "ok") in rows
        refused = [r for r in srv.calls() if r["status"] == "error"]
        assert len(refused) == 3 and all(r["http_status"] == 403 and r["cost_usd"] == 0 for r in refused)


def test_a_budget_refusal_names_only_a_budget_the_key_may_see(stub: StubServer) -> None:
    # price 1000/2000 per Mtok: each call holds about $0.02 of beta's $0.05
    with LiveServer(_config(stub, price=1000.0)) as srv, httpx.Client(base_url=srv.url) as c:
        c.post(
            "/api/v1/budgets",
            json={"scope": "project", "target": "beta", "period": "day", "limit_usd": 0.05},
            headers=_ADMIN_H,
        ).raise_for_status()
        plain = _key(c, "plain")
        for _ in range(5):  # without a grant it is 403 every time, never the 429 that describes beta
            with pytest.raises(openai.PermissionDeniedError) as e:
                _chat(srv, plain["key"], tags="project=beta")
            _assert_refused(e.value, "x-architect-tags")
        granted = _key(c, "granted", projects=["beta"])
        refusal = None
        for _ in range(10):
            try:
                _chat(srv, granted["key"], tags="project=beta")
            except openai.RateLimitError as exc:
                refusal = exc
                break
            wait_until(lambda: _budget(c, "beta")["reserved_usd"] == 0, timeout=5)
        assert refusal is not None and refusal.code == "budget_exceeded"
        assert "project 'beta'" in str(refusal.message)
        seen = c.get("/api/v1/budgets", headers={"authorization": f"Bearer {granted['key']}"}).json()
        assert [(b["scope"], b["target"]) for b in seen["budgets"]] == [("project", "beta")]
        assert c.get("/api/v1/budgets", headers={"authorization": f"Bearer {plain['key']}"}).json() == {
            "budgets": []
        }


PLAN = """
project: {project}
title: Write {project}
phases:
  - tasks:
      - {{id: T001, title: ask, executor: llm, max_attempts: 1, params: {{model: m, prompt: "Hi {{project}}"}}}}
"""


async def _run_llm_tasks(gateway: str, secret: str) -> dict[str, dict[str, Any]]:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    m.import_plans(parse_yaml(PLAN.format(project="shop")) + parse_yaml(PLAN.format(project="web")))
    w = Worker(
        m,
        {"llm": LLMExecutor(gateway, secret)},
        WorkerOptions(slots=2, lease_s=10, poll_s=0.02, exit_when_idle=True),
    )
    await asyncio.wait_for(w.run(), 30)
    return {f["project"]: repo.tasks(f["id"])[0] for f in repo.list_features()}


def test_the_llm_executor_works_with_a_granted_key(stub: StubServer) -> None:
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url) as c:
        both = _key(c, "worker", projects=["shop", "web"])
        shop_only = _key(c, "shop-worker", tags={"project": "shop"})
        done = asyncio.run(_run_llm_tasks(srv.url + "/v1", both["key"]))
        assert {p: t["status"] for p, t in done.items()} == {"shop": "succeeded", "web": "succeeded"}
        mine = {(r["project"], r["feature"], r["task"]) for r in srv.calls() if r["key_id"] == both["id"]}
        assert mine == {("shop", "write-shop", "T001"), ("web", "write-web", "T001")}

        done = asyncio.run(_run_llm_tasks(srv.url + "/v1", shop_only["key"]))
        assert done["shop"]["status"] == "succeeded"
        assert done["web"]["status"] == "failed" and "403" in done["web"]["reason"]
        assert "project 'web'" in done["web"]["reason"]


def test_orchestrator_api_shows_the_projects_a_key_is_granted(stub: StubServer) -> None:
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url) as c:
        for project in ("alpha", "beta"):
            r = c.post(
                "/api/v1/plans",
                json={
                    "format": "md",
                    "text": f"# Feature: F {project}\n## Phase 1: A\n- [ ] T001 a\n",
                    "project": project,
                },
                headers=_ADMIN_H,
            )
            assert r.status_code == 201, r.text
        keys = {
            "none": _key(c, "none"),
            "beta": _key(c, "beta", projects=["beta"]),
            "bound": _key(c, "bound", tags={"project": "alpha"}),
            "all": _key(c, "all", projects="*"),
        }

        def seen(k: str) -> list[str]:
            r = c.get("/api/v1/features", headers={"authorization": f"Bearer {keys[k]['key']}"})
            assert r.status_code == 200, r.text
            return sorted(f["project"] for f in r.json())

        assert seen("none") == [] and seen("beta") == ["beta"] and seen("bound") == ["alpha"]
        assert seen("all") == ["alpha", "beta"]
        beta_h = {"authorization": f"Bearer {keys['beta']['key']}"}
        assert c.get("/api/v1/features/f-alpha", headers=beta_h).status_code == 404
        assert c.get("/api/v1/features/f-beta", headers=beta_h).status_code == 200


def test_key_create_refuses_bad_grants_and_a_past_expiry(stub: StubServer) -> None:
    with LiveServer(_config(stub)) as srv, httpx.Client(base_url=srv.url) as c:
        for body, param in [
            ({"expires_at": time.time() - 60}, "expires_at"),
            ({"projects": ["a\u0000b"]}, "projects[0]"),
            ({"projects": ["*", "beta"]}, "projects"),
        ]:
            r = c.post("/api/v1/keys", json={"name": "x", **body}, headers=_ADMIN_H)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"]["param"] == param
        assert c.get("/api/v1/keys", headers=_ADMIN_H).json()["keys"] == []  # nothing was created
        k = _key(c, "later", expires_at=time.time() + 3600, projects=["beta", "alpha", "beta"])
        assert k["projects"] == ["alpha", "beta"]
        audit = c.get("/api/v1/audit", headers=_ADMIN_H, params={"action": "key.create"}).json()["audit"]
        assert audit[0]["after"]["projects"] == ["alpha", "beta"]


def test_delete_budget_is_audited_in_one_transaction_and_unknown_is_404(
    stub: StubServer, db_url: str
) -> None:
    store = open_store(db_url, migrate="upgrade")
    with LiveServer(_config(stub), store=store) as srv, httpx.Client(base_url=srv.url) as c:
        made = [
            c.post(
                "/api/v1/budgets",
                json={"scope": "project", "target": t, "period": "month", "limit_usd": 5.0},
                headers=_ADMIN_H,
            ).json()
            for t in ("shop", "web")
        ]
        r = c.delete(f"/api/v1/budgets/{made[0]['id']}", headers=_ADMIN_H)
        assert r.status_code == 200, r.text
        assert r.json() == {"deleted": made[0]["id"]}
        rows = c.get("/api/v1/audit", headers=_ADMIN_H, params={"action": "budget.delete"}).json()["audit"]
        assert (
            len(rows) == 1 and rows[0]["actor"] == "admin-key" and rows[0]["target"] == "project:shop:month"
        )
        assert rows[0]["before"]["limit_usd"] == 5.0 and rows[0]["after"] is None
        assert [b["target"] for b in c.get("/api/v1/budgets", headers=_ADMIN_H).json()["budgets"]] == ["web"]

        r = c.delete(f"/api/v1/budgets/{made[0]['id']}", headers=_ADMIN_H)
        assert r.status_code == 404 and set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert str(made[0]["id"]) in r.json()["error"]["message"]

        # the audit row cannot be written (actor is NOT NULL): the budget stays, one transaction
        with pytest.raises(StoreError):
            store.budgets.delete_budget(made[1]["id"], actor=None)  # type: ignore[arg-type]
        assert [b["target"] for b in store.budgets.list_budgets()] == ["web"]
        assert [a["action"] for a in store.audit.list_audit()].count("budget.delete") == 1
