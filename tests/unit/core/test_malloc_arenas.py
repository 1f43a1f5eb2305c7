"""`architect serve` caps glibc's malloc arenas (resident memory stays flat under load; bench/RESULTS.md),
unless the operator has chosen a cap with MALLOC_ARENA_MAX."""

from __future__ import annotations

import subprocess
import sys

import pytest

from architect.cli.memory import MALLOC_ARENAS, limit_malloc_arenas

# Each check runs in a fresh interpreter: the cap is process-wide and is not undone.
_PROBE = "import sys; from architect.cli.memory import limit_malloc_arenas as f; sys.exit(0 if f({n}) else 3)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_serve_caps_the_arenas_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    probe = subprocess.run([sys.executable, "-c", _PROBE.format(n=MALLOC_ARENAS)], check=False)
    assert probe.returncode == 0  # glibc accepted the cap
    assert 1 <= MALLOC_ARENAS <= 4


def test_an_operators_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas(MALLOC_ARENAS) is False
