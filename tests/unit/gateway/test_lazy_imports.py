"""A gateway serving /v1 imports only what a request needs: checked in a fresh process, which builds
and starts the runtime on a migrated SQLite store with no Redis, semantic cache or PostgreSQL
configured, answers a chat call, and lists what got imported. The /api/v1 app (FastAPI) is built on
its first request."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from architect.store import open_store

NEVER = (
    "alembic",
    "psycopg",
    "redis",
    "aiohttp",
    "usearch",
    "numpy",
    "tiktoken",
    "typer",
    "rich",
    "genai_prices",  # the price catalogue: only when a deployment on a public host has no price:
)

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from architect.config import parse_config
    from architect.app import create_app
    from architect.runtime import Runtime
    from architect.store import open_store

    cfg = parse_config({
        "providers": [{"name": "sim", "kind": "simulated"},
                      {"name": "up", "kind": "openai", "base_url": "https://127.0.0.1:9/v1", "api_key": "k"}],
        "models": [
            {"name": "m", "deployments": [{"provider": "sim", "model": "x", "limits": {"tpm": 1000000},
             "context_window": 8000, "simulate": {"ttft_ms": 1, "completion_tokens": 3}}]},
            {"name": "u", "deployments": [{"provider": "up", "model": "y"}]},
        ],
        "alerts": [{"name": "errors", "kind": "error_rate", "threshold": 0.5, "window_s": 60}],
        "alert_webhook": "http://127.0.0.1:9/hook",
    }, env={})
    store = open_store(sys.argv[1])
    runtime = Runtime(cfg, store)
    app = create_app(runtime)

    async def request(method, path, body=b""):
        sent = []
        done = False

        async def receive():
            nonlocal done
            if done:
                await asyncio.Event().wait()
            done = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
                 "query_string": b"", "headers": [(b"content-type", b"application/json")],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "scheme": "http",
                 "http_version": "1.1"}
        await app(scope, receive, send)
        return sent[0]["status"]

    def loaded():
        return sorted({name.split(".")[0] for name in sys.modules})

    async def main():
        await runtime.start()
        chat = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
        status = await request("POST", "/v1/chat/completions", chat)
        before_api = loaded()
        api_status = await request("GET", "/api/v1/budgets")
        await runtime.stop()
        print(json.dumps({"chat": status, "api": api_status, "before_api": before_api, "after_api": loaded()}))

    asyncio.run(main())
    store.close()
    """
)


def test_serving_v1_on_sqlite_imports_none_of_the_optional_or_rare_dependencies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    open_store(url, migrate="upgrade").close()  # a database that is current: nothing to migrate
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    seen = json.loads(out.splitlines()[-1])
    assert seen["chat"] == 200 and seen["api"] == 200
    assert [m for m in NEVER if m in seen["before_api"]] == []
    assert "fastapi" not in seen["before_api"]  # the API app is built on its first request
    assert "fastapi" in seen["after_api"]
    assert [m for m in NEVER if m in seen["after_api"]] == []
