"""The real CLI: `keys create --scopes`, workers that block tasks they may not trust (and exit),
`plan approve` on the store and against a server, and the worker's command allow-list."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import orjson
import pytest
import sqlalchemy as sa

from architect.store import migrate, open_store
from architect.store.engine import make_engine
from tests.acceptance.conftest import start_server
from tests.helpers import LiveServer, make_config, stub_config, wait_until

ADMIN = "cli-admin-key-0123456789"


def _cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "architect", *args], capture_output=True, text=True, timeout=90,
                       env={**os.environ, **env})  # fmt: skip
    if check and p.returncode != 0:
        raise AssertionError(f"architect {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "ARCHITECT_DATABASE_URL": f"sqlite:///{tmp_path}/architect.db",
        "ARCHITECT_HOME": str(tmp_path),
        "ARCHITECT_ADMIN_KEY": "",
    }


def test_keys_create_with_scopes(env: dict[str, str]) -> None:
    created = orjson.loads(
        _cli("keys", "create", "--name", "ops", "--scopes", "tasks:execute", "--json", env=env).stdout
    )
    assert created["scopes"] == ["tasks:execute"]
    listed = _cli("keys", "list", env=env).stdout
    assert "tasks:execute" in listed
    bad = _cli("keys", "create", "--name", "x", "--scopes", "tasks:all", env=env, check=False)
    assert (
        bad.returncode != 0
        and "scopes: unknown scope 'tasks:all'" in bad.stderr
        and "Traceback" not in bad.stderr
    )
    store = open_store(env["ARCHITECT_DATABASE_URL"])
    try:
        (row,) = store.audit.list_audit(action="key.create")
        assert row["target"] == created["id"] and row["after"]["scopes"] == ["tasks:execute"]
        with LiveServer(make_config({**stub_config("http://127.0.0.1:9"), "auth": {"admin_key": ADMIN}}),
                        store=store) as srv:  # fmt: skip
            remote = _cli("keys", "create", "--name", "remote", "--scopes", "tasks:execute", "--json",
                          "--server", srv.url, "--key", ADMIN, env=env)  # fmt: skip
            assert orjson.loads(remote.stdout)["scopes"] == ["tasks:execute"]
            listed = orjson.loads(
                _cli("keys", "list", "--json", "--server", srv.url, "--key", ADMIN, env=env).stdout
            )
            assert {k["name"]: k["scopes"] for k in listed["keys"]} == {
                "ops": ["tasks:execute"],
                "remote": ["tasks:execute"],
            }
    finally:
        store.close()


def _old_store(url: str, markers: dict[str, Path]) -> None:
    """A store at migration 0005 (before trust was recorded) holding one ready command task per marker."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, "0005")
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO features (id, project, slug, title, status, created_at, updated_at) "
                "VALUES (1, 'shop', 'old', 'Old', 'active', 0, 0)"))  # fmt: skip
            for i, (key, marker) in enumerate(markers.items()):
                conn.execute(
                    sa.text(
                        "INSERT INTO tasks (feature_id, phase, key, title, deps, pending_deps, priority, "
                        "executor, params, status, attempt, failures, crashes, max_attempts, max_crashes, "
                        "run_after, created_at, ready_at, updated_at) VALUES (1, 1, :key, 'old', '[]', 0, "
                        ":prio, 'command', :params, 'ready', 0, 0, 0, 3, 3, 0, 0, 0, 0)"
                    ),
                    {
                        "key": key,
                        "prio": 5 - i,
                        "params": orjson.dumps({"command": f"touch {marker}"}).decode(),
                    },
                )
    finally:
        engine.dispose()


