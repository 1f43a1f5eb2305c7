"""Confinement of what agents and validators run: resource limits always, a bubblewrap filesystem
sandbox where it works.

Every program runs in a process group of its own (a new session) under a small shell that kills the
whole group when the worker dies (SIGTERM through `PR_SET_PDEATHSIG`, the hook of the `command`
executor) or when the run times out or is cancelled (`kill_group`). Before it starts, the child sets
CPU time, process count, file size and open file limits (`Limits`); there is no address-space limit,
because Node and Bun reserve gigabytes of it and die under one.

When `bwrap` (Debian's `bubblewrap`) can create its namespaces here, which `Sandbox.probe` finds out
by running it once, the program also runs in a mount namespace: the whole filesystem read-only (`/tmp`
too: programs and checkouts may live there; temporary files go to TMPDIR, in the attempt's scratch
directory), fresh `/dev` and `/proc`, and writable only the paths given (the worktree and its git directory, the attempt's
scratch directory). It runs in a PID namespace of its own too: it cannot see or signal the worker,
and when its first process ends or is killed, every process it started ends with it, even one that
left the process group. The network is kept, so the gateway stays reachable. Where bwrap is missing
or cannot run (no user namespaces in a container), only the limits apply, and `Isolation` says so
and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from architect.errors import ArchitectError
from architect.orchestrator.executors.command import _death_signal, kill_group

__all__ = [
    "Isolation",
    "Limits",
    "OnProcess",
    "Ran",
    "Sandbox",
    "SandboxUnavailable",
    "base_env",
    "run_confined",
]

OnProcess = Callable[[int | None], Awaitable[None]]
"""Told the process group id of each program started, so a lost worker's group can be killed."""

OUTPUT_CAP = 1 << 20  # bytes of a program's output kept (its end)
PROBE_TIMEOUT_S = 10.0

# Under this shell the program is the group's only other member at first; the trap takes the whole
# group down when the worker dies. A background job's stdin would be /dev/null: fd 3 carries ours.
_WRAPPER = 'exec 3<&0; trap "kill -KILL 0" TERM HUP; "$@" <&3 3<&- & wait $!'

# What a confined program inherits from the worker's environment; everything else (provider API keys,
# the worker's own settings) stays out, so an agent's model calls can only go through its own key.
_INHERITED = (
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM", "USER", "LOGNAME", "SHELL", "VIRTUAL_ENV",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
    "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
)  # fmt: skip


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a confined program: the worker's locale, PATH, proxy and CA variables
    (`LC_*` too), then `extra` over them."""
    env = {k: v for k, v in os.environ.items() if k in _INHERITED or k.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    env.update(extra or {})
    return env


class SandboxUnavailable(ArchitectError):
    """bwrap was required (`use_bwrap=True`) but cannot run here."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-process resource limits of a confined program (and each of its children)."""

    cpu_s: int = 1800
    processes: int = 512
    file_bytes: int = 1 << 30
    open_files: int = 1024


@dataclass(frozen=True, slots=True)
class Isolation:
    """What confinement programs get here: `bwrap` (filesystem sandbox + limits) or `rlimits` only;
    `detail` says why (the probe's error when bwrap is unusable)."""

    kind: Literal["bwrap", "rlimits"]
    detail: str


@dataclass(frozen=True, slots=True)
class Ran:
    """A confined run: exit code (None when it timed out and was killed), its output (stdout and
    stderr interleaved, the last `OUTPUT_CAP` bytes), and how long it took."""

    code: int | None
    output: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.code is None


def _bwrap_options(writable: Sequence[Path], cwd: Path | None) -> list[str]:
    # `/tmp` stays as it is, read-only like the rest: programs, virtualenvs and checkouts may live
    # under it (a fresh clone in /tmp, say); agents write their temporary files to TMPDIR (scratch)
    opts = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid"]
    for path in writable:
        p = str(Path(path).absolute())
        opts += ["--bind", p, p]
    if cwd is not None:
        opts += ["--chdir", str(Path(cwd).absolute())]
    return [*opts, "--die-with-parent"]


