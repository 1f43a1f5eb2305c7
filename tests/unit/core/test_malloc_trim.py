"""`architect serve` hands glibc's free arena memory back periodically (`server.malloc_trim_s`), on a
thread of its own; off at 0, and a no-op where there is no glibc `malloc_trim`."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from architect.cli import serve
from architect.cli.memory import MallocTrimmer, glibc_malloc_trim
from architect.cli.serve import EXAMPLE
from architect.config import ServerConfig
from tests.helpers import wait_until


def test_the_trimmer_calls_malloc_trim_on_its_own_thread() -> None:
    calls: list[tuple[int, str]] = []

    def trim(pad: int) -> int:
        calls.append((pad, threading.current_thread().name))
        return 1

    trimmer = MallocTrimmer(0.001, trim=trim)
    assert trimmer.start() is True
    try:
        wait_until(lambda: trimmer.trims >= 3, timeout=5)
    finally:
        trimmer.stop()
    n = trimmer.trims
    assert calls[:3] == [(0, "malloc-trim")] * 3  # malloc_trim(0), never on the caller's thread
    assert trimmer.seconds >= 0
    assert trimmer.start() is False  # started once only
    assert trimmer.trims == n  # stopped: no more trims


def test_zero_turns_it_off() -> None:
    trimmer = MallocTrimmer(0, trim=lambda pad: pytest.fail("trimmed with malloc_trim_s = 0"))
    assert trimmer.start() is False
    trimmer.stop()  # stopping what never started is fine


def test_without_glibc_it_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert glibc_malloc_trim() is None
    trimmer = MallocTrimmer(10.0)
    assert trimmer.start() is False
    trimmer.stop()


def test_a_c_library_without_malloc_trim_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    class NoTrim:  # musl: a C library, but no malloc_trim in it
        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: NoTrim())
    assert glibc_malloc_trim() is None
    assert MallocTrimmer(10.0).start() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_glibc_malloc_trim_is_found_and_callable_on_linux() -> None:
    trim = glibc_malloc_trim()
    if trim is None:  # a Linux with another C library (musl)
        pytest.skip("no glibc malloc_trim here")
    assert trim(0) in (0, 1)  # 1 when it released memory


def test_serve_starts_the_trimmer_with_the_configured_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert ServerConfig().malloc_trim_s == 0  # off by default (bench/RESULTS.md: it does not flatten RSS)
    started: list[float] = []
    stopped: list[bool] = []

    class Spy(MallocTrimmer):
        def start(self) -> bool:
            started.append(self.interval_s)
            return False

        def stop(self) -> None:
            stopped.append(True)

    class Stop(Exception):
        pass

    def no_server(main: object) -> None:  # the server never runs
        close = getattr(main, "close", None)  # asyncio.run gets a coroutine: close it unawaited
        if close is not None:
            close()
        raise Stop

    monkeypatch.setattr(serve.allocator, "MallocTrimmer", Spy)
    monkeypatch.setattr(serve, "_run_uvloop", no_server)
    monkeypatch.setattr(serve.asyncio, "run", no_server)
    monkeypatch.setattr(serve.allocator, "limit_malloc_arenas", lambda arenas: False)
    monkeypatch.setattr(serve.gc, "freeze", lambda: None)
    monkeypatch.setattr(serve.gc, "set_threshold", lambda *a: None)
    monkeypatch.setattr(serve.sys, "setswitchinterval", lambda s: None)
    config = tmp_path / "architect.yaml"
    # on glibc (server.allocator: system): with jemalloc the trimmer is not started
    config.write_text(EXAMPLE.read_text() + "\nserver:\n  malloc_trim_s: 7.5\n  allocator: system\n")
    with pytest.raises(Stop):
        serve.serve(config=str(config), database_url="sqlite://", port=0, log_level="warning")
    assert started == [7.5]
    assert stopped == [True]
