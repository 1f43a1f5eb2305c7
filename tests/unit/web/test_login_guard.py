"""The dashboard login's guards with injected clocks: failure limits per address and per key prefix,
bounded memory, throttled audit rows that never hold a key, and server-issued CSRF tokens."""

from __future__ import annotations

import ipaddress

import pytest

from architect.access.login import (
    AuditThrottle,
    LoginThrottle,
    LoginTokens,
    address_bucket,
    client_address,
    key_prefix,
)
from architect.config import parse_config
from architect.errors import ConfigError

SECRET = "sk-arch-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_failures_are_limited_per_address_in_a_sliding_window() -> None:
    clock = Clock()
    t = LoginThrottle(window_s=60, per_address=10, per_key=5, clock=clock)
    for i in range(10):
        assert t.retry_after("10.0.0.1", f"guess{i}") is None
        t.failed("10.0.0.1", f"guess{i}")
        clock.now += 1
    wait = t.retry_after("10.0.0.1", "anything")  # a correct key is refused too: it is never looked at
    assert (
        wait is not None and abs(wait - 50) < 1e-9
    )  # now 1010; the first failure (at 1000) leaves the window at 1060
    assert t.retry_after("10.0.0.2", "anything") is None  # another address is not affected
    clock.now = 1060.0
    assert t.retry_after("10.0.0.1", "anything") is None  # one failure left the window: one more try
    t.failed("10.0.0.1", "again")
    assert t.retry_after("10.0.0.1", "anything") is not None


def test_failures_are_limited_per_key_prefix_across_addresses() -> None:
    clock = Clock()
    t = LoginThrottle(window_s=60, per_address=10, per_key=5, clock=clock)
    prefix = key_prefix(SECRET)
    for i in range(5):
        t.failed(f"10.0.0.{i}", prefix)
    wait = t.retry_after("192.0.2.9", prefix)
    assert wait is not None and abs(wait - 60) < 1e-9
    assert t.retry_after("192.0.2.9", "sk-arch-Zzzz") is None
    clock.now += 60
    assert t.retry_after("192.0.2.9", prefix) is None


def test_memory_is_bounded_under_a_flood_of_distinct_addresses() -> None:
    clock = Clock()
    t = LoginThrottle(window_s=60, per_address=10, per_key=5, max_entries=1000, clock=clock)
    for i in range(50_000):
        t.failed(f"addr{i}", f"p{i}")
    assert t.sizes() == (1000, 1000)
    clock.now += 61
    t.failed("late", "late")  # everything older than the window is forgotten at the next failure
    assert t.sizes() == (1, 1)


def test_what_is_kept_of_a_key_is_its_public_prefix_never_the_whole_key() -> None:
    assert key_prefix(SECRET) == SECRET[:12] == "sk-arch-AbCd"
    assert key_prefix("hunter2") == "hun"  # a short (admin) key: never more than half of it
    assert key_prefix("") == ""
    assert key_prefix("ab\x00\u202ecdefghijkl") == "ab??cde"


def test_addresses_are_counted_per_ipv4_address_and_per_ipv6_64() -> None:
    assert address_bucket("192.0.2.7") == "192.0.2.7"
    assert (
        address_bucket("2001:db8:1:2:aaaa::1")
        == address_bucket("2001:db8:1:2:bbbb::9")
        == "2001:db8:1:2::/64"
    )
    assert address_bucket("2001:db8:1:3::1") != address_bucket("2001:db8:1:2::1")
    assert address_bucket("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_bucket(None) == "unknown"


def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]
    assert client_address("192.0.2.7", "198.51.100.1", proxies) == "192.0.2.7"  # not a proxy: ignored
    assert client_address("10.1.2.3", "198.51.100.1", proxies) == "198.51.100.1"
    # the client may send its own header: only the right-most untrusted hop counts
    assert client_address("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.9.9.9", proxies) == "198.51.100.1"
    assert client_address("::1", None, proxies) == "::1"
    assert client_address("192.0.2.7", "198.51.100.1", []) == "192.0.2.7"
    cfg = parse_config({"auth": {"login": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}}})
    assert cfg.auth.login.trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]
    with pytest.raises(ConfigError, match=r"auth\.login\.trusted_proxies.*not an IP address or network"):
        parse_config({"auth": {"login": {"trusted_proxies": ["proxy.example"]}}})


def test_the_admin_key_from_the_environment_keeps_the_login_and_session_settings() -> None:
    data = {"auth": {"login": {"failures_per_address": 3}, "sessions": {"per_key": 2}}}
    cfg = parse_config(data, env={"ARCHITECT_ADMIN_KEY": "sk-from-env"})
    assert cfg.auth.admin_key == "sk-from-env"
    assert cfg.auth.login.failures_per_address == 3 and cfg.auth.sessions.per_key == 2


def test_failed_logins_are_audited_first_one_by_one_then_summed_up() -> None:
    clock = Clock()
    audit = AuditThrottle(window_s=60, per_address=5, total=8, clock=clock)
    rows = [r for i in range(200) for r in audit.failed("10.0.0.1", "sk-arch-AbCd", "invalid_key")]
    assert len(rows) == 5
    assert {(r.actor, r.action, r.target) for r in rows} == {("ip:10.0.0.1", "login.failed", "sk-arch-AbCd")}
    rows = [r for i in range(10) for r in audit.failed(f"10.0.1.{i}", "x", "rate_limited")]
    assert len(rows) == 3  # the process-wide cap: 8 single rows per window
    assert audit.due() == []  # the window has not ended
    clock.now += 60
    (summary, single) = audit.failed("10.0.0.1", "sk-arch-AbCd", "invalid_key")
    assert summary.action == "login.failed.summary" and summary.actor == "system:login"
    assert summary.after["failures_not_listed"] == 195 + 7 and summary.after["addresses"] == 8
    assert summary.after["top_addresses"]["10.0.0.1"] == 195
    assert single.action == "login.failed"  # a new window: single rows again
    assert audit.due(force=True) == []  # nothing held back in the new window yet


def test_login_tokens_are_issued_by_the_server_bound_to_the_cookie_and_expire() -> None:
    clock = Clock()
    tokens = LoginTokens(ttl_s=3600, clock=clock)
    token = tokens.issue()
    assert tokens.valid(token, token)
    assert not tokens.valid("chosen-by-the-client", "chosen-by-the-client")
    assert not tokens.valid(token, tokens.issue())  # bound to the cookie it was set with
    assert not tokens.valid(token, "")
    nonce, expiry, mac = token.split(".")
    forged = f"{nonce}.{int(expiry) + 10_000}.{mac}"  # a longer life is not the server's
    assert not tokens.valid(forged, forged)
    assert not LoginTokens(clock=clock).valid(token, token)  # another process (secret) did not make it
    clock.now += 3601
    assert not tokens.valid(token, token)
