"""Test helpers: build a runtime/app against given config dicts, run a real uvicorn server in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from architect.app import create_app
from architect.config import Config, parse_config
from architect.gateway.app import GatewayApp
from architect.records import CallRecord
from architect.runtime import Runtime
from architect.store import Store, open_store
from architect.store.ledger import LedgerRepo

__all__ = ["LiveServer", "free_port", "make_config", "stub_config", "wait_until", "wait_until_async"]

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01) -> T:
    """Poll `predicate` until it returns a truthy value (returned) or `timeout` seconds pass
    (AssertionError). Replaces fixed sleeps: a test waits as long as the condition needs, no longer."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


async def wait_until_async(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01) -> T:
    """`wait_until` for async tests: polls without blocking the event loop, so the tasks the
    condition waits for keep running."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stub_config(stub_url: str, **group: Any) -> dict[str, Any]:
    """One provider `stub` (kind openai) and one group `m` with one deployment, plus overrides."""
    deployments = group.pop("deployments", None) or [
        {"provider": "stub", "model": "stub-model", "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    ]
    return {
        "providers": [
            {"name": "stub", "kind": "openai", "base_url": stub_url, "api_key": "sk-upstream-secret"}
        ],
        "models": [{"name": "m", "deployments": deployments, **group}],
    }


def make_config(data: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    return parse_config(data, env=env or {})


class LiveServer:
    """A real uvicorn server for an Architect app on 127.0.0.1 in a background thread."""

    def __init__(
        self,
        config: Config,
        store: Store | None = None,
        *,
        database_url: str | None = None,
        wrap: Callable[[Any], Any] | None = None,
    ) -> None:
        """`wrap(app)` gives the ASGI app to serve in front of the gateway (a test's recorder)."""
        self.store = store or (open_store(database_url) if database_url else Store.memory())
        self.runtime = Runtime(config, self.store)
        self.app: GatewayApp = create_app(self.runtime)
        self.port = free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                wrap(self.app) if wrap is not None else self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="error",
                lifespan="on",
                loop="asyncio",
                http="h11",
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        with contextlib.suppress(Exception):
            self.store.close()

    def calls(self) -> list[dict[str, Any]]:
        self.runtime.ledger.flush()
        return self.store.ledger.calls_between(0, time.time() + 10)


@contextlib.contextmanager
def live(config: Config, **kw: Any) -> Iterator[LiveServer]:
    with LiveServer(config, **kw) as server:
        yield server


def record_rows(ledger: LedgerRepo, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write calls given as `calls` rows (dicts) to a ledger repository."""
    ledger.record([CallRecord.from_row(r) for r in rows])


def git(repo: Path, *args: str) -> str:
    """`git -C repo args...` as the tests' own identity (the caller's GIT_* variables left out, so a
    run from inside a git hook cannot redirect it); its stdout, stripped. Raises on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env, timeout=60
    ).stdout.strip()


def git_repo(path: Path) -> Path:
    """A new repository at `path` on branch main with one empty commit."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "commit", "-q", "--allow-empty", "-m", "first")
    return path
