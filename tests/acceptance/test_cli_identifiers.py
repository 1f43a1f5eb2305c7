"""`architect keys create` refuses a key name (or tag) with control characters, naming the field, and
creates nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from architect.store import open_store


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "architect", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


def test_keys_create_refuses_control_characters_in_the_name_and_tags(sqlite_url: str) -> None:
    db = ["--database-url", sqlite_url]
    r = _cli("keys", "create", "--name", "ci\x1b[2Jbot", *db)
    assert r.returncode != 0 and "name: must not contain control characters" in r.stderr + r.stdout
    r = _cli("keys", "create", "--name", "ci-bot", "--tags", "project=sh\x07op", *db)
    assert r.returncode != 0 and "tags.project: must not contain control characters" in r.stderr + r.stdout
    store = open_store(sqlite_url)
    try:
        assert store.keys.list_keys() == []
    finally:
        store.close()
