"""Prometheus exposition built from flushed ledger rows: counters, cumulative `le` buckets, labels."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from architect.metrics.prometheus import PromMetrics


def _runtime() -> SimpleNamespace:
    router = SimpleNamespace(deployments=lambda: [])
    return SimpleNamespace(
        router=router,
        ledger=SimpleNamespace(depth=3, dropped=1, written=7, quarantined=2),
        events=SimpleNamespace(dropped=0),
    )


def _row(**kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "request_id": "r",
        "model_group": "g",
        "deployment": "g/p/m",
        "status": "ok",
        "total_ms": 100.0,
        "ttft_ms": None,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.5,
        "cache": None,
    }
    row.update(kw)
    return row


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_counters_and_buckets_from_rows() -> None:
    prom = PromMetrics(_runtime())
    prom.observe(
        [
            _row(total_ms=50.0, ttft_ms=20.0),  # exactly on the 0.05 s bound: counted in le="0.05"
            _row(total_ms=300.0),
            _row(status="error", total_ms=200_000.0, prompt_tokens=0, completion_tokens=0, cost_usd=0),
        ]
    )
    prom.observe([_row(cache="hit-exact", cost_usd=0.0, deployment="g/q/m")])
    prom.observe([_row(cost_usd=0.0, cost_source="unknown", deployment="g/local/qwen")])
    samples = _samples(prom.render().decode())

    def v(name: str, labels: tuple[tuple[str, str], ...]) -> float:
        return samples[(name, tuple(sorted(labels)))]

    gd = (("deployment", "g/p/m"), ("model_group", "g"))
    assert v("architect_requests_total", (*gd, ("status", "ok"))) == 2
    assert v("architect_requests_total", (*gd, ("status", "error"))) == 1
    bucket = "architect_request_duration_seconds_bucket"
    assert v(bucket, (*gd, ("le", "0.05"))) == 1
    assert v(bucket, (*gd, ("le", "0.25"))) == 1
    assert v(bucket, (*gd, ("le", "0.5"))) == 2
    assert v(bucket, (*gd, ("le", "128.0"))) == 2
    assert v(bucket, (*gd, ("le", "+Inf"))) == 3
    assert v("architect_request_duration_seconds_count", gd) == 3
    assert abs(v("architect_request_duration_seconds_sum", gd) - 200.35) < 1e-9
    assert v("architect_time_to_first_token_seconds_count", gd) == 1
    assert v("architect_tokens_total", (*gd, ("direction", "prompt"))) == 20
    assert v("architect_cost_usd_total", gd) == 1.0
    local = (("deployment", "g/local/qwen"), ("model_group", "g"))
    assert v("architect_unpriced_calls_total", local) == 1  # its cost is unknown, not 0
    assert ("architect_cost_usd_total", local) not in samples
    assert ("architect_unpriced_calls_total", gd) not in samples
    assert v("architect_cache_hits_total", (("model_group", "g"),)) == 1
    assert v("architect_ledger_queue_depth", ()) == 3
    assert v("architect_ledger_quarantined_total", ()) == 2
    text = prom.render().decode()
    assert "request_id" not in text
