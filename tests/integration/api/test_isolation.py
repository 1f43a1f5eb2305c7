"""Tenant isolation over the whole spec: virtual key A ("alpha") calls every operation of /api/v1 with
tenant B's ("bravo") ids in every path parameter (and A's own parents with B's children), B's project,
key and feature in the query and body fields that name them, as a bearer key and through a dashboard
session. An operation that names one of B's rows must answer 403 or 404; a list or query may answer
(only with A's own data); no response may contain anything of B's that A did not send itself.

The operations come from the live spec, so a new endpoint is walked without changes here; a new path
parameter fails the test until it is added to `_b_values` (how to name B's row of that kind)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from tests.integration.api.seed import ADMIN_KEY, Seeded, Tenant, seeded_server

# Operations not walked, each with the reason.
EXCEPTIONS = {
    "GET /events": "a live stream of events as they happen (nothing is replayed); which live events reach "
    "a key is tested with the event bus (access and orchestrator event tests)",
}
_VALID_PLAN = "# Feature: Intruder Plan\n## Phase 1: Build\n- [ ] T001 write into another project\n"


def _b_values(a: Tenant, b: Tenant) -> dict[str, tuple[list[Any], list[Any]]]:
    """Path parameter -> (B's values, A's values) for every kind of row the spec names."""
    return {
        "ref": ([b.feature_slug, str(b.feature_id)], [a.feature_slug]),
        "key": (["T001", "T002"], ["T001", "T002"]),  # task keys are per feature: B's are also A's
        "item_id": ([b.item_id], [a.item_id]),
        "key_id": ([b.key_id], [a.key_id]),
        "budget_id": (list(b.budget_ids), list(a.budget_ids)),
        "request_id": ([b.request_ids[0]], [a.request_ids[0]]),
        "project": ([b.project], [a.project]),
    }


def _query_values(b: Tenant) -> dict[str, str]:
    return {
        "key_id": b.key_id,
        "project": b.project,
        "feature": b.feature_slug,
        "task": "T001",
        "once": "true",  # /tasks/events: one pass over the recorded events, then the stream ends
    }


def _body_values(b: Tenant) -> dict[str, Any]:
    return {
        "project": b.project,
        "target": b.key_id,
        "key_id": b.key_id,
        "namespace": f"k:{b.key_id}",
        "text": _VALID_PLAN,
        "task_key": "T001",
    }


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _sample(spec: dict[str, Any], schema: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """A minimal value valid for `schema` (required properties only, plus the overridden ones)."""
    schema = _resolve(spec, schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for alt in schema.get("anyOf", ()):
        if _resolve(spec, alt).get("type") != "null":
            return _sample(spec, alt, overrides)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        out = {k: _sample(spec, props[k], overrides) for k in schema.get("required", ())}
        out.update({k: v for k, v in overrides.items() if k in props})
        return out
    if kind == "array":
        return []
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 0)) + 1.0
    if kind == "boolean":
        return True
    pattern = schema.get("pattern")
    return next(v for v in ("x", "T001", "a1") if pattern is None or re.search(pattern, v))


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


def _session(c: httpx.Client, t: Tenant) -> dict[str, str]:
    """Log in at /ui with `t`'s key; the headers that then authenticate as its dashboard session."""
    page = c.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    r = c.post("/ui/login", data={"csrf": token.group(1), "key": t.key, "next": "/ui/overview"})
    assert r.status_code == 303 and "architect_session" in c.cookies, r.text
    shell = c.get("/ui/overview")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', shell.text)
    assert csrf, shell.text
    return {"authorization": f"Session {csrf.group(1)}"}


def _walk(s: Seeded, c: httpx.Client, auth: dict[str, str], how: str) -> list[str]:
    a, b = s.a, s.b
    spec = c.get("/api/v1/openapi.json", headers=auth).json()
    values = _b_values(a, b)
    problems: list[str] = []
    secrets = b.secrets()
    for method, path, op in _operations(spec):
        label = f"{method} {path}"
        if label in EXCEPTIONS:
            continue
        names = re.findall(r"{(\w+)}", path)
        unknown = [n for n in names if n not in values]
        assert not unknown, f"{label}: add how to name B's row for path parameter(s) {unknown}"
        query = {
            p["name"]: _query_values(b)[p["name"]]
            for p in op.get("parameters", ())
            if p["in"] == "query" and p["name"] in _query_values(b)
        }
        body = None
        if "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            body = _sample(spec, schema, _body_values(b))
        # every combination of B's and A's values that names at least one row of B's
        choices = [
            [(v, values[n][0] != values[n][1]) for v in values[n][0]]
            + [(v, False) for v in values[n][1] if v not in values[n][0]]
            for n in names
        ]
        for combo in itertools.product(*choices):
            if names and not any(is_b for _, is_b in combo):
                continue
            url = path
            for n, (v, _) in zip(names, combo, strict=True):
                url = url.replace("{" + n + "}", quote(str(v), safe=""))
            r = c.request(method, "/api/v1" + url, params=query, json=body, headers=auth)
            sent = f"{url} {query} {body}"
            leaked = [x for x in secrets if x and x in r.text and x not in sent]
            ok_status = {403, 404} if names or method != "GET" else {200, 403, 404}
            if op.get("x-admin-only"):
                ok_status = {403}
            if r.status_code not in ok_status or leaked:
                problems.append(
                    f"[{how}] {method} {url} {query}: {r.status_code} leaked={leaked} {r.text[:300]}"
                )
    return problems


def test_virtual_key_a_never_reaches_tenant_b(db_url: str) -> None:
    with seeded_server(db_url) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        problems = _walk(s, c, s.a.bearer, "bearer")
        problems += _walk(s, c, _session(c, s.a), "session")
        assert not problems, "\n".join(problems)
        # B's data is all still there and unchanged
        admin = {"authorization": f"Bearer {ADMIN_KEY}"}
        feature = c.get(f"/api/v1/features/{s.b.feature_slug}", headers=admin).json()
        assert feature["title"] == s.b.feature_title and feature["status"] == "active", feature
        items = c.get(f"/api/v1/features/{s.b.feature_slug}/items", headers=admin).json()
        assert [i["id"] for i in items] == [s.b.item_id], items
        assert c.get(f"/api/v1/keys/{s.b.key_id}", headers=admin).json()["revoked"] is False
