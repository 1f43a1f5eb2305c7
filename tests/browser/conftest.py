"""Browser tests: the real app under uvicorn, driven by Playwright with Debian's chromium.

Needs `/usr/bin/chromium` (apt-get install chromium), the `playwright` Python package (no
`playwright install`: the system chromium is used) and axe-core from npm, installed on first use
into tests/browser/node_modules from the package.json here. Every page fails its test on a console
error, except a failed API request to an endpoint the server does not implement (recorded)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import LiveServer, make_config

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ADMIN_KEY = "sk-admin-browser-test"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]  # fmt: skip
DESKTOP = {"width": 1366, "height": 900}
NARROW = {"width": 390, "height": 844}

pw_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not Path(CHROMIUM).exists():
    if os.environ.get("CI", "").lower() == "true":  # CI must run them (.ci/run installs chromium)
        raise RuntimeError("CI=true but Debian chromium is not installed (apt-get install -y chromium)")
    pytest.skip("Debian chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


def sim(name: str, ttft_ms: float, price_in: float, price_out: float) -> dict[str, Any]:
    return {
        "name": name,
        "deployments": [
            {
                "provider": "sim",
                "model": f"sim-{name}",
                "price": {"input_per_mtok": price_in, "output_per_mtok": price_out},
                "simulate": {"ttft_ms": ttft_ms, "tokens_per_s": 5000, "completion_tokens": 12, "seed": 1},
            }
        ],
    }


def dashboard_config() -> dict[str, Any]:
    return {
        "auth": {"admin_key": ADMIN_KEY},
        "providers": [{"name": "sim", "kind": "simulated"}],
        "baseline": "strong",
        "models": [
            sim("fast", 5, 0.1, 0.4),
            sim("strong", 10, 3.0, 15.0),
            {"name": "auto", "strategy": "auto", "candidates": ["fast", "strong"]},
        ],
        "ledger": {"flush_interval_ms": 20},
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = tmp_path_factory.mktemp("web") / "architect.db"
    with LiveServer(make_config(dashboard_config()), database_url=f"sqlite:///{db}") as s:
        yield s


@pytest.fixture(scope="module")
def api_paths(server: LiveServer) -> list[re.Pattern[str]]:
    """The /api/v1 paths this server implements (from its OpenAPI document)."""
    spec = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    return [re.compile("^/api/v1" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in spec["paths"]]


def implemented(paths: list[re.Pattern[str]], path: str) -> bool:
    return any(p.match(path) for p in paths)


@pytest.fixture(scope="session")
def axe_source() -> str:
    target = HERE / "node_modules" / "axe-core" / "axe.min.js"
    if not target.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install axe-core for the accessibility checks"
        cmd = [npm, "ci" if (HERE / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
        subprocess.run(cmd, cwd=HERE, check=True, capture_output=True, timeout=300)
    return target.read_text()


@pytest.fixture(scope="module")  # per module: Playwright's loop must be gone before async tests run
def browser() -> Iterator[Any]:
    with pw_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Console:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.missing: set[str] = set()


@pytest.fixture
def page(browser: Any, server: LiveServer, api_paths: list[re.Pattern[str]]) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, base_url=server.url)
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    console = Console()

    def on_console(msg: Any) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        path = httpx.URL(url).path if url else ""
        failed = msg.text.startswith("Failed to load resource") and path.startswith("/api/v1/")
        if failed and not implemented(api_paths, path):
            console.missing.add(path)  # not built yet on this server: the page shows an error state
            return
        console.errors.append(f"{msg.text} ({url})")

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: console.errors.append(f"page error: {exc}"))
    yield pg
    context.close()
    if console.missing:
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        with open(ROOT / "test-artifacts" / "missing-endpoints.txt", "a") as f:
            f.writelines(f"{p}\n" for p in sorted(console.missing))
    assert not console.errors, "console errors:\n" + "\n".join(console.errors)


def login(page: Any, key: str = ADMIN_KEY, next_path: str = "/ui/overview") -> None:
    page.goto(f"/ui/login?next={next_path}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_path}*")


def shoot(page: Any, name: str) -> None:
    """Full-page screenshots at desktop and narrow widths."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(150)
    page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(150)
    page.screenshot(path=str(SHOTS / f"{name}-narrow.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def check_axe(page: Any, axe_source: str) -> None:
    """No WCAG 2 A/AA violation (axe-core), contrast included."""
    page.evaluate(axe_source + "\n;undefined")
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
    )
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} -> " + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in result["violations"]
    ]
    assert not bad, "accessibility violations:\n" + "\n".join(bad)


def chat(server: LiveServer, key: str = ADMIN_KEY, model: str = "fast", **headers: str) -> httpx.Response:
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}", **headers},
        json={"model": model, "messages": [{"role": "user", "content": f"hello {time.time()}"}]},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)
