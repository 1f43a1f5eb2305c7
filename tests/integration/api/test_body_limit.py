"""`server.max_api_body_bytes` outside /v1: a body declared larger is refused before it is read, a
chunked body is refused while it streams (as soon as it passes the limit, not after it ends), both with
a 413 in the API's error format; bodies under the limit and /v1 (its own `max_body_bytes`) are not
affected."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import LiveServer, make_config, stub_config
from tests.stubs.openai_stub import StubServer

ADMIN_KEY = "admin-body-limit-0123456789"
LIMIT = 64 * 1024
_PLAN = "# Feature: Sized\n## Phase 1: Build\n- [ ] T001 first step\n"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[LiveServer]:
    with StubServer() as stub:
        cfg = stub_config(stub.url)
        cfg["auth"] = {"admin_key": ADMIN_KEY}
        cfg["server"] = {"max_api_body_bytes": LIMIT}
        with LiveServer(make_config(cfg), database_url=sqlite_url) as srv:
            yield srv


def _head(path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_KEY}\r\n{extra}\r\n"
    ).encode()


def _response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Read one response (status, headers, body) until the server closes or the deadline passes."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.1)
        if ready:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), f"no response within {timeout} s: {data[:200]!r}"
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _is_413(status: int, body: bytes) -> None:
    assert status == 413, body
    err = json.loads(body)["error"]
    assert err["code"] == "payload_too_large" and str(LIMIT) in err["message"], err


def test_declared_length_over_the_limit_is_refused_without_reading_the_body(server: LiveServer) -> None:
    for path, ctype in (
        ("/api/v1/plans", "application/json"),
        ("/ui/login", "application/x-www-form-urlencoded"),
    ):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            # 60 MB announced, not one byte of it sent: an answer proves the body was never waited for
            sock.sendall(_head(path, f"Content-Type: {ctype}\r\nContent-Length: 60000000\r\n"))
            status, headers, body = _response(sock)
        _is_413(status, body)
        assert headers["connection"] == "close"


def test_chunked_body_is_refused_while_it_streams(server: LiveServer) -> None:
    chunk = b"x" * 8192
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            _head("/api/v1/plans", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
        )
        # one chunk past the limit, and the body never ends; a server that waited for the end would
        # never answer. Only that much is sent: more could still be on its way when the server closes
        # the connection after its 413, and the client would then see a reset instead of the answer.
        for _ in range(LIMIT // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, _, body = _response(sock)
    _is_413(status, body)


def test_bodies_under_the_limit_and_v1_are_unaffected(server: LiveServer) -> None:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}

    def chunks() -> Iterator[bytes]:  # a chunked body (no Content-Length) under the limit
        text = json.dumps({"format": "md", "text": _PLAN + "<!-- " + "p" * (LIMIT // 2) + " -->\n"})
        for i in range(0, len(text), 4096):
            yield text[i : i + 4096].encode()

    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/api/v1/plans", content=chunks(), headers={**admin, "content-type": "application/json"})
        assert r.status_code == 201, r.text
        # /v1 has its own, larger limit: 100 KB of prompt passes there
        big = {"model": "m", "messages": [{"role": "user", "content": "y" * (100 * 1024)}]}
        r = c.post("/v1/chat/completions", json=big, headers=admin)
        assert r.status_code == 200, r.text
