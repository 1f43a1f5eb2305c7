"""The two event streams the fuzz run leaves out (they never end): both need a key (401 in the API's
error format without one), and both speak well-formed server-sent events."""

from __future__ import annotations

import json
import queue
import threading

import httpx

from tests.helpers import wait_until
from tests.integration.api.seed import ADMIN_KEY, seeded_server

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def _events(text: str) -> list[dict[str, str]]:
    """Parse SSE text into events ({field: value}); comments are skipped, a blank line ends an event."""
    out, cur = [], {}
    for line in text.split("\n"):
        if not line:
            if cur:
                out.append(cur)
            cur = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            cur[field] = value
    return out


def test_event_streams_need_a_key_and_are_well_formed_sse(sqlite_url: str) -> None:
    with seeded_server(sqlite_url) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        for path in ("/api/v1/events", "/api/v1/tasks/events?once=true"):
            r = c.get(path)
            assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error", r.text
            r = c.get(path, headers={"authorization": "Bearer wrong"})
            assert r.status_code == 401, r.text

        r = c.get("/api/v1/tasks/events", params={"once": "true"}, headers=ADMIN)
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.text)
        assert events and all(e["event"] == "task" and e["id"].isdigit() for e in events), r.text
        assert all(json.loads(e["data"])["id"] == int(e["id"]) for e in events)

        # the live stream: a call made while it is open arrives as one `call` event
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            try:
                url = s.url + "/api/v1/events?topics=call"
                with httpx.stream("GET", url, headers=ADMIN, timeout=httpx.Timeout(5, read=None)) as r:
                    lines.put(r.headers["content-type"])
                    call = False
                    for line in r.iter_lines():
                        lines.put(line)
                        call = call or line == "event: call"
                        if call and not line:  # one whole call event: enough, hang up
                            return
            except httpx.HTTPError:  # the server stops at the end of the test and cuts the stream
                pass

        threading.Thread(target=read, daemon=True).start()
        seen: list[str] = []

        def call_event() -> bool:
            c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                   headers=s.a.bearer)  # fmt: skip
            while not lines.empty():
                seen.append(lines.get())
            return any(e.get("event") == "call" for e in _events("\n".join(seen[1:]) + "\n\n"))

        wait_until(call_event, timeout=15, interval=0.2)
        assert seen[0].startswith("text/event-stream"), seen[0]
        call = next(e for e in _events("\n".join(seen[1:]) + "\n\n") if e.get("event") == "call")
        assert call["id"].isdigit() and json.loads(call["data"])["key_id"] == s.a.key_id
