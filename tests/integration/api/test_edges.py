"""The inputs that gave HTTP 500s (or echoed a driver's error) under /api/v1, on SQLite and PostgreSQL:
each is now a 4xx in the API's error format naming the parameter, and no response carries a driver's
message. Also: strict booleans and integers in bodies, the Allow header of 405/OPTIONS against the spec,
and formula injection in the CSV export."""

from __future__ import annotations

import csv
import io
import re
import time
from typing import Any

import httpx
import pytest

from tests.helpers import record_rows
from tests.integration.api.seed import ADMIN_KEY, Seeded, seeded_server

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
_DRIVER = re.compile(r"psycopg|sqlite|sqlalchemy|OverflowError|DataError|Traceback|out of range", re.I)


@pytest.fixture
def seeded(db_url: str) -> Any:
    with seeded_server(db_url) as s:
        yield s


def _error(r: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert not _DRIVER.search(r.text), r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    if param is not None:
        assert err["param"] == param, err
    return err


# (method, path, JSON body (a str is sent as is), expected status, the param the error names); from the
# probes of issue 15 and what the fuzzing found
VIRTUAL_KEY_CASES = [
    ("GET", "/calls?offset=9223372036854775808", None, 400, "offset"),
    ("GET", "/features/%C2%B3", None, 400, "ref"),
    ("GET", "/features/2147483648", None, 404, None),
    ("GET", "/features/99999999999999999999999", None, 404, None),
    ("GET", "/metrics/summary?since=nan", None, 400, "since"),
    ("GET", "/metrics/summary?since=-1e300", None, 400, "since"),
    ("GET", "/metrics/summary?until=inf", None, 400, "until"),
    ("GET", "/metrics/timeseries?since=nan", None, 400, "since"),
    ("GET", "/metrics/summary?model_group=a%00b", None, 400, "model_group"),
    ("GET", "/calls?feature=a%00b", None, 400, "feature"),
    ("GET", "/export/calls.csv?project=%E2%80%AEevil", None, 400, "project"),
    ("GET", "/tasks/events?once=true&after=9223372036854775808", None, 400, "after"),
]
ADMIN_CASES = [
    ("DELETE", "/budgets/9223372036854775808", None, 400, "budget_id"),
    ("POST", "/keys", {"name": "x", "rpm": 9223372036854775808}, 400, "rpm"),
    ("POST", "/keys", {"name": "x", "tpm": 2147483648}, 400, "tpm"),
    ("POST", "/keys", {"name": "x", "tpm": True}, 400, "tpm"),
    ("POST", "/keys", {"name": "x", "rpm": "60"}, 400, "rpm"),
    ("POST", "/keys", {"name": " \t "}, 400, "name"),
    ("POST", "/keys", {"name": "a\u0000b"}, 400, "name"),
    ("POST", "/keys", {"name": "x", "tags": {"project": "a\nb"}}, 400, "tags.project"),
    ("POST", "/keys", {"name": "x", "expires_at": 1e300}, 400, "expires_at"),
    ("POST", "/budgets", '{"scope": "project", "target": "p", "limit_usd": 1e309}', 400, "limit_usd"),
    ("POST", "/budgets", '{"scope": "project", "target": "p", "limit_usd": NaN}', 400, "limit_usd"),
    ("POST", "/cache/purge", {"all": 0}, 400, "all"),
    ("POST", "/cache/purge", {"all": "true"}, 400, "all"),
    ("GET", "/audit?since=nan", None, 400, "since"),
    # names inside a plan must fit their columns and hold no control characters
    (
        "POST",
        "/plans",
        {"format": "md", "text": "# Feature: " + "T" * 501 + "\n## Phase 1: A\n- [ ] T1 a\n"},
        400,
        None,
    ),
    (
        "POST",
        "/plans",
        {"format": "md", "text": "# Feature: C\n## Phase 1: A\n- [ ] T1 a\u0007b\n"},
        400,
        None,
    ),
    (
        "POST",
        "/plans",
        {"format": "md", "text": "# Feature: N\n## Phase 99999999999: A\n- [ ] T1 a\n"},
        400,
        None,
    ),
    (
        "POST",
        "/plans",
        {"format": "md", "text": "# Feature: K\n## Phase 1: A\n- [ ] T" + "1" * 80 + " a\n"},
        400,
        None,
    ),
]


def _send(c: httpx.Client, method: str, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    if isinstance(body, str):
        return c.request(method, path, content=body, headers={**headers, "content-type": "application/json"})
    return c.request(method, path, json=body, headers=headers)


def test_inputs_that_gave_500s_get_a_4xx_naming_the_parameter(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.url + "/api/v1", timeout=30) as c:
        for method, path, body, status, param in VIRTUAL_KEY_CASES:
            _error(_send(c, method, path, body, seeded.a.bearer), status, param)
        for method, path, body, status, param in ADMIN_CASES:
            _error(_send(c, method, path, body, ADMIN), status, param)
        # what was refused was not stored: no key with tpm 1 ("true"), no half-imported plan
        assert not [k for k in c.get("/keys", headers=ADMIN).json()["keys"] if k["name"] == "x"]
        assert len(c.get("/features", headers=ADMIN).json()) == 2
        # the store's own lookup is safe from any caller (the CLI too)
        from architect.errors import NotFoundInStore

        for ref in ("³", "2147483648", "9" * 5000):
            with pytest.raises(NotFoundInStore):
                seeded.server.store.tasks.get_feature(ref)


def test_valid_edges_are_accepted(seeded: Seeded) -> None:
    """The other side of each bound: the largest values the columns hold, integral floats as integers,
    an empty or inverted window (no rows, not an error), and a budget delete with its audit row."""
    with httpx.Client(base_url=seeded.url + "/api/v1", timeout=30) as c:
        r = c.post("/keys", json={"name": "edge", "rpm": 2147483647, "tpm": 60.0}, headers=ADMIN)
        assert r.status_code == 201, r.text
        assert (r.json()["rpm"], r.json()["tpm"]) == (2147483647, 60)
        # the longest names each column takes (PostgreSQL refuses longer ones; the audit row keeps up)
        r = c.post("/budgets", json={"scope": "project", "target": "p" * 200, "limit_usd": 5}, headers=ADMIN)
        assert r.status_code == 201, r.text
        big = {
            "name": "n" * 200,
            "models": ["m" * 200] * 200,
            "tags": {f"k{i}": "v" * 200 for i in range(50)},
        }
        assert c.post("/keys", json=big, headers=ADMIN).status_code == 201
        item = {
            "kind": "bug",
            "title": "t" * 500,
            "status": "s" * 16,
            "task_key": "T" + "1" * 63,
            "date": "d" * 32,
        }
        r = c.post(f"/features/{seeded.a.feature_slug}/items", json=item, headers=ADMIN)
        assert r.status_code == 201, r.text
        r = c.patch(f"/features/{seeded.a.feature_slug}/tasks/T001", json={"role": "r" * 100}, headers=ADMIN)
        assert r.status_code == 200, r.text
        r = c.get("/calls", params={"offset": 9223372036854775807}, headers=seeded.a.bearer)
        assert r.status_code == 200 and r.json()["calls"] == [], r.text
        now = time.time()
        for path in ("/calls", "/metrics/summary", "/metrics/timeseries", "/spend", "/export/calls.json"):
            r = c.get(path, params={"since": now, "until": now - 60}, headers=seeded.a.bearer)
            assert r.status_code == 200, (path, r.text)
        budget = seeded.b.budget_ids[0]
        assert c.delete(f"/budgets/{budget}", headers=ADMIN).json() == {"deleted": budget}
        audit = c.get("/audit", params={"action": "budget.delete"}, headers=ADMIN).json()["audit"]
        assert len(audit) == 1, audit


def test_405_and_options_list_the_methods_the_spec_has_for_the_path(sqlite_url: str) -> None:
    with seeded_server(sqlite_url) as s, httpx.Client(base_url=s.url + "/api/v1", timeout=30) as c:
        spec = c.get("/openapi.json", headers=ADMIN).json()
        for path, ops in spec["paths"].items():
            url = re.sub(r"{(\w+)}", lambda m: "T001" if m.group(1) == "key" else "1", path)
            documented = {m.upper() for m in ops}
            for method in ("OPTIONS", "PUT", "TRACE", "DELETE", "PATCH", "POST"):
                if method in documented:
                    continue
                r = c.request(method, url, headers=ADMIN)
                err = _error(r, 405)
                assert set(r.headers["allow"].split(", ")) == documented, (method, path, r.headers["allow"])
                assert err["code"] == "method_not_allowed"
        # a literal path segment is not mistaken for an action: POST .../export is a 405, not a 400
        assert c.post(f"/features/{s.a.feature_slug}/export", headers=ADMIN).headers["allow"] == "GET"


def test_csv_export_neutralises_formulas_and_keeps_numbers(seeded: Seeded) -> None:
    now = time.time()
    texts = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "plain"]
    record_rows(
        seeded.server.store.ledger,
        [
            {
                "request_id": f"formula-{i}",
                "ts": now - 10 + i * 0.01,
                "endpoint": "chat",
                "key_id": "admin",
                "project": text,
                "model": text,
                "status": "ok",
                "http_status": 200,
                "total_ms": 1.0,
                "cost_usd": -0.25,
                "prompt_tokens": -3,
            }
            for i, text in enumerate(texts)
        ],
    )
    with httpx.Client(base_url=seeded.url + "/api/v1", timeout=30) as c:
        r = c.get("/export/calls.csv", params={"since": now - 60}, headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    rows = [row for row in csv.DictReader(io.StringIO(r.text)) if row["request_id"].startswith("formula-")]
    assert [row["model"] for row in rows] == ["'" + t if t != "plain" else t for t in texts]
    assert [row["project"] for row in rows] == [row["model"] for row in rows]
    assert {row["cost_usd"] for row in rows} == {"-0.25"} and {row["prompt_tokens"] for row in rows} == {"-3"}
