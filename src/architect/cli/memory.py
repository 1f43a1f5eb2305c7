"""The memory allocator `architect serve` runs on, and glibc's knobs when it runs on glibc.

`server.allocator` chooses it:
- `jemalloc`: the process runs on jemalloc (Debian's `libjemalloc2`), Python's objects included. When
  the library is not loaded yet, `serve` executes itself again (the same pid, arguments and environment)
  with the library in `LD_PRELOAD` and `PYTHONMALLOC=malloc` (an operator's own PYTHONMALLOC wins); both
  are put back as they were right after, so the programs the server starts (agents, validators, git)
  run as they would have. Under sustained load glibc's malloc and pymalloc keep more and more free
  memory resident while live memory stays flat; on jemalloc the resident size stays level
  (bench/RESULTS.md, "Memory over ten minutes: the allocator").
- `system`: the C library's malloc, with its arenas capped (`MALLOC_ARENAS`) and, when
  `server.malloc_trim_s` is set, `malloc_trim` on a thread of its own.
- `auto` (the default): jemalloc where the library is installed (Linux), else `system`.

`choose` decides from facts passed in (so it is tested without re-executing anything); `apply` reads
them from this process and acts."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from architect.errors import ArchitectError

__all__ = [
    "MALLOC_ARENAS",
    "AllocatorError",
    "Decision",
    "MallocTrimmer",
    "apply",
    "choose",
    "glibc_malloc_trim",
    "jemalloc_library",
    "jemalloc_path",
    "limit_malloc_arenas",
]

Allocator = Literal["auto", "jemalloc", "system"]

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number for the arena cap
_JEMALLOC = "libjemalloc.so.2"
# The variables the re-execution sets: jemalloc preloaded, and Python's small objects allocated by it
# too (`PYTHONMALLOC=malloc`; pymalloc keeps empty pools resident inside arenas still in use).
_JEMALLOC_ENV = ("LD_PRELOAD", "PYTHONMALLOC")
# Set for the re-executed process only: those variables' values before (JSON, null when unset).
_ENV_BEFORE = "ARCHITECT_ALLOCATOR_ENV"


class AllocatorError(ArchitectError):
    """`server.allocator: jemalloc` where jemalloc cannot be loaded."""


@dataclass(frozen=True)
class Decision:
    """What `apply` does: `reexec` with `preload` prepended to LD_PRELOAD, or run on `allocator`
    (`path`: the jemalloc file it runs from; `objects`: Python's objects too, rather than in pymalloc's
    arenas)."""

    allocator: Literal["jemalloc", "system"]
    reexec: bool = False
    preload: str | None = None
    note: str = ""
    path: str | None = None
    objects: bool = False


def jemalloc_library() -> str | None:
    """The name of the installed jemalloc shared library as the dynamic linker finds it (its cache),
    or None. Nothing is loaded: LD_PRELOAD takes the name and searches the same paths."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.util.find_library("jemalloc")


def jemalloc_path() -> str | None:
    """The file this process runs jemalloc from, or None when it does not."""
    for path in _mapped_files():
        if "libjemalloc" in path.rsplit("/", 1)[-1]:
            return path
    return None


def _mapped_files() -> list[str]:
    try:
        text = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    return [line.split(None, 5)[5] for line in text.splitlines() if line.count(" ") >= 5 and "/" in line]


def choose(wanted: Allocator, *, loaded: bool, library: str | None, reexecuted: bool) -> Decision:
    """The allocator to run on, given what is asked, whether jemalloc is already loaded, where its
    library is, and whether this process is already the re-executed one."""
    if wanted == "system":
        return Decision("system")
    if loaded:
        return Decision("jemalloc")
    if library is not None and not reexecuted:
        return Decision("jemalloc", reexec=True, preload=library)
    why = (
        f"{library} was preloaded but is not mapped (the dynamic linker refused it)"
        if library is not None
        else f"{_JEMALLOC} is not installed (Debian and Ubuntu: apt install libjemalloc2)"
    )
    if wanted == "jemalloc":
        raise AllocatorError(f"server.allocator: jemalloc: {why}")
    return Decision("system", note=f"jemalloc not used: {why}; resident memory creeps under sustained load")


def apply(wanted: Allocator) -> Decision:
    """Make this process run on the allocator `choose` picks: re-execute it (does not return) or, in the
    re-executed process, put the environment back as it was. Call it before threads start."""
    env = dict(os.environ)
    saved = env.get(_ENV_BEFORE)
    reexecuted = saved is not None
    objects = env.get("PYTHONMALLOC", "")
    if saved is not None:  # the programs this server starts get the environment it was started with
        os.environ.pop(_ENV_BEFORE, None)
        for name, value in json.loads(saved).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    path = jemalloc_path()
    loaded = path is not None
    decision = choose(
        wanted, loaded=loaded, library=None if loaded else jemalloc_library(), reexecuted=reexecuted
    )
    if decision.reexec and decision.preload is not None:
        env[_ENV_BEFORE] = json.dumps({name: env.get(name) for name in _JEMALLOC_ENV})
        env["LD_PRELOAD"] = f"{decision.preload} {env.get('LD_PRELOAD', '')}".strip()
        env.setdefault("PYTHONMALLOC", "malloc")  # an operator's choice wins
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, env)
    if decision.allocator == "jemalloc":
        return replace(decision, path=path, objects=objects == "malloc")
    return decision


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas for this process (before the server's threads start); True when set.

    glibc gives threads that allocate at once arenas of their own, up to eight per core, and memory
    freed in an arena serves only that arena. The ledger writer and the worker threads that run store
    calls (a budget's reserve and settle) then fragment several arenas, and resident memory creeps up
    over minutes of load (bench/RESULTS.md). Python's GIL serialises most allocation anyway, so two
    arenas cost no measurable contention. Nothing is changed when `MALLOC_ARENA_MAX` is set (the
    operator's choice) or where the C library has no `mallopt` (not Linux)."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))


def glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (not Linux, or musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


class MallocTrimmer:
    """Every `interval_s` seconds, on a daemon thread of its own, hands the free memory inside glibc's
    malloc arenas back to the system (`malloc_trim(0)`: the free pages in the middle of each arena too,
    not only at its top).

    Under sustained load the arenas keep more and more free memory resident (live allocations do not
    grow). Trimming returns part of it: the keyed memory bench's creep was lower with it but did not stop
    (bench/RESULTS.md, "Returning free arena memory"), so `server.malloc_trim_s` is off by default.
    ctypes releases the GIL for the call, so the event loop runs on while a trim walks the arenas (an
    allocation in an arena being trimmed waits for it). A no-op when `interval_s` is 0 or where there is
    no glibc `malloc_trim`."""

    def __init__(self, interval_s: float, trim: Callable[[int], int] | None = None) -> None:
        self.interval_s = interval_s
        self._trim = trim if trim is not None else (glibc_malloc_trim() if interval_s > 0 else None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.trims = 0
        self.seconds = 0.0  # time spent in malloc_trim, in all

    def start(self) -> bool:
        """Start the thread; False (nothing started) when trimming is off or unsupported."""
        if self.interval_s <= 0 or self._trim is None or self._thread is not None:
            return False
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        trim = self._trim
        assert trim is not None
        while not self._stop.wait(self.interval_s):
            t0 = time.perf_counter()
            trim(0)
            self.seconds += time.perf_counter() - t0
            self.trims += 1
