"""kill -9 of a worker in the middle of an agent task's attempt, with real processes: `architect
worker --lease 2` (the real CLI) is killed with its whole process group, then `architect run` finishes
the feature behind the same gateway (in-process uvicorn on the same SQLite database) and scripted model.

* Killed while its agent waits for the model (the stub holds attempt 1's first request): the task is
  re-run as attempt 2 in a fresh worktree; attempt 1's row is `crashed`, its key revoked (the gateway
  answers 401 to it) and its worktree and branch removed; the feature branch gets one commit for the task.
* Killed while its agent's own program runs (a `script` agent, in a process group and sandbox of its
  own): the program dies with the worker, and the task is re-run as above.
* Killed after the merge queue moved the feature branch but before the worker recorded the attempt
  (the test holds the database's write lock from inside the merge until the branch moved, so the dead
  worker recorded nothing): the task is not run again, since its work is merged: attempt 1 is recorded
  `succeeded` with the commit the branch holds, its key revoked, its worktree removed, and the model
  never asked again; the branch still has one commit for the task.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.acceptance.agent_world import ARCHITECT, agent_plan, call, cli, gateway_config, git, make_repo
from tests.helpers import LiveServer, make_config, wait_until
from tests.stubs.scripted_chat import ScriptedChat

KEY = "T1"
SLUG = "crash"
# a `script` agent: on attempt 1 it sleeps (a process the test can find by its command line); on a
# later attempt (its prompt has an "## Attempt n" section) it does the work
SLEEP = "sleep 3617.5"
SLEEPER = {
    "name": "sleeper", "runner": "script",
    "command": f"grep -q '^## Attempt' \"$ARCHITECT_PROMPT_FILE\" || exec {SLEEP}; "
    "printf 'def f1(x):\\n    return x + 1\\n' > calc/t1.py",
}  # fmt: skip


class Script:
    """The model for T1: read the file, edit it, finish. With `hold` set, the first request of attempt 1
    is held (not answered) until `release` is set; `held` says it arrived."""

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce
        self.hold = False
        self.held = threading.Event()
        self.release = threading.Event()
        self.requests: dict[int, int] = {}  # attempt -> requests seen
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | Any:
        msgs = body["messages"]
        prompt = next((m["content"] for m in msgs if m["role"] == "user"), "")
        a = re.search(r"^## Attempt (\d+):", prompt, re.M)
        attempt = int(a.group(1)) if a else 1
        with self._lock:
            self.requests[attempt] = self.requests.get(attempt, 0) + 1
            first = self.requests[attempt] == 1
        if self.hold and attempt == 1 and first:
            self.held.set()
            return self._held()
        results = [str(x.get("content")) for x in msgs if x["role"] == "tool"]
        if not results:
            return call("read_file", {"path": "calc/t1.py"})
        if results[-1].startswith("edited "):
            return call("finish", {"summary": "implemented f1"})
        if self.nonce not in "\n".join(results):
            return {"content": "I have not read the file"}
        return call("edit", {"path": "calc/t1.py", "search": "    raise NotImplementedError\n",
                             "replace": "    return x + 1\n"})  # fmt: skip

    async def _held(self) -> dict[str, Any]:
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return {"content": "too late"}


class SeenKeys:
    """An ASGI wrapper in front of the gateway that keeps each bearer secret it sees, so the test can
    show that an attempt's key is refused once revoked."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.app: Any = None

    def wrap(self, app: Any) -> SeenKeys:
        self.app = app
        return self

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            if auth.startswith("Bearer ") and auth[7:] not in self.secrets:
                self.secrets.append(auth[7:])
        await self.app(scope, receive, send)


