from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port


def architect(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real `architect` CLI in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "architect", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"architect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


class Served:
    def __init__(self, proc: subprocess.Popen[str], url: str, env: dict[str, str]) -> None:
        self.proc, self.url, self.env = proc, url, env


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An isolated ARCHITECT_HOME (its own SQLite store)."""
    return {"ARCHITECT_HOME": str(tmp_path / "home"), "ARCHITECT_ADMIN_KEY": ""}


def start_server(args: list[str], env: dict[str, str]) -> Served:
    port = free_port()
    log = Path(env.get("ARCHITECT_HOME", "/tmp")) / f"serve-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "architect", "serve", "--port", str(port), *args],
            stdout=subprocess.DEVNULL,
            stderr=out,
            text=True,
            env={**os.environ, **env},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Served(proc, url, env)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise AssertionError(f"serve did not become healthy: {log.read_text()}")


@pytest.fixture
def served(home: dict[str, str]) -> Iterator[Served]:
    s = start_server(["--example"], home)
    yield s
    if s.proc.poll() is None:
        s.proc.kill()
    s.proc.wait(10)
