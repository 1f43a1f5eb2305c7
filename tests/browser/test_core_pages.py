"""Log in, the overview, the ledger explorer with a call arriving live, and its detail."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_KEY, chat, check_axe, login, shoot
from tests.helpers import LiveServer


def test_login_rejects_a_bad_key_then_accepts_the_admin_key(
    page: Any, server: LiveServer, axe_source: str
) -> None:
    page.goto("/ui/overview")
    expect(page).to_have_url(f"{server.url}/ui/login?next=%2Fui%2Foverview")
    page.get_by_label("API key").fill("sk-wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("That key was not accepted.")
    check_axe(page, axe_source)
    shoot(page, "login")
    login(page, ADMIN_KEY)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    cookie = next(c for c in page.context.cookies() if c["name"] == "architect_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ADMIN_KEY not in cookie["value"]
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{server.url}/ui/login")
    page.goto("/ui/ledger")
    expect(page).to_have_url(f"{server.url}/ui/login?next=%2Fui%2Fledger")


def test_overview_shows_traffic_cost_and_latest_calls(page: Any, server: LiveServer, axe_source: str) -> None:
    for _ in range(3):
        chat(server)
    chat(server, model="strong")
    login(page)
    recent = page.locator("#recent-h + div table tbody tr")
    expect(recent.first).to_be_visible()
    assert recent.count() >= 4
    tiles = page.locator(".tiles-section")
    expect(page.locator("#t-rpm .sub")).to_contain_text("in range")
    expect(page.locator("#t-saving .sub")).to_contain_text("strong")
    expect(tiles.locator(".tile")).to_have_count(8)
    assert tiles.locator(".error").count() == 0
    # every tile states a figure or "—"; nothing else is printed around them
    assert tiles.evaluate("n => [...n.childNodes].filter(c => c.nodeType === Node.TEXT_NODE).length") == 0
    assert not re.search(r"\b(null|undefined|NaN)\b", tiles.inner_text()), tiles.inner_text()
    # these calls did not stream: no time to first token exists, so none is shown
    expect(page.locator("#t-ttft .value")).to_have_text("—")
    expect(page.locator("#t-latency .sub")).to_contain_text("cache hits excluded")
    expect(page.locator("#live")).to_have_text("live")
    check_axe(page, axe_source)
    shoot(page, "overview")


def test_a_gateway_call_appears_live_in_the_ledger_and_opens_its_detail(
    page: Any, server: LiveServer, axe_source: str
) -> None:
    login(page, next_path="/ui/ledger")
    expect(page.locator("#live")).to_have_text("live")
    r = chat(server, **{"x-architect-tags": "project=alpha"})
    t_response = time.monotonic()
    rid = r.headers["x-request-id"]
    button = page.get_by_role("button", name=rid)
    expect(button).to_be_visible(timeout=5000)  # pushed over SSE; the page is never reloaded
    seen_after = time.monotonic() - t_response
    print(f"call visible {seen_after * 1000:.0f} ms after the response")
    check_axe(page, axe_source)
    shoot(page, "ledger")
    button.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=f"Call {rid}")).to_be_visible()
    expect(dialog.get_by_role("heading", name="Attempts (1)")).to_be_visible()
    expect(dialog).to_contain_text("sim-fast")
    expect(dialog).to_contain_text("project=alpha")
    check_axe(page, axe_source)
    shoot(page, "ledger-detail")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_ledger_filters_and_pages(page: Any, server: LiveServer) -> None:
    chat(server, model="strong")
    login(page, next_path="/ui/ledger")
    page.get_by_label("Model group").fill("strong")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(__import__("re").compile(r"model_group=strong"))
    rows = page.locator("#ledger-results tbody tr")
    expect(rows.first).to_be_visible()
    # waits for the filtered table: the URL changes before the unfiltered rows are replaced
    expect(rows.filter(has_not_text="sim-strong")).to_have_count(0)
    expect(rows.filter(has_text="sim-strong").first).to_be_visible()
    page.get_by_label("Model group").fill("no-such-group")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#ledger-results .empty")).to_contain_text("No calls match")
