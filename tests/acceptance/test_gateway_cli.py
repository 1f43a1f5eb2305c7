"""The real CLI in subprocesses: config check, db upgrade, serve + the openai SDK + stats, graceful stop."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import orjson

from tests.acceptance.conftest import Served, architect, start_server


def test_config_check_accepts_the_example_and_names_the_bad_field(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "src" / "architect" / "examples" / "simulated.yaml"
    ok = architect("config", "check", str(example))
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "providers: [{name: s, kind: simulated}]\nmodels:\n  - name: a\n    deployments:\n"
        "      - {provider: s, model: x, price: {input_per_mtok: cheap}}\n"
    )
    res = architect("config", "check", str(bad))
    assert res.returncode == 2
    assert "models[0].deployments[0].price.input_per_mtok" in res.stderr
    assert "Traceback" not in res.stderr


def test_db_upgrade_on_a_fresh_sqlite_store(home: dict[str, str]) -> None:
    res = architect("db", "upgrade", env=home, check=True)
    assert "empty →" in res.stdout
    again = architect("db", "current", env=home, check=True)
    assert "at " in again.stdout


def test_serve_simulated_fleet_answers_the_sdk_and_stats_show_it(served: Served) -> None:
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="anything", max_retries=0)
    r = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert r.system_fingerprint == "architect-simulated"
    chunks = list(
        client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
    stats = architect("stats", "--since", "1h", "--json", env=served.env, check=True)
    rows = orjson.loads(stats.stdout)["rows"]
    fast = [r for r in rows if r["model_group"] == "fast"]
    assert sum(r["requests"] for r in fast) == 2
    assert all(r["cost_usd"] > 0 and r["baseline_cost_usd"] > r["cost_usd"] for r in fast)
    table = architect("stats", "--since", "1h", env=served.env, check=True)
    assert "fast" in table.stdout


def test_sigterm_loses_no_ledger_rows(home: dict[str, str]) -> None:
    served = start_server(["--example"], home)
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="x", max_retries=0)
    n = 60
    with ThreadPoolExecutor(12) as pool:
        list(
            pool.map(
                lambda _: client.chat.completions.create(
                    model="fast", messages=[{"role": "user", "content": "hi"}], max_tokens=4
                ),
                range(n),
            )
        )
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
    rows = orjson.loads(
        architect("stats", "--since", "1h", "--json", "--by", "model_group", env=home, check=True).stdout
    )["rows"]
    assert sum(r["requests"] for r in rows) == n


def test_serve_refuses_a_postgres_store_that_is_behind(pg_url: str, home: dict[str, str]) -> None:
    res = architect("serve", "--example", "--port", "0", "--database-url", pg_url, env=home, timeout=30)
    assert res.returncode == 2
    assert "architect db upgrade" in res.stderr
    architect("db", "upgrade", "--database-url", pg_url, env=home, check=True)
    served = start_server(["--example", "--database-url", pg_url], home)
    try:
        client = openai.OpenAI(base_url=served.url + "/v1", api_key="x", max_retries=0)
        client.chat.completions.create(
            model="mid", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
    finally:
        served.proc.send_signal(signal.SIGTERM)
        served.proc.wait(30)
    rows = orjson.loads(architect("stats", "--json", "--database-url", pg_url, env=home, check=True).stdout)[
        "rows"
    ]
    assert [r["model_group"] for r in rows] == ["mid"]