def test_untrusted_tasks_are_blocked_until_plan_approve(tmp_path: Path, env: dict[str, str]) -> None:
    markers = {"T001": tmp_path / "one", "T002": tmp_path / "two"}
    _old_store(env["ARCHITECT_DATABASE_URL"], markers)
    w = _cli("worker", "--exit-when-idle", "--poll", "0.05", env=env)  # exits: nothing left in the queue
    assert "T001: blocked, not run: untrusted_executable" in w.stdout and "blocked': 2" in w.stdout
    assert not any(m.exists() for m in markers.values())
    shown = _cli("plan", "show", "old", env=env).stdout
    assert shown.count("untrusted_executable") == 2

    approved = _cli("plan", "approve", "old", "T001", env=env).stdout
    assert "T001: approved (ready; command, command: 'touch " in approved and "T002" not in approved
    run = _cli("run", "old", "--no-progress", "--poll", "0.05", env=env, check=False)
    assert run.returncode == 1 and "T002 blocked: untrusted_executable" in run.stdout
    assert markers["T001"].exists() and not markers["T002"].exists()

    store = open_store(env["ARCHITECT_DATABASE_URL"])
    try:
        blocked = store.audit.list_audit(action="task.blocked_untrusted")
        assert sorted(a["target"] for a in blocked) == ["old/T001", "old/T002"]
        assert all(a["actor"].startswith("worker:") for a in blocked)
        (local,) = store.audit.list_audit(action="plan.approve")
        assert local["actor"].startswith("cli:") and local["after"]["tasks"] == ["T001"]
        with LiveServer(make_config({**stub_config("http://127.0.0.1:9"), "auth": {"admin_key": ADMIN}}),
                        store=store) as srv:  # fmt: skip
            plain = orjson.loads(_cli("keys", "create", "--name", "p", "--tags", "project=shop", "--json",
                                      "--server", srv.url, "--key", ADMIN, env=env).stdout)["key"]  # fmt: skip
            refused = _cli(
                "plan", "approve", "old", "--server", srv.url, "--key", plain, env=env, check=False
            )
            assert refused.returncode != 0 and "HTTP 403" in refused.stderr
            ok = _cli("plan", "approve", "old", "--json", "--server", srv.url, "--key", ADMIN, env=env)
            assert [(t["key"], t["status"], t["exec_set_by"]) for t in orjson.loads(ok.stdout)] == [
                ("T002", "ready", "admin-key")]  # fmt: skip
        assert store.audit.list_audit(action="plan.approve")[0]["actor"] == "admin-key"
    finally:
        store.close()
    _cli("worker", "--exit-when-idle", "--poll", "0.05", env=env)
    assert markers["T002"].exists()


def test_the_worker_allow_list(tmp_path: Path, env: dict[str, str]) -> None:
    ok, bad = tmp_path / "ok", tmp_path / "bad"
    (tmp_path / "plan.md").write_text(
        f"# Feature: Allowed\n## Phase 1: A\n- [ ] T001 ok `$ touch {ok}`\n"
        f"- [ ] T002 bad `$ touch {bad}; echo more`\n"
    )
    _cli("plan", "import", str(tmp_path / "plan.md"), env=env)  # the local CLI: trusted tasks
    p = _cli("worker", "--exit-when-idle", "--allow-command", "(", env=env, check=False)
    assert p.returncode != 0 and "--allow-command" in p.stderr and "Traceback" not in p.stderr
    w = _cli("worker", "--exit-when-idle", "--poll", "0.05", "--allow-command", r"touch [\w/.-]+", env=env)
    assert "T002: blocked, not run: command_not_allowed" in w.stdout
    assert ok.exists() and not bad.exists()
    store = open_store(env["ARCHITECT_DATABASE_URL"])
    try:
        t = store.tasks.get_task(store.tasks.get_feature("allowed")["id"], "T002")
        assert (t["status"], t["reason"]) == ("blocked", "command_not_allowed")
        (row,) = store.audit.list_audit(action="task.blocked_command_not_allowed")
        assert row["after"]["command"] == f"touch {bad}; echo more"
    finally:
        store.close()


def test_serve_in_open_mode_says_it_is_single_user_and_refuses_unknown_keys_once_one_exists(
    home: dict[str, str],
) -> None:
    served = start_server(["--example"], home)
    try:
        port = served.url.rsplit(":", 1)[1]
        banner = (Path(home["ARCHITECT_HOME"]) / f"serve-{port}.log").read_text()
        assert "open mode is single-user: anyone who can reach this loopback port acts as admin" in banner
        sdk = openai.OpenAI(base_url=served.url + "/v1", api_key="anything", max_retries=0)
        chat = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
        assert sdk.chat.completions.create(**chat).choices[0].message.content  # the README's example
        _cli("keys", "create", "--name", "first", env=home)  # on the store directly
        wait_until(lambda: httpx.get(served.url + "/api/v1/audit", headers={"authorization": "Bearer anything"}).status_code == 401, timeout=5)  # fmt: skip
        with pytest.raises(openai.AuthenticationError):
            sdk.chat.completions.create(**chat)
    finally:
        served.proc.kill()
        served.proc.wait(10)