@dataclass
class World:
    repo: Path
    script: Script
    server: LiveServer
    seen: SeenKeys
    cfg_file: Path
    db_file: Path
    env: dict[str, str]
    tmp: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, env=self.env, cwd=self.tmp)

    def import_plan(self, validator: str | None = None, **task: Any) -> int:
        plan = self.tmp / "plan.yaml"
        plan.write_text(yaml.safe_dump(agent_plan(self.repo, SLUG, (KEY,), {}, validator=validator, **task)))
        done = self.cli("plan", "import", str(plan))
        assert done.returncode == 0, done.stdout + done.stderr
        return int(self.server.store.tasks.get_feature(SLUG)["id"])

    def start_worker(self) -> subprocess.Popen[bytes]:
        """`architect worker` with a 2 s lease, in a process group (a session) of its own."""
        log = (self.tmp / "worker1.log").open("wb")
        args = ["worker", "--feature", SLUG, "--lease", "2", "--poll", "0.05", "--config", str(self.cfg_file)]
        with log:
            return subprocess.Popen(
                [*ARCHITECT, *args], env=self.env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """kill -9 of the worker's whole process group."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def task_show(self) -> dict[str, Any]:
        shown = self.cli("task", "show", SLUG, KEY, "--json")
        assert shown.returncode == 0, shown.stderr
        return dict(orjson.loads(shown.stdout))

    def attempt_keys(self) -> dict[int, dict[str, Any]]:
        """The keys minted for the task's attempts, by attempt number."""
        keys = orjson.loads(self.cli("keys", "list", "--all", "--json").stdout)["keys"]
        return {int(k["tags"]["attempt"]): k for k in keys if (k.get("tags") or {}).get("feature") == SLUG}

    def secret(self, key: dict[str, Any]) -> str:
        return next(s for s in self.seen.secrets if s.startswith(key["prefix"]))

    def gateway_status(self, secret: str) -> int:
        body = {"model": "coder", "messages": [{"role": "user", "content": "hello"}]}
        r = httpx.post(f"{self.server.url}/v1/chat/completions", json=body, timeout=10,
                       headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
        return r.status_code

    def task_commits(self) -> list[str]:
        base = git(self.repo, "rev-parse", "main")
        return git(self.repo, "log", "--format=%s", f"{base}..architect/{SLUG}").splitlines()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    repo = tmp_path / "repo"
    nonces = make_repo(repo, (KEY,))
    script = Script(nonces[KEY])
    db_file = tmp_path / "architect.db"
    db = f"sqlite:///{db_file}"
    seen = SeenKeys()
    with ScriptedChat(script) as stub:
        try:
            with LiveServer(
                make_config(gateway_config(stub.url, db, None)), database_url=db, wrap=seen.wrap
            ) as srv:
                cfg = gateway_config(stub.url, db, srv.url)
                cfg["agents"].append(SLEEPER)
                cfg_file = tmp_path / "architect.yaml"
                cfg_file.write_text(yaml.safe_dump(cfg))
                env = {
                    **os.environ,
                    "ARCHITECT_DATABASE_URL": db,
                    "PYTHONDONTWRITEBYTECODE": "1",
                    "COLUMNS": "200",
                }
                yield World(repo, script, srv, seen, cfg_file, db_file, env, tmp_path)
        finally:
            script.release.set()  # a held request answers, so the stub can stop


def test_a_worker_killed_while_its_agent_waits_for_the_model(world: World) -> None:
    world.script.hold = True
    fid = world.import_plan()
    worker = world.start_worker()
    try:
        assert world.script.held.wait(60), (world.tmp / "worker1.log").read_text()
    finally:
        world.kill(worker)
    # what the dead worker left: the task running, attempt 1's row running, its worktree, a live key
    repo = world.server.store.tasks
    (left,) = repo.attempts(feature_id=fid)
    assert (left["attempt"], left["outcome"]) == (1, "running")
    assert Path(left["worktree"]).is_dir()
    assert repo.get_task(fid, KEY)["status"] == "running"
    assert not world.attempt_keys()[1]["revoked"]

    ran = world.cli("run", SLUG, "--lease", "2", "--no-progress", "--config", str(world.cfg_file))
    assert ran.returncode == 0, ran.stdout + ran.stderr

    shown = world.task_show()
    assert shown["task"]["status"] == "succeeded"
    first, second = shown["attempts"]
    assert (first["attempt"], first["outcome"]) == (1, "crashed")
    assert "worker was lost" in first["reason"]
    assert (second["attempt"], second["outcome"]) == (2, "succeeded")
    # a fresh worktree for attempt 2; attempt 1's worktree and branch are gone
    assert first["worktree"] != second["worktree"]
    assert not Path(first["worktree"]).exists()
    assert f"{KEY}-a1" not in git(world.repo, "worktree", "list")
    assert git(world.repo, "branch", "--list", f"architect-task/{SLUG}/{KEY}-a1") == ""
    # attempt 1's key is revoked: the gateway refuses it; so is attempt 2's, now that it ended
    keys = world.attempt_keys()
    assert sorted(keys) == [1, 2] and all(k["revoked"] for k in keys.values())
    assert first["key_id"] == keys[1]["id"]
    assert world.gateway_status(world.secret(keys[1])) == 401
    assert world.gateway_status(world.secret(keys[2])) == 401
    # nothing merged twice: one commit for the task, and its tests pass on the branch
    assert [s.split(":")[0] for s in world.task_commits()] == [KEY]
    assert world.script.requests[2] == 3  # read, edit, finish: attempt 2 did the work


def _sleepers() -> list[int]:
    """The pids of the processes running the sleeper agent's `sleep`."""
    out = []
    for p in Path("/proc").iterdir():
        try:
            if (
                p.name.isdigit()
                and (p / "cmdline").read_bytes().replace(b"\0", b" ").strip() == SLEEP.encode()
            ):
                out.append(int(p.name))
        except OSError:
            continue
    return out


def test_a_worker_killed_while_its_agents_program_runs(world: World) -> None:
    fid = world.import_plan(agent="sleeper")
    assert _sleepers() == []
    worker = world.start_worker()
    try:
        wait_until(_sleepers, timeout=60)
    finally:
        world.kill(worker)
    # the agent's program (its own session, sandbox and process group) does not outlive the worker
    wait_until(lambda: not _sleepers(), timeout=10)
    (left,) = world.server.store.tasks.attempts(feature_id=fid)
    assert (left["attempt"], left["outcome"]) == (1, "running")

    ran = world.cli("run", SLUG, "--lease", "2", "--no-progress", "--config", str(world.cfg_file))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    shown = world.task_show()
    first, second = shown["attempts"]
    assert [(a["attempt"], a["outcome"], a["agent"]) for a in (first, second)] == [
        (1, "crashed", "sleeper"),
        (2, "succeeded", "sleeper"),
    ]
    assert not Path(first["worktree"]).exists()
    keys = world.attempt_keys()
    assert sorted(keys) == [1, 2] and all(k["revoked"] for k in keys.values())
    assert [s.split(":")[0] for s in world.task_commits()] == [KEY]


def test_a_worker_killed_after_the_merge_moved_the_branch(world: World) -> None:
    # the re-validation in the merge worktree takes a second: time to take the database's write lock
    slow = (f'case "$PWD" in */architect/merge/*) sleep 1;; esac; '
            f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_{{k}}.py")  # fmt: skip
    fid = world.import_plan(validator=slow)
    base = git(world.repo, "rev-parse", "main")
    repo = world.server.store.tasks
    worker = world.start_worker()
    db = sqlite3.connect(world.db_file, timeout=30, isolation_level=None)
    try:
        wait_until(lambda: repo.merge_lock(fid), timeout=60)
        # from here the worker writes nothing to the store until it releases the merge lock (after
        # the branch moved): holding the write lock freezes its records where they are
        db.execute("BEGIN IMMEDIATE")
        assert db.execute("SELECT count(*) FROM merge_locks").fetchone() == (1,)
        wait_until(lambda: git(world.repo, "rev-parse", f"architect/{SLUG}") != base, timeout=30)
    finally:
        world.kill(worker)
        db.execute("ROLLBACK") if db.in_transaction else None
        db.close()
    merged = git(world.repo, "rev-parse", f"architect/{SLUG}")
    (left,) = repo.attempts(feature_id=fid)
    assert (left["attempt"], left["outcome"]) == (1, "running")
    assert repo.get_task(fid, KEY)["status"] == "running"
    requests_before = dict(world.script.requests)

    ran = world.cli("run", SLUG, "--lease", "2", "--no-progress", "--config", str(world.cfg_file))
    assert ran.returncode == 0, ran.stdout + ran.stderr

    shown = world.task_show()
    assert shown["task"]["status"] == "succeeded"
    (only,) = shown["attempts"]  # not run again: its work was on the branch
    assert (only["attempt"], only["outcome"], only["merged_sha"]) == (1, "succeeded", merged)
    assert "worker was lost" in only["reason"]
    assert not Path(only["worktree"]).exists()
    keys = world.attempt_keys()
    assert sorted(keys) == [1] and keys[1]["revoked"]
    assert world.gateway_status(world.secret(keys[1])) == 401
    assert git(world.repo, "rev-parse", f"architect/{SLUG}") == merged
    assert [s.split(":")[0] for s in world.task_commits()] == [KEY]
    assert world.script.requests == requests_before  # the model was not asked again
