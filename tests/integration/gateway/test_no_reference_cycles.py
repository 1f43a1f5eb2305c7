"""A finished call leaves no reference cycles behind: its objects are freed by reference counting when
it ends, not left for the cyclic garbage collector. Cycles made per call pile up under load between
full collections and fragment the heap, so resident memory creeps up over a long run.

The calls here take longer than the gateway's disconnect watch needs to start (`WATCH_AFTER_S`) and go
through a key with a budget and a tpm limit, so the watch and the budget's reserve/settle statements
run on every call."""

from __future__ import annotations

import gc
from collections import Counter

import httpx
import pytest

from architect.gateway.app import WATCH_AFTER_S
from tests.helpers import LiveServer, make_config
from tests.stubs.openai_stub import StubServer

ADMIN = "admin-no-cycles-0123456789"
CALLS = 30


def _module_of(obj: object) -> str:
    return type(obj).__module__ or ""


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_calls_leave_no_reference_cycles(stub: StubServer, stream: bool) -> None:
    stub.delay_s = WATCH_AFTER_S * 2  # the disconnect watch starts on every call
    config = make_config(
        {
            "providers": [{"name": "p", "kind": "openai", "base_url": stub.url}],
            "models": [
                {
                    "name": "m",
                    "deployments": [
                        {
                            "provider": "p",
                            "model": "stub-model",
                            "price": {"input_per_mtok": 1, "output_per_mtok": 2},
                        }
                    ],
                }
            ],
            "auth": {"admin_key": ADMIN},
        }
    )
    body: dict[str, object] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    if stream:
        body["stream"] = True
    with LiveServer(config) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        r = c.post(
            "/api/v1/keys",
            json={"name": "k", "budget_usd": 1000.0, "tpm": 10**8},
            headers={"authorization": f"Bearer {ADMIN}"},
        )
        assert r.status_code == 201, r.text
        key = {"authorization": f"Bearer {r.json()['key']}"}
        assert c.post("/v1/chat/completions", json=body, headers=key).status_code == 200  # warm caches
        srv.runtime.ledger.flush()
        srv.runtime.rollups.flush()  # its first write compiles its statements: not per call
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(CALLS):
                resp = c.post("/v1/chat/completions", json=body, headers=key)
                assert resp.status_code == 200, resp.text
            srv.runtime.ledger.flush()
            gc.collect()
            ours = Counter(
                type(o).__qualname__
                for o in gc.garbage
                if _module_of(o).startswith(("architect", "sqlalchemy", "uvicorn"))
                or type(o).__qualname__ in ("Task", "coroutine", "CancelledError")
            )
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    # a few objects may come from start-up or the key's first use; one cycle per call would be >= CALLS
    assert sum(ours.values()) < CALLS, ours.most_common(10)
