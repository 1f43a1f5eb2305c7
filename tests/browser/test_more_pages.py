"""Keys & budgets (create, revoke, a key's own view), providers, the task board live, the report, and
what shows of the `auto` route (the overview's card, a call's prediction and outcome, the quality
table), from real calls through the gateway and a real `POST /v1/feedback`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from architect.orchestrator.manager import Manager
from architect.store.orchestrator import ClaimOptions
from tests.browser.conftest import ADMIN_KEY, chat, check_axe, implemented, login, shoot
from tests.helpers import LiveServer

PLAN = """# Feature: Checkout flow
Let customers pay.
## Phase 1: Backend
- [ ] T001 Add cart schema `$ true`
- [ ] T002 Pricing service (after T001) `$ true`
## Phase 2: Frontend
- [ ] T003 Checkout page (after T002) `$ true`
"""


def admin() -> dict[str, str]:
    return {"authorization": f"Bearer {ADMIN_KEY}"}


def need(api_paths: list[re.Pattern[str]], path: str) -> None:
    if not implemented(api_paths, path):
        pytest.skip(f"{path} is not implemented on this server yet")


def test_admin_creates_and_revokes_a_key(
    page: Any, server: LiveServer, axe_source: str, api_paths: list[re.Pattern[str]]
) -> None:
    need(api_paths, "/api/v1/keys")
    login(page, next_path="/ui/keys")
    page.get_by_label("Name", exact=True).fill("team-ui")
    page.get_by_label("Budget (USD)").fill("25")
    page.get_by_label("Requests/min").fill("120")
    page.get_by_label("Tags").fill("project=alpha")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret")
    expect(secret).to_be_visible()
    key = secret.inner_text().strip()
    row = page.locator("#keys tbody tr", has_text="team-ui")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("project=alpha")
    expect(page.locator("#budgets")).to_contain_text("$25.00")
    assert chat(server, key=key).status_code == 200  # the new key works at the gateway
    check_axe(page, axe_source)
    shoot(page, "keys")
    revoke = row.get_by_role("button", name="Revoke team-ui")
    revoke.click()
    expect(revoke).to_have_text("Confirm revoking team-ui")  # a second, deliberate click
    revoke.click()
    expect(page.locator("#keys tbody tr", has_text="team-ui")).to_contain_text("revoked")
    r = httpx.post(f"{server.url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                   json={"model": "fast", "messages": [{"role": "user", "content": "x"}]})  # fmt: skip
    assert r.status_code == 401


def test_a_virtual_key_sees_only_its_own_data(
    page: Any, server: LiveServer, api_paths: list[re.Pattern[str]]
) -> None:
    need(api_paths, "/api/v1/keys")
    secret = httpx.post(f"{server.url}/api/v1/keys", headers=admin(), json={"name": "viewer"}).json()["key"]
    mine = chat(server, key=secret).headers["x-request-id"]
    other = chat(server).headers["x-request-id"]
    login(page, key=secret, next_path="/ui/ledger")
    expect(page.get_by_role("button", name=mine)).to_be_visible()
    expect(page.get_by_role("button", name=other)).to_have_count(0)
    page.goto("/ui/keys")
    expect(page.locator(".notice")).to_contain_text("Only the admin")
    expect(page.get_by_role("button", name="Create key")).to_have_count(0)
    expect(page.locator("#keys tbody tr")).to_have_count(1)
    shoot(page, "keys-as-virtual-key")


def test_providers_show_deployments_and_circuit_state(page: Any, server: LiveServer, axe_source: str) -> None:
    chat(server)
    for tier in ("miss", "hit-l1"):  # the second identical deterministic call is answered by the cache
        r = httpx.post(
            f"{server.url}/v1/chat/completions", headers=admin(), timeout=10,
            json={"model": "fast", "temperature": 0, "messages": [{"role": "user", "content": "cache me"}]},
        )  # fmt: skip
        assert r.status_code == 200 and r.headers["x-architect-cache"] == tier
    login(page, next_path="/ui/providers")
    rows = page.locator("#health tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("closed")
    expect(page.locator("#health")).to_contain_text("sim-fast")

    def names(title: str) -> list[str]:
        chart = page.locator("#costs figure").filter(has=page.locator("figcaption", has_text=title))
        expect(chart.locator("tbody tr").first).to_be_visible()
        return [n.strip() for n in chart.locator("tbody tr td:first-child").all_inner_texts()]

    # deployments, the provider and the cache by name; never a model group's name or "unknown"
    deployments = {
        d.strip() for d in page.locator("#health tbody tr td:first-child strong").all_inner_texts()
    }
    for title in ("Cost per deployment", "Requests per deployment"):
        got = names(title)
        assert "cache" in got and set(got) - {"cache", "no deployment answered (errors)"} <= deployments, got
    assert set(names("Cost per vendor")) == {"sim", "cache"}
    check_axe(page, axe_source)
    shoot(page, "providers")


def bus_publisher(server: LiveServer) -> Any:
    """Publish to the server's event bus from this thread, as the orchestrator API does."""
    loop = server._server.servers[0].get_loop()
    return lambda data: server.runtime.events.publish_threadsafe(loop, "task", data)


