"""The `auto` route learns from outcomes end to end: calls through the gateway, `POST /v1/feedback` on
them, the learner syncing the outcomes from the store, and the next decision changing because of them;
a second gateway on the same store (a restart) decides the same way from what the store holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.helpers import LiveServer, make_config, wait_until

ADMIN = "sk-admin-test"


def _config() -> dict[str, Any]:
    def sim(name: str, price: float) -> dict[str, Any]:
        return {
            "name": name,
            "deployments": [
                {
                    "provider": "sim",
                    "model": f"sim-{name}",
                    "price": {"input_per_mtok": price, "output_per_mtok": price * 4},
                    "simulate": {"ttft_ms": 1, "completion_tokens": 5},
                }
            ],
        }

    return {
        "auth": {"admin_key": ADMIN},
        "providers": [{"name": "sim", "kind": "simulated"}],
        "models": [
            sim("cheap", 0.1),
            sim("strong", 3.0),
            {
                "name": "auto",
                "strategy": "auto",
                "candidates": ["cheap", "strong"],
                "quality_target": 0.7,
                "exploration": {"share": 0.0},
            },
        ],
        "routing": {"refresh_s": 0.02},
        "ledger": {"flush_interval_ms": 10},
    }


def _chat(
    server: LiveServer, *, route: str | None = None, text: str = "Rename the variable x to count"
) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN}", "x-architect-tags": "type=refactor"}
    if route:
        headers["x-architect-route"] = route
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers=headers,
        json={"model": "auto", "messages": [{"role": "user", "content": text}]},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r


def _chosen(r: httpx.Response) -> str:
    return dict(p.split("=", 1) for p in r.headers["x-architect-route"].split("; ") if "=" in p)["group"]


def _until_cheap(server: LiveServer, route: str | None = None) -> httpx.Response:
    """The first auto call routed to cheap (the learner syncs outcomes every refresh_s; a sync may
    find part of them written), or, given `route`, the first whose `x-architect-route` is that."""

    def once() -> httpx.Response | None:
        r = _chat(server)
        if route is not None:
            return r if r.headers["x-architect-route"] == route else None
        return r if _chosen(r) == "cheap" else None

    return wait_until(once, timeout=10)


def test_feedback_moves_the_route_to_the_cheap_candidate_and_a_restart_keeps_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'architect.db'}"
    with LiveServer(make_config(_config()), database_url=url) as server:
        # the prior alone: cheap 0.55 < 0.7 <= strong 0.85, so the target takes strong
        assert _chosen(_chat(server)) == "strong"
        # ten calls sent to cheap on purpose (the request's own target), all judged acceptable
        for i in range(10):
            r = _chat(server, route="quality=0.5", text=f"Rename the variable y{i} to total")
            assert _chosen(r) == "cheap"
            fb = httpx.post(
                f"{server.url}/v1/feedback",
                headers={"authorization": f"Bearer {ADMIN}"},
                json={"request_id": r.headers["x-request-id"], "passed": True},
                timeout=10,
            )
            assert fb.status_code == 200 and fb.json()["model_group"] == "cheap", fb.text
            assert fb.json()["task_type"] == "refactor"
        # Beta(1.1 + 10, 0.9) for cheap on "refactor": mean 0.925 >= 0.7, and cheap is the cheaper one
        # (once all ten are synced: a sync may find part of them, e.g. nine give 0.918 and cheap too)
        _until_cheap(server, route="group=cheap; p=0.925; quality_target=0.7; source=group")
        # another task type has no outcomes: still the prior, still strong
        other = httpx.post(
            f"{server.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {ADMIN}", "x-architect-tags": "type=design"},
            json={"model": "auto", "messages": [{"role": "user", "content": "Design a schema"}]},
            timeout=10,
        )
        assert _chosen(other) == "strong"
        q = httpx.get(f"{server.url}/api/v1/quality", headers={"authorization": f"Bearer {ADMIN}"}).json()
        (row,) = [x for x in q["rows"] if x["model_group"] == "cheap" and x["task_type"] == "refactor"]
        assert row["n"] == 10 and abs(row["mean"] - 11.1 / 12) < 1e-3
    # a new gateway on the same store starts from what it holds
    with LiveServer(make_config(_config()), database_url=url) as again:
        assert _chosen(_until_cheap(again)) == "cheap"
