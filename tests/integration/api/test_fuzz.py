"""Schemathesis against /api/v1 of a live server (seeded: two tenants with keys, features, tasks, items,
budgets and ledger calls), with the admin key and with a virtual key, on SQLite and PostgreSQL.

The run is Schemathesis' own CLI reading the server's spec (`/api/v1/openapi.json`), so every operation
in the spec is fuzzed, including ones added later, with no list here to keep current. Checks: no 5xx,
responses conform to the spec (status codes documented, content types, schemas, headers), requests the
schema calls valid are accepted and invalid ones refused, 405/OPTIONS carry the path's Allow header,
operations refuse a request without credentials. Generation is seeded and bounded (`MAX_EXAMPLES` per
operation) so a run is reproducible and short (under a minute per database on an idle two-core machine).

Half of the generated path and query identifiers are replaced by ids of the seeded data (a dictionary),
so the fuzzer reaches existing rows and not only 404s. The admin run probes every operation with every
coverage scenario (boundaries, wrong types, patterns, unexpected methods) and random cases; the virtual
key's run skips the operations marked `x-admin-only` (they refuse it whatever it sends; the isolation
test checks that) and probes the rest with valid boundary values and random cases. Both run at once
against one server (the admin's deletions and revocations aim at rows that do not exist or are not the
virtual key's). The event streams never end and are excluded here; `test_event_streams.py` tests them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.api.seed import ADMIN_KEY, Seeded, seeded_server

MAX_EXAMPLES = 10
SEED = 20250115

# Operations whose valid-looking requests may still be refused with a 400, and why (each a rule no
# JSON schema can state). Everything else must accept what its schema calls valid.
ACCEPTS_400 = {
    "POST /plans": "`text` is a Markdown or YAML plan: its grammar (a '# Feature' heading, tasks inside "
    "phases, known dependencies, no cycle) is checked by the plan parser",
    "GET /metrics/timeseries": "at most 20,000 points: the window's length divided by `step`, which the "
    "schema cannot bound",
    "POST /keys": "`expires_at` must be in the future: a bound that moves with the clock",
}
_POSITIVE = ["2xx", "3xx", 401, 403, 404, 409, 429, "5xx"]


def _toml(value: object) -> str:
    """A TOML value (strings, numbers, lists of them, inline tables) from Python (JSON strings are
    valid TOML basic strings)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _config(s: Seeded, token: str, *, admin: bool) -> str:
    a, b = s.a, s.b
    dictionaries = {
        "features": [a.feature_slug, b.feature_slug, str(a.feature_id)],
        "tasks": ["T001", "T002"],
        "items": [a.item_id, b.item_id],
        "budgets": [*a.budget_ids, *b.budget_ids],
        # the admin must not revoke or rotate the key the other run uses
        "keys": [b.key_id] if admin else [a.key_id, b.key_id],
        "requests": [*a.request_ids, *b.request_ids],
        "projects": [a.project, b.project],
        "missing_features": ["no-such-feature"],
        "missing_ids": [2_000_000_000],
    }
    bindings = {
        "path.ref": "features",
        "query.feature": "features",
        "path.key": "tasks",
        "path.item_id": "items",
        "path.budget_id": "budgets",
        "path.key_id": "keys",
        "query.key_id": "keys",
        "path.request_id": "requests",
        "query.project": "projects",
    }
    lines = [
        f"seed = {SEED}",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        'database = "none"',
        "[phases.coverage]",
        # one probe per unexpected method class is enough for the 405/Allow checks
        'unexpected-methods = ["OPTIONS", "PUT", "TRACE"]',
        "[phases.stateful]",
        "enabled = false",
        "[auth.openapi.bearer]",
        f"bearer = {_toml(token)}",
        "[checks]",
        # resource-lifecycle and cross-user checks: test_isolation.py covers the latter
        "use_after_free = { enabled = false }",
        "ensure_resource_availability = { enabled = false }",
        "object_level_authorization = { enabled = false }",
    ]
    if not admin:
        lines += ["[phases.coverage.generation]", 'mode = "positive"']
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}"]
    lines.append("[parameters]")
    lines += [f"{_toml(k)} = {_toml({'dictionary': v, 'probability': 0.5})}" for k, v in bindings.items()]
    for name in ACCEPTS_400:
        lines += [
            "[[operations]]",
            f"include-name = {_toml(name)}",
            f"checks.positive_data_acceptance.expected-statuses = {_toml([*_POSITIVE, 400])}",
        ]
    # deletions aim at rows that do not exist, so the seeded data lives through the whole run
    missing = {"dictionary": "missing_features", "probability": 0.5}
    missing_id = {"dictionary": "missing_ids", "probability": 0.5}
    lines += [
        "[[operations]]",
        'include-method = "DELETE"',
        "parameters = "
        + _toml({"path.ref": missing, "path.item_id": missing_id, "path.budget_id": missing_id}),
    ]
    return "\n".join(lines) + "\n"


def start_schemathesis(s: Seeded, token: str, workdir: Path, *, admin: bool) -> subprocess.Popen[str]:
    """Start the CLI against the server's spec (its output goes to `workdir/output.txt`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "schemathesis.toml"
    config.write_text(_config(s, token, admin=admin))
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{s.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--exclude-path-regex",
        "/events$",
        "--workers",
        "1",
        "--warnings",
        "off",
    ]
    if not admin:
        cmd += ["--exclude-by", "/x-admin-only == true"]
    with (workdir / "output.txt").open("w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=workdir)


def run_both(s: Seeded, workdir: Path) -> dict[str, tuple[int, str]]:
    """The admin's and the virtual key's runs, at once; {who: (exit code, output)}."""
    procs = {
        "admin": start_schemathesis(s, ADMIN_KEY, workdir / "admin", admin=True),
        "virtual key": start_schemathesis(s, s.a.key, workdir / "key", admin=False),
    }
    results = {}
    for who, proc in procs.items():
        try:
            code = proc.wait(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        results[who] = (code, (workdir / ("admin" if who == "admin" else "key") / "output.txt").read_text())
    return results


@pytest.mark.timeout(300)
def test_api_v1_conforms_to_its_spec_under_fuzzing(db_url: str, tmp_path: Path) -> None:
    with seeded_server(db_url) as s:
        t0 = time.monotonic()
        results = run_both(s, tmp_path)
        seconds = time.monotonic() - t0
    for who, (code, out) in results.items():
        assert code == 0, f"schemathesis ({who}) found problems:\n{out[-20000:]}"
        assert "No issues found" in out, out[-3000:]
    print(f"fuzzing took {seconds:.1f} s")  # shown with -s; the bar is under a minute per database
