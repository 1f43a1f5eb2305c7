"""The start-up banner's copy-paste examples work as printed, run by a shell with the admin key in
the environment (as a user who exported ARCHITECT_ADMIN_KEY would paste them)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

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
