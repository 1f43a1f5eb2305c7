"""The real CLI: keys create/list/rotate/revoke on the local store and against a server, spend, alerts."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import orjson

from architect.store import open_store
from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "architect", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_keys_local_and_remote(sqlite_url: str) -> None:
    db = ["--database-url", sqlite_url]
    r = _cli(
        "keys",
        "create",
        "--name",
        "ci-bot",
        "--budget-usd",
        "50/month",
        "--rpm",
        "120",
        "--tpm",
        "200000",
        "--models",
        "fast,strong",
        "--tags",
        "project=shop",
        "--json",
        *db,
    )
    assert r.returncode == 0, r.stderr
    created = orjson.loads(r.stdout)
    assert created["key"].startswith("sk-arch-") and created["models"] == ["fast", "strong"]
    assert created["budgets"][0]["limit_usd"] == 50 and created["budgets"][0]["period"] == "month"
    listed = _cli("keys", "list", *db)
    assert listed.returncode == 0 and "ci-bot" in listed.stdout and created["key"] not in listed.stdout
    revoked = _cli("keys", "revoke", created["id"], "--json", *db)
    assert revoked.returncode == 0 and orjson.loads(revoked.stdout)["revoked"] is True

    admin = "cli-admin-key"
    with StubServer() as stub:
        cfg = stub_config(stub.url)
        cfg["auth"] = {"admin_key": admin}
        store = open_store(sqlite_url)
        with LiveServer(make_config(cfg), store=store) as srv:
            r = _cli("keys", "create", "--name", "remote", "--json", "--server", srv.url, "--key", admin)
            assert r.returncode == 0, r.stderr
            remote = orjson.loads(r.stdout)
            rot = _cli("keys", "rotate", remote["id"], "--json", "--server", srv.url, "--key", admin)
            new = orjson.loads(rot.stdout)["key"]
            chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            ok = httpx.post(
                srv.url + "/v1/chat/completions", json=chat, headers={"authorization": f"Bearer {new}"}
            )
            assert ok.status_code == 200
            forbidden = _cli("keys", "revoke", remote["id"], "--server", srv.url, "--key", new)
            assert forbidden.returncode != 0 and "403" in forbidden.stderr
            spend = _cli(
                "spend", "--by", "key_id", "--since", "1h", "--json", "--server", srv.url, "--key", admin
            )
            assert spend.returncode == 0, spend.stderr
            assert orjson.loads(spend.stdout)["rows"][0]["requests"] >= 1
        audit = store.audit.list_audit()
        actors = {(a["action"], a["actor"]) for a in audit}
        assert ("key.create", "admin-key") in actors and ("key.rotate", "admin-key") in actors
        assert any(a["actor"].startswith("cli:") for a in audit)
    assert _cli("alerts", *db).returncode == 0


def test_keys_create_with_project_grants(sqlite_url: str) -> None:
    db = ["--database-url", sqlite_url]
    r = _cli("keys", "create", "--name", "two", "--projects", "web, shop", "--json", *db)
    assert r.returncode == 0, r.stderr
    two = orjson.loads(r.stdout)
    assert two["projects"] == ["shop", "web"]
    r = _cli("keys", "create", "--name", "every", "--projects", "*", "--json", *db)
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout)["projects"] == "*"
    listed = _cli("keys", "list", "--json", *db)
    assert {k["name"]: k["projects"] for k in orjson.loads(listed.stdout)["keys"]} == {
        "two": ["shop", "web"],
        "every": "*",
    }
    table = _cli("keys", "list", *db, env={"COLUMNS": "250"})
    assert "projects" in table.stdout and "shop,web" in table.stdout
    past = _cli("keys", "create", "--name", "old", "--expires-days", "-1", *db)
    assert past.returncode != 0 and "expires_at" in past.stderr
    mixed = _cli("keys", "create", "--name", "bad", "--projects", "*,shop", *db)
    assert mixed.returncode != 0 and "projects" in mixed.stderr

    admin = "cli-admin-key"
    with StubServer() as stub:
        cfg = stub_config(stub.url)
        cfg["auth"] = {"admin_key": admin}
        store = open_store(sqlite_url)
        with LiveServer(make_config(cfg), store=store) as srv:
            r = _cli(
                "keys", "create", "--name", "remote", "--projects", "beta", "--json",
                "--server", srv.url, "--key", admin,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
            remote = orjson.loads(r.stdout)
            assert remote["projects"] == ["beta"]
            chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            h = {"authorization": f"Bearer {remote['key']}"}
            ok = httpx.post(
                srv.url + "/v1/chat/completions", json=chat, headers={**h, "x-architect-tags": "project=beta"}
            )
            assert ok.status_code == 200, ok.text
            no = httpx.post(
                srv.url + "/v1/chat/completions",
                json=chat,
                headers={**h, "x-architect-tags": "project=gamma"},
            )
            assert no.status_code == 403 and no.json()["error"]["code"] == "project_not_allowed"
            past = _cli(
                "keys", "create", "--name", "old", "--expires-days", "-1", "--server", srv.url, "--key", admin
            )
            assert past.returncode != 0 and "400" in past.stderr and "expires_at" in past.stderr
        created = {
            a["after"]["name"]: a["after"]["projects"] for a in store.audit.list_audit(action="key.create")
        }
        assert created == {"two": ["shop", "web"], "every": "*", "remote": ["beta"]}


def test_keys_route_settings_local_and_remote(sqlite_url: str) -> None:
    db = ["--database-url", sqlite_url]
    r = _cli(
        "keys", "create", "--name", "q", "--quality-target", "0.9", "--privacy", "local-only", "--json", *db
    )
    assert r.returncode == 0, r.stderr
    made = orjson.loads(r.stdout)
    assert made["route"] == {"quality_target": 0.9, "privacy": "local-only"}
    bad = _cli("keys", "create", "--name", "b", "--quality-target", "1.5", *db)
    assert bad.returncode != 0 and "route.quality_target" in bad.stderr
    r = _cli("keys", "route", made["id"], "--cost-weight", "0.3", "--json", *db)
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout)["route"] == {"cost_weight": 0.3}
    r = _cli("keys", "route", made["id"], "--clear", "--json", *db)
    assert r.returncode == 0 and orjson.loads(r.stdout)["route"] == {}
    admin = "cli-admin-key"
    with StubServer() as stub:
        cfg = stub_config(stub.url)
        cfg["auth"] = {"admin_key": admin}
        with LiveServer(make_config(cfg), store=open_store(sqlite_url)) as srv:
            remote = ["--server", srv.url, "--key", admin, "--json"]
            r = _cli("keys", "route", made["id"], "--quality-target", "0.6", *remote)
            assert r.returncode == 0, r.stderr
            assert orjson.loads(r.stdout)["route"] == {"quality_target": 0.6}


def test_keys_list_shows_a_budget_under_a_cent_by_its_digits(sqlite_url: str) -> None:
    db = ["--database-url", sqlite_url]
    r = _cli("keys", "create", "--name", "ci-bot", "--budget-usd", "0.002/day", *db)
    assert r.returncode == 0, r.stderr
    table = _cli("keys", "list", *db, env={"COLUMNS": "250"})
    assert table.returncode == 0, table.stderr
    assert "$0.00/$0.002 per day" in table.stdout
