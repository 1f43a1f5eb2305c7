"""`server.allocator`: which allocator `architect serve` runs on, and the re-execution that puts
jemalloc under it (the same pid, LD_PRELOAD back as it was for the programs it starts)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from architect.cli.memory import AllocatorError, Decision, choose, jemalloc_library
from architect.config import ServerConfig
from tests.conftest import IN_CI

LIB = "libjemalloc.so.2"


def test_auto_is_the_default() -> None:
    assert ServerConfig().allocator == "auto"


@pytest.mark.parametrize("wanted", ["auto", "jemalloc"])
def test_a_process_not_yet_on_jemalloc_executes_itself_again_with_it(wanted: str) -> None:
    d = choose(wanted, loaded=False, library=LIB, reexecuted=False)  # type: ignore[arg-type]
    assert d == Decision("jemalloc", reexec=True, preload=LIB)


@pytest.mark.parametrize("wanted", ["auto", "jemalloc"])
def test_a_process_on_jemalloc_stays_as_it_is(wanted: str) -> None:
    assert choose(wanted, loaded=True, library=None, reexecuted=True) == Decision("jemalloc")  # type: ignore[arg-type]


def test_system_never_executes_anything() -> None:
    assert choose("system", loaded=False, library=LIB, reexecuted=False) == Decision("system")


def test_auto_without_the_library_runs_on_the_c_library_and_says_why() -> None:
    d = choose("auto", loaded=False, library=None, reexecuted=False)
    assert (d.allocator, d.reexec) == ("system", False)
    assert "apt install libjemalloc2" in d.note


def test_jemalloc_asked_for_but_not_installed_is_an_error_naming_the_setting() -> None:
    with pytest.raises(AllocatorError, match=r"^server\.allocator: jemalloc: .*not installed"):
        choose("jemalloc", loaded=False, library=None, reexecuted=False)


def test_a_preload_the_linker_refused_is_not_retried() -> None:
    """Re-executed, yet jemalloc is not mapped: no second re-execution (no loop)."""
    d = choose("auto", loaded=False, library=LIB, reexecuted=True)
    assert (d.allocator, d.reexec) == ("system", False)
    assert "refused" in d.note
    with pytest.raises(AllocatorError, match="refused"):
        choose("jemalloc", loaded=False, library=LIB, reexecuted=True)


_PROBE = """
import os, subprocess, sys
print("pid", os.getpid(), flush=True)
from architect.cli.memory import apply, jemalloc_path
d = apply(sys.argv[1])
child = subprocess.run(
    ["sh", "-c", "echo ${LD_PRELOAD-unset} ${PYTHONMALLOC-unset}"], capture_output=True, text=True
).stdout
print("on", d.allocator, jemalloc_path() is not None, d.objects, "child", child.strip(), flush=True)
"""


def _probe(wanted: str, env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, wanted],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")},
            **env,
        },
        check=True,
    ).stdout
    return out.split("\n")


needs_jemalloc = pytest.mark.skipif(
    not IN_CI and jemalloc_library() is None,
    reason="libjemalloc2 is not installed (.ci/run installs it; under CI=true it must be there)",
)


@needs_jemalloc
def test_jemalloc_is_put_under_the_same_process_and_its_children_do_not_inherit_it() -> None:
    lines = _probe("jemalloc", {})
    pids = [line for line in lines if line.startswith("pid ")]
    assert len(pids) == 2 and pids[0] == pids[1]  # executed again: same pid, started twice
    # jemalloc mapped, Python's objects allocated by it; a program it starts gets neither variable
    assert "on jemalloc True True child unset unset" in lines


@needs_jemalloc
def test_an_operators_ld_preload_is_kept_for_the_children() -> None:
    # the variables of the process it was started with, back as they were (an operator's
    # PYTHONMALLOC wins over the one jemalloc brings)
    lines = _probe("auto", {"LD_PRELOAD": "libc.so.6", "PYTHONMALLOC": "pymalloc"})
    assert "on jemalloc True False child libc.so.6 pymalloc" in lines


def test_system_runs_on_the_c_library() -> None:
    lines = _probe("system", {})
    assert sum(line.startswith("pid ") for line in lines) == 1  # not executed again
    assert any(line.startswith("on system False False") for line in lines)
