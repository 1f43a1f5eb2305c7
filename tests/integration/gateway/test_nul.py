"""NUL and other control characters through the real gateway (the openai SDK and httpx against a live
server and the stub upstream): identifiers holding them are refused with a 400 naming the field,
free text holding them is recorded escaped, and a row the database refuses is quarantined while the
ledger keeps draining for everyone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from aiohttp import web

from architect.store import open_store
from tests.helpers import LiveServer, make_config, stub_config, wait_until
from tests.stubs.openai_stub import StubServer

MSG = [{"role": "user", "content": "hi"}]


class EchoingStub(StubServer):
    """Answers mode "echo-400" with a 400 whose message repeats the last message's content, as real
    providers do when they refuse a value."""

    async def _failure(self, mode: str, request: web.Request) -> web.StreamResponse | None:
        if mode == "echo-400":
            content = self.requests[-1]["body"]["messages"][-1]["content"]
            return self._error(400, f"invalid content: {content!s}", "invalid_value")
        return await super()._failure(mode, request)


@pytest.fixture
def echo_stub() -> Iterator[EchoingStub]:
    with EchoingStub() as s:
        yield s


def _recorded(srv: LiveServer, n: int) -> list[dict[str, Any]]:
    """The ledger rows once there are `n` (a call is recorded just after its answer is sent)."""

    def rows() -> list[dict[str, Any]] | None:
        got = srv.calls()
        return got if len(got) >= n else None

    return wait_until(rows)  # type: ignore[return-value]


def test_identifiers_with_control_characters_get_400_naming_the_field_and_the_ledger_keeps_draining(
    stub: StubServer, pg_url: str, client_for: Callable[[LiveServer], openai.OpenAI]
) -> None:
    with LiveServer(make_config(stub_config(stub.url)), open_store(pg_url, migrate="upgrade")) as srv:
        client = client_for(srv)
        with pytest.raises(openai.BadRequestError) as bad_model:
            client.chat.completions.create(model="m\x00", messages=MSG)  # type: ignore[arg-type]
        assert bad_model.value.status_code == 400 and bad_model.value.param == "model"
        assert "U+0000" in bad_model.value.message
        with pytest.raises(openai.BadRequestError) as bad_tag:
            client.chat.completions.create(model="m", messages=MSG, metadata={"feature": "check\x00out"})  # type: ignore[arg-type]
        assert bad_tag.value.param == "metadata.feature"
        with pytest.raises(openai.BadRequestError) as bad_key:
            client.embeddings.create(model="m\u202e", input="x")
        assert bad_key.value.param == "model"
        r = httpx.post(
            srv.url + "/v1/chat/completions",
            json={"model": "m", "messages": MSG},
            headers={"x-architect-tags": b"project=sh\x85op"},  # a C1 control, as HTTP allows it through
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "x-architect-tags"
        assert stub.requests == []  # nothing went upstream

        # everyone else's calls are recorded, the tags as sent
        for i in range(5):
            client.chat.completions.create(model="m", messages=MSG, metadata={"feature": f"f{i}"})  # type: ignore[arg-type]
        rows = _recorded(srv, 5)
        assert sorted(r["feature"] for r in rows) == ["f0", "f1", "f2", "f3", "f4"]
        assert httpx.get(srv.url + "/readyz").json()["checks"]["ledger"]["queue_depth"] == 0


def test_message_content_with_nul_is_recorded_escaped(
    echo_stub: EchoingStub, db_url: str, client_for: Callable[[LiveServer], openai.OpenAI]
) -> None:
    cfg = stub_config(echo_stub.url)
    cfg["ledger"] = {"bodies": "full"}
    with LiveServer(make_config(cfg), open_store(db_url, migrate="upgrade")) as srv:
        client = client_for(srv)
        echo_stub.script.append("echo-400")
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "a\x00b"}])
        answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "c\x00d"}])
        assert answer.choices[0].message.content == "Hello from the stub."
        bad, good = sorted(_recorded(srv, 2), key=lambda r: r["ts"])
        assert bad["status"] == "error" and bad["error_message"] == "invalid content: a\ufffdb"
        assert (
            orjson.loads(bad["request_body"])["messages"][0]["content"] == "a\x00b"
        )  # JSON keeps its escape
        assert (
            good["status"] == "ok"
            and orjson.loads(good["request_body"])["messages"][0]["content"] == "c\x00d"
        )


_REFUSE_POISON = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation'; END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON calls FOR EACH ROW
WHEN (NEW.request_id = 'poison-1') EXECUTE FUNCTION refuse_poison();
"""