class Sandbox:
    """Limits for every run, and bubblewrap where `probe` finds it usable.

    `use_bwrap`: None probes and falls back to limits only; False never uses bwrap; True probes and
    raises `SandboxUnavailable` when bwrap cannot run."""

    def __init__(self, limits: Limits = Limits(), *, use_bwrap: bool | None = None) -> None:
        self.limits = limits
        self.use_bwrap = use_bwrap
        self._isolation: Isolation | None = None
        self._bwrap: str | None = None
        self._lock = asyncio.Lock()

    @property
    def isolation(self) -> Isolation | None:
        """The probe's finding, None before the first `probe()`."""
        return self._isolation

    async def probe(self) -> Isolation:
        """Find out (once; cached) whether bwrap can sandbox a program here, by running it."""
        async with self._lock:
            if self._isolation is None:
                self._isolation = await self._probe()
        if self._isolation.kind != "bwrap" and self.use_bwrap:
            raise SandboxUnavailable(f"bwrap is required but unusable: {self._isolation.detail}")
        return self._isolation

    async def _probe(self) -> Isolation:
        if self.use_bwrap is False:
            return Isolation("rlimits", "bwrap turned off; resource limits only")
        found = shutil.which("bwrap")
        if found is None:
            return Isolation("rlimits", "bwrap is not installed (not on PATH); resource limits only")
        argv = [found, *_bwrap_options([], None), "true"]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            return Isolation("rlimits", f"{found} could not start: {exc}; resource limits only")
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT_S)
        except TimeoutError:
            kill_group(proc.pid)
            await proc.wait()
            return Isolation(
                "rlimits", f"{found} did not finish in {PROBE_TIMEOUT_S:g}s; resource limits only"
            )
        if proc.returncode != 0:
            err = out.decode(errors="replace").strip() or f"exit code {proc.returncode}"
            return Isolation("rlimits", f"{found} cannot sandbox here: {err}; resource limits only")
        self._bwrap = found
        return Isolation("bwrap", f"{found}: read-only system, writable worktree and scratch, network kept")

    def wrap(self, argv: Sequence[str], *, writable: Sequence[Path], cwd: Path) -> list[str]:
        """`argv` under bwrap when the probe found it usable (read-only `/`, `/tmp` included, fresh
        `/dev` `/proc`, its own PID namespace, each of `writable` bound read-write, `cwd` as the working
        directory), else unchanged. Writable paths must exist. Call after `probe()`."""
        if self._isolation is None:
            raise RuntimeError("Sandbox.wrap before Sandbox.probe")
        if self._isolation.kind != "bwrap" or self._bwrap is None:
            return list(argv)
        for path in writable:
            if not Path(path).exists():
                raise FileNotFoundError(f"sandbox: the writable path {path} does not exist")
        return [self._bwrap, *_bwrap_options(writable, cwd), "--", *argv]

    def preexec(self) -> Callable[[], None]:
        """The child's pre-exec hook: CPU, process, file size and open file limits (never above the
        current hard limit), then the death signal that takes the group down with the worker."""
        lim = self.limits
        wanted = (
            (resource.RLIMIT_CPU, lim.cpu_s),
            (resource.RLIMIT_NPROC, lim.processes),
            (resource.RLIMIT_FSIZE, lim.file_bytes),
            (resource.RLIMIT_NOFILE, lim.open_files),
        )
        death = _death_signal()

        def hook() -> None:
            for which, value in wanted:
                _, hard = resource.getrlimit(which)
                v = value if hard == resource.RLIM_INFINITY else min(value, hard)
                resource.setrlimit(which, (v, v))
            if death is not None:
                death()

        return hook


async def run_confined(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float | None,
    sandbox: Sandbox,
    writable: Sequence[Path],
    on_process: OnProcess | None = None,
    stdin: bytes | None = None,
) -> Ran:
    """Run `argv` in `cwd`, confined by `sandbox`, in a process group of its own that is killed on
    timeout or cancellation. The environment is `base_env(env)`; `stdin` is fed then closed (none:
    /dev/null). The output kept so far is returned on timeout too."""
    await sandbox.probe()
    command = ["/bin/sh", "-c", _WRAPPER, "architect-agent", *sandbox.wrap(argv, writable=writable, cwd=cwd)]
    start = time.monotonic()
    creating = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *command,
            cwd=str(cwd),
            env=base_env(env),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=sandbox.preexec(),
        )
    )
    try:
        proc = await asyncio.shield(creating)
    except asyncio.CancelledError:
        # cancelled while the process was starting: its group may already run (a child the shell
        # started outlives the shell): take the whole group down before giving up
        await asyncio.shield(_abandon(creating))
        raise
    buf = bytearray()

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            buf.extend(chunk)
            if len(buf) > 2 * OUTPUT_CAP:
                del buf[: len(buf) - OUTPUT_CAP]

    async def feed() -> None:
        assert proc.stdin is not None and stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin)
            await proc.stdin.drain()
        proc.stdin.close()

    reader = asyncio.create_task(pump())
    writer = asyncio.create_task(feed()) if stdin is not None else None
    code: int | None = None
    try:
        if on_process is not None:
            await on_process(proc.pid)
        code = await asyncio.wait_for(_exited(proc), timeout_s)
    except TimeoutError:
        pass
    except BaseException:  # cancelled (claim lost, shutdown): take the whole group down
        kill_group(proc.pid)
        await asyncio.shield(_settle(proc, reader))
        raise
    finally:
        if writer is not None:
            writer.cancel()
    # whatever of the group is left (a timed-out run, or a child left behind) goes too
    kill_group(proc.pid)
    await _settle(proc, reader)
    out = bytes(buf[-OUTPUT_CAP:]).decode(errors="replace")
    return Ran(code, out, time.monotonic() - start)


async def _abandon(creating: asyncio.Future[asyncio.subprocess.Process]) -> None:
    """Kill the group of a process whose start was cancelled, once it has started, and reap it."""
    try:
        proc = await creating
    except Exception:
        return  # it never started
    kill_group(proc.pid)

    async def drain() -> None:
        assert proc.stdout is not None
        await proc.stdout.read()

    await _settle(proc, asyncio.create_task(drain()))


async def _exited(proc: asyncio.subprocess.Process) -> int:
    """The shell's exit code as soon as it exits (`Process.wait` would also wait for every holder of
    the output pipe, e.g. a child left running in the background)."""
    while proc.returncode is None:
        await asyncio.sleep(0.02)
    return proc.returncode


async def _settle(proc: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """After the group was killed: reap the shell and drain what output is left (a process that
    escaped the group may hold the pipe open, so the reader is given up after a few seconds)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), 5)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader, 5)
