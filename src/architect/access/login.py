"""Guards of the dashboard login form (POST /ui/login).

- `LoginThrottle`: failed logins are counted in a sliding window per client address (IPv6 addresses
  per /64) and per presented key prefix (at most the first `VISIBLE_CHARS` characters a key shows
  publicly, and never more than half of what was typed, so the audit log and memory never hold a whole
  key). Over either limit every login is refused with a retry time, a correct key included; refused
  attempts are not counted again and successful logins never count. Each map holds at most
  `max_entries` keys, least recently failed dropped first, and each key at most `limit` timestamps,
  so a flood of distinct addresses costs bounded memory.
- `AuditThrottle`: which failures become audit rows. In each window an address gets its first
  `per_address` failures written one by one and the process at most `total`; the rest are counted and
  written as one `login.failed.summary` row when the window ends (or at shutdown).
- `LoginTokens`: the form's CSRF token is issued by the server: a random nonce, an expiry and an
  HMAC-SHA256 of both under a per-process random secret. The same token goes into the login cookie and
  the form; a login is accepted only when both match and the server made the token and it has not
  expired, so a value chosen by a client is refused.

`LoginGuard` holds the three for one process (the runtime's `login`) and writes the audit rows
through the access store, off the event loop."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from architect.access.keys import VISIBLE_CHARS
from architect.config import LoginConfig

__all__ = [
    "AuditRow",
    "AuditThrottle",
    "LoginGuard",
    "LoginThrottle",
    "LoginTokens",
    "address_bucket",
    "client_address",
    "key_prefix",
]

log = logging.getLogger("architect.access")


def key_prefix(key: str) -> str:
    """What of a presented key may be kept: its public prefix, never more than half of it, printable."""
    shown = key[: min(VISIBLE_CHARS, len(key) // 2)]
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in shown)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The client's address: the connection's peer, or, when the peer is a trusted proxy, the
    right-most X-Forwarded-For address that is not a trusted proxy (the ones left of it could be
    written by the client)."""

    def is_trusted(host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if peer is None or not forwarded_for or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer


def address_bucket(host: str | None) -> str:
    """The client address failures are counted against: IPv4 as is, IPv6 by its /64."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Failures:
    """Failure timestamps per name in a sliding window, LRU-bounded in names and in times per name."""

    def __init__(self, limit: int, window_s: float, max_entries: int) -> None:
        self.limit, self.window_s, self.max_entries = limit, window_s, max_entries
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, name: str, now: float) -> float | None:
        times = self._times.get(name)
        if times is None or len(times) < self.limit:
            return None
        wait = times[0] + self.window_s - now  # the limit-th most recent failure leaves the window then
        return wait if wait > 0 else None

    def add(self, name: str, now: float) -> None:
        times = self._times.get(name)
        if times is None:
            times = self._times[name] = deque(maxlen=self.limit)
        else:
            self._times.move_to_end(name)
        times.append(now)
        while self._times:  # forget names whose last failure has left the window, then the least recent
            oldest = next(iter(self._times.values()))
            if now - oldest[-1] < self.window_s and len(self._times) <= self.max_entries:
                break
            self._times.popitem(last=False)

    def __len__(self) -> int:
        return len(self._times)


class LoginThrottle:
    """Failed logins per address and per key prefix; `clock` is monotonic seconds (injectable)."""

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        per_address: int = 10,
        per_key: int = 5,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._addresses = _Failures(per_address, window_s, max_entries)
        self._prefixes = _Failures(per_key, window_s, max_entries)

    def retry_after(self, address: str, prefix: str) -> float | None:
        """Seconds until a login from `address` with a key starting `prefix` may be tried, or None."""
        now = self.clock()
        waits = [
            w
            for w in (self._addresses.retry_after(address, now), self._prefixes.retry_after(prefix, now))
            if w
        ]
        return max(waits) if waits else None

    def failed(self, address: str, prefix: str) -> None:
        now = self.clock()
        self._addresses.add(address, now)
        self._prefixes.add(prefix, now)

    def sizes(self) -> tuple[int, int]:
        """How many addresses and prefixes are tracked (for tests and diagnostics)."""
        return len(self._addresses), len(self._prefixes)


@dataclass(frozen=True, slots=True)
class AuditRow:
    actor: str
    action: str
    target: str | None
    after: dict[str, Any] = field(default_factory=dict)


class AuditThrottle:
    """Turns failed logins into a bounded number of audit rows per window (tumbling windows)."""

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        per_address: int = 5,
        total: int = 100,
        top: int = 20,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_s, self.per_address, self.total, self.top = window_s, per_address, total, top
        self.max_entries = max_entries
        self.clock = clock
        self._start: float | None = None
        self._written = 0
        self._per_address: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}
        self._suppressed_total = 0

    def failed(self, address: str, prefix: str, reason: str) -> list[AuditRow]:
        """Rows to write for one failed login: its own row, a summary of an ended window, both or none."""
        rows = self.due()
        now = self.clock()
        if self._start is None:
            self._start = now
        seen = self._per_address.get(address, 0)
        if seen < self.per_address and self._written < self.total:
            self._written += 1
            self._per_address[address] = seen + 1
            rows.append(AuditRow(f"ip:{address}", "login.failed", prefix, {"reason": reason}))
            return rows
        self._suppressed_total += 1
        if address in self._suppressed or len(self._suppressed) < self.max_entries:
            self._suppressed[address] = self._suppressed.get(address, 0) + 1
        return rows

    def due(self, *, force: bool = False) -> list[AuditRow]:
        """The summary of the current window if it has ended (or `force`), starting a new one."""
        if self._start is None:
            return []
        now = self.clock()
        if not force and now < self._start + self.window_s:
            return []
        rows = []
        if self._suppressed_total:
            top = sorted(self._suppressed.items(), key=lambda kv: kv[1], reverse=True)[: self.top]
            rows.append(
                AuditRow(
                    "system:login",
                    "login.failed.summary",
                    None,
                    {
                        "from": self._start,
                        "to": now,
                        "failures_not_listed": self._suppressed_total,
                        "addresses": len(self._suppressed),
                        "top_addresses": dict(top),
                    },
                )
            )
        self._start = None
        self._written = self._suppressed_total = 0
        self._per_address.clear()
        self._suppressed.clear()
        return rows


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class LoginTokens:
    """Server-issued CSRF tokens for the login form: `nonce.expiry.mac`, valid for `ttl_s`."""

    def __init__(self, *, ttl_s: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._secret = secrets.token_bytes(32)

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def issue(self) -> str:
        payload = f"{secrets.token_urlsafe(16)}.{math.ceil(self.clock() + self.ttl_s)}"
        return f"{payload}.{self._mac(payload)}"

    def valid(self, form_token: str, cookie_token: str) -> bool:
        """True when the form and the cookie carry the same token, issued here and not yet expired."""
        if not form_token or not hmac.compare_digest(form_token.encode(), cookie_token.encode()):
            return False
        payload, _, mac = form_token.rpartition(".")
        _, _, expiry = payload.partition(".")
        if not expiry.isascii() or not expiry.isdigit() or len(expiry) > 12:
            return False
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return False
        return int(expiry) > self.clock()


class LoginGuard:
    """The login form's throttle, audit throttle and CSRF tokens; `write` stores one audit row."""

    def __init__(self, config: LoginConfig, write: Callable[[AuditRow], Awaitable[None]]) -> None:
        self.config = config
        self.throttle = LoginThrottle(
            window_s=config.window_s, per_address=config.failures_per_address, per_key=config.failures_per_key
        )
        self.audit = AuditThrottle(window_s=config.window_s)
        self.tokens = LoginTokens()
        self.trusted = [ipaddress.ip_network(t, strict=False) for t in config.trusted_proxies]
        self._write = write

    def address(self, peer: str | None, forwarded_for: str | None) -> str:
        """The name failures of this request are counted against (see `client_address`, `address_bucket`)."""
        return address_bucket(client_address(peer, forwarded_for, self.trusted))

    def retry_after(self, address: str, prefix: str) -> float | None:
        return self.throttle.retry_after(address, prefix)

    async def failed(self, address: str, prefix: str, *, limited: bool) -> None:
        """Record a refused login: counted against its address and prefix unless it was refused for
        being over the limit (it was not tried), and audited within the audit throttle."""
        if not limited:
            self.throttle.failed(address, prefix)
        await self._store(self.audit.failed(address, prefix, "rate_limited" if limited else "invalid_key"))

    async def flush(self, *, force: bool = False) -> None:
        """Write the summary of an ended audit window (every window, and at shutdown with `force`)."""
        await self._store(self.audit.due(force=force))

    async def _store(self, rows: list[AuditRow]) -> None:
        for row in rows:
            try:
                await self._write(row)
            except Exception:  # the login answer does not depend on the audit store
                log.exception("writing the audit row %s for %s failed", row.action, row.actor)
