"""What a virtual key sees of other tenants, through a real server and stub upstreams: the event stream
(`GET /api/v1/events`) carries only its own calls, its granted projects' tasks, its model groups'
breakers and alerts about budgets it may see; `/v1/models`, `/api/v1/breakers`, `/api/v1/providers`
and `/api/v1/health/deployments` show only its model groups and no fleet-wide figures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from tests.helpers import LiveServer, make_config, wait_until
from tests.stubs.openai_stub import StubServer

from architect.config import Config

ADMIN = "admin-scoped-views-0123456789"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 7}
ONE_TRY = {"max_attempts": 1}


def _h(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


@pytest.fixture
def stubs() -> Iterator[tuple[StubServer, StubServer]]:
    with StubServer() as a, StubServer(seed=1) as b:
        yield a, b


def _config(m: StubServer, m2: StubServer, price: float = 1.0) -> Config:
    """Group `m` (deployment d-m) on one stub, group `m2` (d-m2) on another; one failure opens a breaker."""

    def dep(name: str, provider: str) -> dict[str, Any]:
        return {
            "name": name,
            "provider": provider,
            "model": "stub-model",
            "price": {"input_per_mtok": price, "output_per_mtok": 2 * price},
            "breaker": {"consecutive_failures": 1, "cooldown_s": 0.3},
        }

    return make_config(
        {
            "providers": [
                {"name": "p1", "kind": "openai", "base_url": m.url},
                {"name": "p2", "kind": "openai", "base_url": m2.url},
            ],
            "models": [
                {"name": "m", "deployments": [dep("d-m", "p1")], "retry": ONE_TRY},
                {"name": "m2", "deployments": [dep("d-m2", "p2")], "retry": ONE_TRY},
            ],
            "auth": {"admin_key": ADMIN},
        }
    )


def _key(c: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    r = c.post("/api/v1/keys", json={"name": name, **body}, headers=_h(ADMIN))
    assert r.status_code == 201, r.text
    return dict(r.json())


class Subscriber:
    """Reads `GET /api/v1/events` with one key in a background thread, keeping (topic, data) pairs."""

    def __init__(self, url: str, secret: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.keep_alives = 0
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=None))
        self._connected = threading.Event()
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, args=(url, secret), daemon=True)
        self._thread.start()
        assert self._connected.wait(10), "the event stream did not connect"

    def _run(self, url: str, secret: str) -> None:
        try:
            with self._client.stream("GET", url + "/api/v1/events", headers=_h(secret)) as r:
                self._response = r
                topic = None
                for line in r.iter_lines():
                    if line.startswith(": connected"):
                        self._connected.set()
                    elif line.startswith(": keep-alive"):
                        self.keep_alives += 1
                    elif line.startswith("event: "):
                        topic = line[7:]
                    elif line.startswith("data: ") and topic is not None:
                        self.events.append((topic, orjson.loads(line[6:])))
        except (httpx.HTTPError, RuntimeError, ValueError):
            pass  # closed by `close()`

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [d for t, d in list(self.events) if t == topic]

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._client.close()
        self._thread.join(10)


def test_event_stream_carries_only_what_the_key_may_see(
    stubs: tuple[StubServer, StubServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    import architect.api.core as core

    monkeypatch.setattr(core, "KEEP_ALIVE_S", 0.5)  # a closed reader notices at the next comment
    m, m2 = stubs
    m2.fail_rate = 1.0  # m2 always answers 500: its breaker opens at the first call
    with LiveServer(_config(m, m2, price=1000.0)) as srv, httpx.Client(base_url=srv.url) as c:
        admin = _h(ADMIN)
        a = _key(c, "a", tags={"project": "alpha"}, models=["m"])
        b = _key(c, "b", tags={"project": "beta"}, budget_usd=0.03)
        for project in ("alpha", "beta"):
            r = c.post(
                "/api/v1/budgets",
                json={"scope": "project", "target": project, "period": "month", "limit_usd": 0.03},
                headers=admin,
            )
            assert r.status_code == 201, r.text
        sub_a, sub_admin = Subscriber(srv.url, a["key"]), Subscriber(srv.url, ADMIN)
        try:
            # key B and the admin: beta's tasks, B's call and budget alerts, m2's breaker
            plan = "# Feature: {}\n## Phase 1: A\n- [ ] T001 a\n- [ ] T002 b\n"
            for project in ("beta", "alpha"):
                r = c.post(
                    "/api/v1/plans",
                    json={"format": "md", "text": plan.format(project.title()), "project": project},
                    headers=admin,
                )
                assert r.status_code == 201, r.text
            for action in ("pause", "resume"):
                assert c.post(f"/api/v1/features/beta/{action}", headers=_h(b["key"])).status_code == 200
            assert c.post("/api/v1/features/beta/tasks/T001/complete", headers=admin).status_code == 200
            assert c.post("/api/v1/features/beta/tasks/T002/cancel", headers=admin).status_code == 200
            hdr = {**_h(b["key"]), "x-architect-tags": "project=beta"}
            assert c.post("/v1/chat/completions", json=CHAT, headers=hdr).status_code == 200
            assert (
                c.post("/v1/chat/completions", json={**CHAT, "model": "m2"}, headers=admin).status_code >= 500
            )

            # key A: its own call and alpha's alert and tasks, and a breaker of its group m
            with openai.OpenAI(base_url=srv.url + "/v1", api_key=a["key"], max_retries=0) as sdk:
                sdk.chat.completions.create(model="m", messages=CHAT["messages"], max_tokens=7)  # type: ignore[arg-type]
            m.script.append("500")
            assert c.post("/v1/chat/completions", json=CHAT, headers=admin).status_code >= 500
            wait_until(
                lambda: any(e["to"] == "open" for e in sub_admin.of("breaker") if e["deployment"] == "d-m")
            )
            time.sleep(0.35)  # the breaker's cooldown: the next call is the probe that closes it
            assert c.post("/v1/chat/completions", json=CHAT, headers=admin).status_code == 200

            def published() -> bool:
                alerts = {e["target"] for e in sub_admin.of("alert")}
                return {
                    "project:beta:month",
                    f"key:{b['id']}:month",
                    "project:alpha:month",
                } <= alerts and any(e["deployment"] == "d-m2" for e in sub_admin.of("breaker"))

            wait_until(published)
            assert c.post("/api/v1/features/alpha/pause", headers=_h(a["key"])).status_code == 200  # the last
            wait_until(lambda: any(e["kind"] == "feature_paused" for e in sub_a.of("task")))
        finally:
            sub_a.close()
            sub_admin.close()

    # key A was sent only its own share: nothing of project beta, key B or group m2 ...
    text = orjson.dumps(sub_a.events).decode()
    assert "beta" not in text and b["id"] not in text and "d-m2" not in text
    assert [e["key_id"] for e in sub_a.of("call")] == [a["id"]]
    tasks = sub_a.of("task")
    assert [e.get("project") for e in tasks] == ["alpha", "alpha"]
    assert [e["kind"] for e in tasks] == ["imported", "feature_paused"]
    assert [(e["deployment"], e["to"]) for e in sub_a.of("breaker")] == [
        ("d-m", "open"),
        ("d-m", "half_open"),
        ("d-m", "closed"),
    ]
    assert all("reason" not in e for e in sub_a.of("breaker"))
    assert [e["target"] for e in sub_a.of("alert")] == ["project:alpha:month"]

    # ... while the admin was sent everything, so each of those was published
    assert {e["project"] for e in sub_admin.of("task")} == {"alpha", "beta"}
    assert {e["key_id"] for e in sub_admin.of("call")} >= {a["id"], b["id"], "admin"}
    assert {e["deployment"] for e in sub_admin.of("breaker")} == {"d-m", "d-m2"}
    assert all(e.get("reason") for e in sub_admin.of("breaker"))


def test_fleet_views_show_a_restricted_key_only_its_groups_and_its_own_counts(
    stubs: tuple[StubServer, StubServer],
) -> None:
    m, m2 = stubs
    with LiveServer(_config(m, m2)) as srv, httpx.Client(base_url=srv.url) as c:
        a = _key(c, "a", models=["m"])
        for model in ("m", "m", "m2"):
            assert (
                c.post("/v1/chat/completions", json={**CHAT, "model": model}, headers=_h(ADMIN)).status_code
                == 200
            )
        assert c.post("/v1/chat/completions", json=CHAT, headers=_h(a["key"])).status_code == 200

        with openai.OpenAI(base_url=srv.url + "/v1", api_key=a["key"], max_retries=0) as sdk:
            assert [x.id for x in sdk.models.list()] == ["m"]
            assert sdk.models.retrieve("m").id == "m"
            with pytest.raises(openai.NotFoundError):
                sdk.models.retrieve("m2")
        with openai.OpenAI(base_url=srv.url + "/v1", api_key=ADMIN, max_retries=0) as sdk:
            assert sorted(x.id for x in sdk.models.list()) == ["m", "m2"]
            assert sdk.models.retrieve("m2").id == "m2"
        # a group the key may not use is refused exactly like one that does not exist
        hidden = c.get("/v1/models/m2", headers=_h(a["key"]))
        ghost = c.get("/v1/models/m3", headers=_h(a["key"]))
        assert hidden.status_code == ghost.status_code == 404
        assert hidden.text.replace("m2", "m3") == ghost.text

        br = c.get("/api/v1/breakers", headers=_h(a["key"])).json()["breakers"]
        assert [(x["deployment"], x["group"]) for x in br] == [("d-m", "m")]
        assert set(br[0]) == {"deployment", "group", "state", "retry_in_s", "config", "history"}

        prov = c.get("/api/v1/providers", headers=_h(a["key"])).json()
        assert set(prov) == {"deployments"}  # no ledger queue figures
        (d,) = prov["deployments"]
        assert d["name"] == "d-m" and set(d["limits"]) == {"max_concurrency", "rpm", "tpm"}
        assert not {"in_flight", "ewma_ttft_ms", "ewma_total_ms"} & set(d)
        assert "window_calls" not in d["breaker"] and "consecutive_failures" not in d["breaker"]

        health = c.get("/api/v1/health/deployments", headers=_h(a["key"])).json()
        assert health["calls"] == "own"
        (h,) = health["deployments"]
        assert h["deployment"] == "d-m" and h["requests"] == 1  # its own call, not the fleet's three
        assert not {"in_flight", "ewma_ttft_ms", "ewma_total_ms"} & set(h)

        # the admin still sees the fleet
        full = c.get("/api/v1/health/deployments", headers=_h(ADMIN)).json()
        assert {x["deployment"]: x["requests"] for x in full["deployments"]} == {"d-m": 3, "d-m2": 1}
        assert "ledger" in c.get("/api/v1/providers", headers=_h(ADMIN)).json()
        assert "window_calls" in c.get("/api/v1/breakers", headers=_h(ADMIN)).json()["breakers"][0]


def test_a_quiet_event_stream_keeps_its_subscription(
    stubs: tuple[StubServer, StubServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    import architect.api.core as core

    monkeypatch.setattr(core, "KEEP_ALIVE_S", 0.1)
    m, m2 = stubs
    with LiveServer(_config(m, m2)) as srv, httpx.Client(base_url=srv.url) as c:
        sub = Subscriber(srv.url, ADMIN)
        try:
            wait_until(lambda: sub.keep_alives >= 3)  # several quiet periods in a row
            assert c.post("/v1/chat/completions", json=CHAT, headers=_h(ADMIN)).status_code == 200
            wait_until(lambda: sub.of("call"))
        finally:
            sub.close()
        wait_until(lambda: srv.runtime.events.subscribers == 0)  # the closed stream unsubscribed