def test_a_row_the_database_refuses_is_quarantined_and_counted_in_readyz_and_metrics(
    stub: StubServer, pg_url: str, tmp_path: Path
) -> None:
    qfile = tmp_path / "ledger-quarantine.jsonl"
    store = open_store(pg_url, migrate="upgrade")
    with store.engine.begin() as conn:  # the database refuses one row (as a check it has would)
        conn.exec_driver_sql(_REFUSE_POISON)
    srv = LiveServer(make_config(stub_config(stub.url)), store)
    srv.runtime.ledger.quarantine_path = qfile
    with srv, httpx.Client(base_url=srv.url) as c:
        chat = {"model": "m", "messages": MSG}
        # a client that sends the same request id twice: both calls are recorded, the second under a
        # derived id; a row the database refuses is quarantined, and the rest written
        for rid in ("dup-1", "dup-1", "poison-1", "ok-0", "ok-1", "ok-2"):
            assert c.post("/v1/chat/completions", json=chat, headers={"x-request-id": rid}).status_code == 200

        def ledger() -> dict[str, int] | None:
            lg: dict[str, int] = c.get("/readyz").json()["checks"]["ledger"]
            return lg if lg["written"] + lg["quarantined"] == 6 else None

        assert wait_until(ledger) == {"queue_depth": 0, "dropped": 0, "written": 5, "quarantined": 1}
        assert "architect_ledger_quarantined_total 1.0" in c.get("/metrics").text
        ids = sorted(r["request_id"] for r in srv.calls())
        assert ids[0] == "dup-1" and ids[1].startswith("dup-1:") and ids[2:] == ["ok-0", "ok-1", "ok-2"]
        (entry,) = [orjson.loads(line) for line in qfile.read_text().splitlines()]
        assert entry["row"]["request_id"] == "poison-1" and entry["row"]["status"] == "ok"
        assert "CheckViolation" in entry["error"]


def test_messages_api_refuses_control_characters_in_identifiers_and_records_nul_text(
    stub: StubServer, pg_url: str
) -> None:
    cfg = stub_config(stub.url)
    cfg["ledger"] = {"bodies": "full"}
    with LiveServer(make_config(cfg), open_store(pg_url, migrate="upgrade")) as srv:
        url = srv.url + "/v1/messages"
        base = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x\x00y"}]}
        r = httpx.post(url, json={**base, "model": "m\x00"})
        assert (
            r.status_code == 400 and r.json()["type"] == "error" and "model" in r.json()["error"]["message"]
        )
        r = httpx.post(url, json={**base, "metadata": {"feature": "a\x00b"}})
        assert r.status_code == 400 and "metadata.feature" in r.json()["error"]["message"]
        assert stub.requests == []
        r = httpx.post(url, json={**base, "metadata": {"feature": "nul-text", "user_id": "u\x00"}})
        assert r.status_code == 200, r.text
        (row,) = _recorded(srv, 1)
        assert row["endpoint"] == "messages" and row["feature"] == "nul-text"
        assert orjson.loads(row["request_body"])["messages"][0]["content"] == "x\x00y"
        assert stub.requests[-1]["body"]["messages"][0]["content"] == "x\x00y"
