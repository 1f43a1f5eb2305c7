"""Two `architect serve` processes on one store: 50 concurrent calls against a nearly exhausted budget
overspend it by at most one reservation per process (in fact by none: reservations are atomic)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from tests.helpers import free_port
from tests.stubs.openai_stub import StubServer

from architect.access.keys import KeyService
from architect.config import PriceConfig
from architect.gateway.costs import worst_case_cost
from architect.gateway.tokens import count_messages
from architect.store import open_store
from architect.store.budgets import period_start

ADMIN = "two-process-admin-key"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 7}
PRICE = PriceConfig(input_per_mtok=1000.0, output_per_mtok=2000.0)


def _serve(tmp: Path, stub_url: str, db: str, port: int) -> subprocess.Popen[bytes]:
    cfg = {
        "providers": [{"name": "stub", "kind": "openai", "base_url": stub_url, "api_key": "sk-up"}],
        "models": [
            {
                "name": "m",
                "deployments": [{"provider": "stub", "model": "x", "price": PRICE.model_dump()}],
            }
        ],
        "ledger": {"retention_days": None},
    }
    path = tmp / f"cfg-{port}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "ARCHITECT_ADMIN_KEY": ADMIN, "ARCHITECT_HOME": str(tmp)}
    with open(tmp / f"serve-{port}.log", "wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "architect",
                "serve",
                "-c",
                str(path),
                "--port",
                str(port),
                "--database-url",
                db,
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"architect serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_processes_cannot_overspend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    db = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    store = open_store(db, migrate="upgrade")
    limit = 1.0
    secret, key = KeyService(store.keys, store.budgets, store.audit).create(
        name="nearly-spent", actor="test", budget_usd=limit, budget_period="total"
    )
    budget = store.budgets.list_budgets()[0]
    item = (budget["id"], period_start("total", time.time()), limit)
    store.budgets.settle([item], 0.0, limit - 0.2, time.time())  # 0.20 USD left
    worst = worst_case_cost(PRICE, count_messages(CHAT["messages"], "m"), 7)

    with StubServer() as stub:
        stub.delay_s = 0.05  # keep calls in flight concurrently
        ports = [free_port(), free_port()]
        procs = [_serve(tmp_path, stub.url, db, p) for p in ports]
        try:
            for p, proc in zip(ports, procs, strict=True):
                _wait_up(f"http://127.0.0.1:{p}", proc)

            def one(i: int) -> httpx.Response:
                url = f"http://127.0.0.1:{ports[i % 2]}/v1/chat/completions"
                return httpx.post(url, json=CHAT, headers={"authorization": f"Bearer {secret}"}, timeout=30)

            with ThreadPoolExecutor(50) as pool:
                results = list(pool.map(one, range(50)))
            codes = [r.status_code for r in results]
            refused = [r for r in results if r.status_code == 429]
            assert codes.count(200) >= 1 and refused, codes
            assert set(codes) <= {200, 429}, codes
            assert all(r.json()["error"]["code"] == "budget_exceeded" for r in refused)
            deadline = time.time() + 10
            while True:  # settlement happens in the background
                b = store.budgets.list_budgets()[0]
                if b["reserved_usd"] < 1e-9 or time.time() > deadline:
                    break
                time.sleep(0.05)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
    b = store.budgets.list_budgets()[0]
    assert b["reserved_usd"] < 1e-9
    assert b["spent_usd"] <= limit + 2 * worst, (b, worst)
    # the budget's spend equals the ledger's cost for this key
    calls = store.ledger.calls_between(0, time.time() + 1, where={"key_id": key["id"]})
    assert len([c for c in calls if c["status"] == "ok"]) == codes.count(200)
    assert abs(sum(c["cost_usd"] for c in calls) - (b["spent_usd"] - (limit - 0.2))) < 1e-9
    store.close()
