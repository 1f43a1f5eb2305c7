"""Per-deployment figures count the attempts made on each deployment (from the calls' attempt logs),
so a deployment whose failures another deployment covered still shows them; `failovers` counts the
calls answered by another deployment than the first one tried. Rollups and a ledger scan agree."""

from __future__ import annotations

from typing import Any

from tests.helpers import record_rows

from architect.metrics.rollups import Rollups
from architect.store import Store

T0 = 1_700_000_000 - 1_700_000_000 % 3600


def _attempt(n: int, deployment: str, status: str = "ok", kind: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attempt": n,
        "ts": T0 + n,
        "model_group": "flaky",
        "deployment": deployment,
        "provider": "sim",
        "status": status,
        "total_ms": 50.0,
    }
    if kind:
        out["error_kind"] = kind
    return out


def _calls() -> list[dict[str, Any]]:
    """10 calls to group `flaky`: 3 answered by sim-flaky, 2 by sim-steady at once, and 5 that failed
    on sim-flaky first (three upstream errors, two rate limits) and were answered by sim-steady."""
    logs = [[_attempt(1, "sim-flaky")]] * 3 + [[_attempt(1, "sim-steady")]] * 2
    for kind in ["upstream_error"] * 3 + ["rate_limited"] * 2:
        logs.append([_attempt(1, "sim-flaky", "error", kind), _attempt(2, "sim-steady")])
    return [
        {
            "request_id": f"r{i}",
            "ts": T0 + 10 + i,
            "endpoint": "chat",
            "model": "flaky",
            "model_group": "flaky",
            "deployment": log[-1]["deployment"],
            "provider": "sim",
            "feature": "f",
            "status": "ok",
            "total_ms": 100.0,
            "attempts": len(log),
            "attempt_log": log,
        }
        for i, log in enumerate(logs)
    ]


def test_deployment_figures_count_the_attempts_made_on_it() -> None:
    store = Store.memory()
    rows = _calls()
    record_rows(store.ledger, rows)
    r = Rollups(store.rollups, store.ledger)
    r.add(rows)
    r.flush()
    window = (T0, T0 + 120)
    rolled, _, source = r.summary(*window, ["deployment"], {}, now=T0 + 120)
    assert source == "rollups"
    scanned, _, source = r.summary(*window, ["deployment", "feature"], {}, now=T0 + 120)
    assert source == "ledger"
    for got in (rolled, scanned):
        by = {g["deployment"]: g for g in got}
        flaky, steady = by["sim-flaky"], by["sim-steady"]
        assert (flaky["requests"], flaky["attempts"], flaky["failed_attempts"]) == (3, 8, 5)
        assert flaky["attempt_errors_by_kind"] == {"upstream_error": 3, "rate_limited": 2}
        assert flaky["attempt_error_rate"] == 5 / 8
        assert (steady["requests"], steady["attempts"], steady["failed_attempts"]) == (7, 7, 0)
        assert steady["attempt_errors_by_kind"] == {} and steady["attempt_error_rate"] == 0.0
        # answered by another deployment than the first tried: counted where they were answered
        assert (flaky["failovers"], steady["failovers"]) == (0, 5)
    (total,), _, _ = r.summary(*window, [], {}, now=T0 + 120)
    assert (total["requests"], total["attempts"], total["failed_attempts"], total["failovers"]) == (
        10,
        15,
        5,
        5,
    )


def test_rows_without_an_attempt_log_keep_their_attempts_on_the_call() -> None:
    store = Store.memory()
    rows = [{**c, "attempt_log": None} for c in _calls()]
    r = Rollups(store.rollups, store.ledger)
    r.add(rows)
    r.flush()
    got, _, _ = r.summary(T0, T0 + 120, ["deployment"], {}, now=T0 + 120)
    assert {g["deployment"]: g["attempts"] for g in got} == {"sim-flaky": 3, "sim-steady": 12}
    assert all(g["failed_attempts"] == 0 and g["failovers"] == 0 for g in got)