def test_the_board_follows_a_task_run_and_the_report_renders(
    page: Any, server: LiveServer, axe_source: str, api_paths: list[re.Pattern[str]]
) -> None:
    need(api_paths, "/api/v1/plans")
    r = httpx.post(
        f"{server.url}/api/v1/plans", headers=admin(), json={"format": "md", "text": PLAN, "project": "shop"}
    )
    assert r.status_code == 201, r.text
    slug = r.json()[0]["feature"]["slug"]
    login(page, next_path=f"/ui/projects?feature={slug}")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#col-ready #task-T001")).to_be_visible()
    expect(page.locator("#task-T002")).to_contain_text("depends on T001")
    check_axe(page, axe_source)
    shoot(page, "projects")
    # a worker in the gateway process runs T001; its transitions go to the event bus, as the API's do
    m = Manager(server.store.tasks, publish=bus_publisher(server))
    [task] = m.claim("worker-1", 1, 30.0, ClaimOptions())
    assert task["key"] == "T001"
    expect(page.locator("#col-running #task-T001")).to_be_visible(timeout=3000)  # live, not the 10 s poll
    expect(page.locator("#task-T001")).to_contain_text("worker-1")
    shoot(page, "projects-running")
    assert m.complete(task, "worker-1", ok=True, duration_s=0.5)
    expect(page.locator("#col-succeeded #task-T001")).to_be_visible(timeout=3000)
    expect(page.locator("#col-ready #task-T002")).to_be_visible()  # its dependency is done
    expect(page.locator("#m-progress")).to_contain_text("1/3 tasks")
    # one task done seconds after the first claim: a rate over those seconds, and no date made up from it
    expect(page.locator("#m-velocity .sub")).to_contain_text("1 task finished by workers in the last")
    expect(page.locator("#m-eta")).to_contain_text("not enough history yet")
    page.get_by_role("link", name="Status report").click()
    expect(page).to_have_url(re.compile(r"/ui/report\?feature="))
    report = page.locator("#report")
    expect(report.get_by_role("heading", name="Status report: Checkout flow")).to_be_visible()
    expect(report.locator("table").first).to_be_visible()
    expect(report).to_contain_text("Progress: 1/3 tasks")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export Markdown").click()
    text = Path(dl.value.path()).read_text()
    assert text.startswith("# Status report: Checkout flow")
    check_axe(page, axe_source)
    shoot(page, "report")


def _feedback(server: LiveServer, request_id: str, passed: bool) -> None:
    r = httpx.post(
        f"{server.url}/v1/feedback",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"request_id": request_id, "passed": passed, "comment": "checked by hand"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_auto_routing_shows_on_overview_call_detail_and_quality(
    page: Any, server: LiveServer, axe_source: str
) -> None:
    # the default target (0.8) is above both price-tier priors: the route takes the highest P (strong);
    # a request asking for 0.5 gets the cheapest that reaches it (fast)
    strong = chat(server, model="auto")
    fast = chat(server, model="auto", **{"x-architect-route": "quality=0.5"})
    assert "strong" in strong.headers["x-architect-route"] and "fast" in fast.headers["x-architect-route"]
    fast_id = fast.headers["x-request-id"]
    _feedback(server, fast_id, passed=True)
    _feedback(server, strong.headers["x-request-id"], passed=False)

    login(page)
    card = page.locator("#auto-card")
    expect(card).to_be_visible()
    expect(card).to_contain_text("auto: 2 calls")
    rows = card.locator("tbody tr")
    expect(rows).to_have_count(2)
    # each candidate served one call: 50% each, and its one outcome observed
    for name, observed in (("fast", "1.00"), ("strong", "0.00")):
        row = rows.filter(has_text=name)
        expect(row).to_contain_text("50.0%")
        expect(row).to_contain_text(f"{observed} (1 outcomes)")
    check_axe(page, axe_source)
    shoot(page, "overview-auto")

    page.goto(f"{server.url}/ui/ledger?call={fast_id}")
    detail = page.locator("#call-detail")
    expect(detail).to_contain_text("Auto route and outcome")
    expect(detail).to_contain_text("▶ fast 0.55")  # the chosen candidate marked, its prediction
    expect(detail).to_contain_text("strong 0.85")
    expect(detail).to_contain_text("cheapest with P>=0.50")
    expect(detail).to_contain_text("1.00 (feedback: checked by hand)")
    check_axe(page, axe_source)

    page.goto(f"{server.url}/ui/providers")
    quality = page.locator("#quality tbody tr")
    expect(quality).to_have_count(2)
    # fast: prior 0.55 with the weight of 2 outcomes, one success: (1.1 + 1) / 3 = 0.70
    expect(quality.filter(has_text="fast")).to_contain_text("0.70")
    # strong: prior 0.85, one failure: 1.7 / 3 = 0.57
    expect(quality.filter(has_text="strong")).to_contain_text("0.57")
    check_axe(page, axe_source)
    shoot(page, "providers-quality")
