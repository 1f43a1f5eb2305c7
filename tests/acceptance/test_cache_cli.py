"""`architect cache stats|purge|warm` in real subprocesses against a SQLite store and the stub upstream."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import yaml

from tests.acceptance.conftest import architect
from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer


def _setup(tmp_path: Path, stub: StubServer, bodies: str) -> tuple[dict[str, object], list[str]]:
    data = {**stub_config(stub.url), "ledger": {"bodies": bodies}}
    cfg_file = tmp_path / "architect.yaml"
    cfg_file.write_text(yaml.safe_dump(data))
    db = f"sqlite:///{tmp_path}/architect.db"
    return data, ["-c", str(cfg_file), "--database-url", db]


def _ask(srv: LiveServer, content: str, n: int, headers: dict[str, str] | None = None) -> list[str]:
    out = []
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        for _ in range(n):
            r = c.post(
                "/v1/chat/completions",
                headers=headers or {},
                json={"model": "m", "messages": [{"role": "user", "content": content}], "temperature": 0},
            )
            assert r.status_code == 200
            out.append(r.headers["x-architect-cache"])
    return out


def test_warm_stats_and_purge(tmp_path: Path) -> None:
    with StubServer() as stub:
        data, opts = _setup(tmp_path, stub, "full")
        db = opts[-1]
        # traffic that was not cached (no-store): three questions with different frequencies
        with LiveServer(make_config(data), database_url=db) as srv:
            no_store = {"cache-control": "no-store"}
            _ask(srv, "often", 3, no_store)
            _ask(srv, "sometimes", 2, no_store)
            _ask(srv, "once", 1, no_store)
            _ask(srv, "creative", 1, {"x-architect-cache": "force", **no_store})
        before = stub.counts["/v1/chat/completions"]
        res = architect("cache", "warm", "--top", "2", "--since", "1h", "--json", *opts, check=True)
        report = orjson.loads(res.stdout)
        assert report["candidates"] == 2 and report["results"] == {"miss": 2}
        assert stub.counts["/v1/chat/completions"] == before + 2
        # a fresh gateway (empty L1) now finds the two most frequent questions in the L2
        with LiveServer(make_config(data), database_url=db) as srv:
            assert _ask(srv, "often", 1) == ["hit-l2"]
            assert _ask(srv, "sometimes", 2) == ["hit-l2", "hit-l1"]  # an L2 hit fills the L1
            assert _ask(srv, "once", 1) == ["miss"]
        st = orjson.loads(architect("cache", "stats", "--since", "1h", "--json", *opts, check=True).stdout)
        assert st["l2"]["entries"] == 3 and st["by_tier"]["hit-l2"] >= 1 and st["saved_cost_usd"] > 0
        bad = architect("cache", "purge", *opts)
        assert bad.returncode != 0 and "--all" in (bad.stderr + bad.stdout)
        res = architect("cache", "purge", "--all", "--json", *opts, check=True)
        assert orjson.loads(res.stdout)["removed"] == 3


def test_warm_says_when_the_ledger_has_no_bodies(tmp_path: Path) -> None:
    with StubServer() as stub:
        data, opts = _setup(tmp_path, stub, "off")
        with LiveServer(make_config(data), database_url=opts[-1]) as srv:
            _ask(srv, "q", 2, {"cache-control": "no-store"})
        res = architect("cache", "warm", "--since", "1h", *opts)
    assert res.returncode == 1
    assert "ledger.bodies: full" in res.stdout and "Traceback" not in res.stderr
