"""The start-up banner's copy-paste examples work as printed, run by a shell with the admin key in
the environment (as a user who exported ARCHITECT_ADMIN_KEY would paste them)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import start_server

ADMIN_KEY = "sk-admin-banner-test"


def _example(log: str, marker: str) -> str:
    lines = [line.strip() for line in log.splitlines() if marker in line]
    assert len(lines) == 1, f"expected one line with {marker!r} in the banner:\n{log}"
    return lines[0]


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, env={**os.environ, **env}
    )


def test_the_banner_examples_send_the_admin_key_from_the_environment(home: dict[str, str]) -> None:
    env = {**home, "ARCHITECT_ADMIN_KEY": ADMIN_KEY}
    served = start_server(["--example"], env)
    try:
        log = next(Path(env["ARCHITECT_HOME"]).glob("serve-*.log")).read_text()
        assert ADMIN_KEY not in log  # the banner names the variable, never its value
        curl = _example(log, "curl -s ")
        res = _run(curl + " -w '\\n%{http_code}'", env)
        body, _, status = res.stdout.rpartition("\n")
        assert status == "200", f"{curl}\n-> {status} {body} {res.stderr}"
        assert json.loads(body)["choices"][0]["message"]["content"]
        sdk = _example(log, "from openai import OpenAI")
        res = _run(sdk, env)
        assert res.returncode == 0 and res.stdout.strip(), f"{sdk}\n-> {res.stdout} {res.stderr}"
        # another value in the variable is refused: the key really comes from the environment
        res = _run(curl + " -o /dev/null -w '%{http_code}'", {**env, "ARCHITECT_ADMIN_KEY": "wrong"})
        assert res.stdout == "401"
    finally:
        served.proc.kill()
        served.proc.wait(10)


def test_the_server_runs_on_the_allocator_its_banner_names(home: dict[str, str], tmp_path: Path) -> None:
    """`server.allocator` (default auto): jemalloc where installed, under the very process the caller
    started (its pid); `system` keeps the C library's malloc. The banner says which."""
    from architect.cli.memory import jemalloc_library
    from architect.cli.serve import EXAMPLE
    from tests.conftest import IN_CI

    if jemalloc_library() is None and not IN_CI:
        pytest.skip("libjemalloc2 is not installed (.ci/run installs it; under CI=true it must be there)")
    for allocator, expected in (
        ("auto", "memory: jemalloc (/"),
        ("system", "memory: the C library's malloc"),
    ):
        config = tmp_path / f"{allocator}.yaml"
        config.write_text(EXAMPLE.read_text() + f"\nserver:\n  allocator: {allocator}\n")
        served = start_server(["--config", str(config)], home)
        try:
            log = Path(home["ARCHITECT_HOME"], f"serve-{served.url.rsplit(':', 1)[1]}.log").read_text()
            assert expected in log, log
            maps = Path(f"/proc/{served.proc.pid}/maps").read_text()  # the pid the caller holds
            assert ("libjemalloc" in maps) is (allocator == "auto")
            assert httpx.get(served.url + "/healthz", timeout=5).status_code == 200
        finally:
            served.proc.terminate()
            served.proc.wait(20)
