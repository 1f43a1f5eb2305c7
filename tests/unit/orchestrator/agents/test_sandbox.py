"""The sandbox: limits always, bwrap's read-only filesystem where it works, process groups killed."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from architect.orchestrator.agents import Limits, Sandbox, SandboxUnavailable, run_confined
from architect.orchestrator.agents import sandbox as sandbox_module


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (not yet reaped by its parent) counts as dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


async def test_probe_reports_what_it_found_and_is_cached() -> None:
    sandbox = Sandbox()
    first = await sandbox.probe()
    assert first.kind in ("bwrap", "rlimits") and first.detail
    assert await sandbox.probe() is first and sandbox.isolation is first
    off = await Sandbox(use_bwrap=False).probe()
    assert off.kind == "rlimits" and "turned off" in off.detail


async def test_without_bwrap_only_limits_apply_and_requiring_it_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    isolation = await Sandbox().probe()
    assert isolation.kind == "rlimits" and "bwrap is not installed" in isolation.detail
    with pytest.raises(SandboxUnavailable, match="bwrap is required"):
        await Sandbox(use_bwrap=True).probe()


async def test_bwrap_confines_writes_to_the_writable_paths(bwrap: Sandbox, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    sibling = tmp_path / "sibling.txt"
    script = (
        "echo inside > inside.txt && echo wrote-inside; "
        f"echo x > {sibling} && echo wrote-sibling; "
        "echo x > /usr/architect-sandbox-test && echo wrote-usr; "
        "touch $HOME/.architect-sandbox-test 2>/dev/null && echo wrote-home; true"
    )
    try:
        ran = await run_confined(["/bin/sh", "-c", script], cwd=work, env={"HOME": "/root"}, timeout_s=20,
                                 sandbox=bwrap, writable=[work])  # fmt: skip
    finally:
        for stray in (Path("/usr/architect-sandbox-test"), Path("/root/.architect-sandbox-test")):
            stray.unlink(missing_ok=True)
    assert ran.code == 0, ran.output
    assert (work / "inside.txt").read_text() == "inside\n"
    assert "wrote-inside" in ran.output
    assert "wrote-usr" not in ran.output and "Read-only file system" in ran.output
    assert "wrote-home" not in ran.output
    assert "wrote-sibling" not in ran.output and not sibling.exists()  # /tmp is read-only too
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bwrap.wrap(["true"], writable=[tmp_path / "absent"], cwd=tmp_path)


async def test_rlimit_fsize_stops_a_big_file(limits_only: Sandbox, tmp_path: Path) -> None:
    small = Sandbox(Limits(file_bytes=64 * 1024), use_bwrap=False)
    ran = await run_confined(["/bin/sh", "-c", "head -c 1000000 /dev/zero > big; echo rc=$?"], cwd=tmp_path,
                             env={}, timeout_s=20, sandbox=small, writable=[tmp_path])  # fmt: skip
    assert (tmp_path / "big").stat().st_size == 64 * 1024
    assert "rc=0" not in ran.output
    ok = await run_confined(["/bin/sh", "-c", "head -c 1000 /dev/zero > small"], cwd=tmp_path, env={},
                            timeout_s=20, sandbox=limits_only, writable=[tmp_path])  # fmt: skip
    assert ok.code == 0 and (tmp_path / "small").stat().st_size == 1000


async def test_limits_are_set_in_the_child(limits_only: Sandbox, tmp_path: Path) -> None:
    sandbox = Sandbox(Limits(cpu_s=77, open_files=99, processes=512, file_bytes=1 << 30), use_bwrap=False)
    ran = await run_confined(["/bin/sh", "-c", "ulimit -t; ulimit -n"], cwd=tmp_path, env={}, timeout_s=20,
                             sandbox=sandbox, writable=[])  # fmt: skip
    assert ran.output.split() == ["77", "99"]


async def test_timeout_kills_the_whole_group_and_keeps_the_output(
    limits_only: Sandbox, tmp_path: Path
) -> None:
    pids: list[int] = []

    async def on_process(pgid: int | None) -> None:
        assert pgid is not None
        pids.append(pgid)

    script = "sleep 60 & echo $! > child.pid; echo started; wait"
    start = time.monotonic()
    ran = await run_confined(["/bin/sh", "-c", script], cwd=tmp_path, env={}, timeout_s=1.0,
                             sandbox=limits_only, writable=[], on_process=on_process)  # fmt: skip
    assert ran.code is None and ran.timed_out
    assert "started" in ran.output
    assert time.monotonic() - start < 8
    child = int((tmp_path / "child.pid").read_text())
    assert pids and os.getpgid(os.getpid()) != pids[0]
    for _ in range(50):
        if not alive(child):
            break
        await asyncio.sleep(0.05)
    assert not alive(child)


async def test_cancellation_kills_the_group(limits_only: Sandbox, tmp_path: Path) -> None:
    task = asyncio.create_task(
        run_confined(
            ["/bin/sh", "-c", "sleep 60 & echo $! > child.pid; wait"],
            cwd=tmp_path,
            env={},
            timeout_s=None,
            sandbox=limits_only,
            writable=[],
        )
    )
    for _ in range(100):
        if (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    child = int((tmp_path / "child.pid").read_text())
    for _ in range(50):
        if not alive(child):
            break
        await asyncio.sleep(0.05)
    assert not alive(child)


async def test_a_child_left_behind_does_not_hold_the_run(limits_only: Sandbox, tmp_path: Path) -> None:
    start = time.monotonic()
    ran = await run_confined(["/bin/sh", "-c", "sleep 60 & echo done; exit 3"], cwd=tmp_path, env={},
                             timeout_s=30, sandbox=limits_only, writable=[])  # fmt: skip
    assert ran.code == 3 and "done" in ran.output
    assert time.monotonic() - start < 5


async def test_stdin_is_fed_and_the_environment_is_filtered(
    limits_only: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-provider-key")
    monkeypatch.setenv("LC_ALL", "C")
    script = 'cat; echo "key=${OPENAI_API_KEY:-unset} lc=$LC_ALL mine=$MINE path=${PATH:+set}"'
    ran = await run_confined(["/bin/sh", "-c", script], cwd=tmp_path, env={"MINE": "1"}, timeout_s=20,
                             sandbox=limits_only, writable=[], stdin=b"from stdin\n")  # fmt: skip
    assert ran.output == "from stdin\nkey=unset lc=C mine=1 path=set\n"


async def test_under_bwrap_the_program_runs_in_cwd_with_the_network_kept(
    bwrap: Sandbox, tmp_path: Path
) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 5).close(); print('connected')"
    try:
        ran = await run_confined(["/bin/sh", "-c", f"pwd; python3 -c \"{probe}\""], cwd=tmp_path, env={},
                                 timeout_s=20, sandbox=bwrap, writable=[tmp_path])  # fmt: skip
    finally:
        server.close()
    assert ran.code == 0, ran.output
    assert ran.output.splitlines() == [str(tmp_path), "connected"]


def test_wrap_needs_a_probe_and_existing_writable_paths(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"before Sandbox\.probe"):
        Sandbox().wrap(["true"], writable=[], cwd=tmp_path)


async def test_under_bwrap_nothing_outlives_the_run_and_the_worker_is_out_of_sight(
    bwrap: Sandbox, tmp_path: Path
) -> None:
    mark = f"60.{os.getpid()}{time.monotonic_ns() % 100000}"  # a sleep no other process on the machine runs
    script = f"setsid sleep {mark} & kill -0 {os.getpid()} 2>/dev/null && echo worker-visible; echo started"
    ran = await run_confined(["/bin/sh", "-c", script], cwd=tmp_path, env={}, timeout_s=20, sandbox=bwrap,
                             writable=[tmp_path])  # fmt: skip
    assert ran.code == 0 and ran.output == "started\n"
    await asyncio.sleep(0.2)
    escapees = [
        p
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _cmdline(p) == f"sleep {mark}" and alive(int(p.name))
    ]
    assert escapees == []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


async def test_a_run_cancelled_while_its_process_starts_leaves_no_child(tmp_path: Path) -> None:
    """The start's cancellation lands after the shell ran (under load the shell can start a child
    before `create_subprocess_exec` returns): the group goes down with it."""
    from architect.orchestrator.agents.sandbox import _abandon

    creating = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            "/bin/sh", "-c", "sleep 60 & echo $! > child.pid; wait", cwd=str(tmp_path),
            stdout=asyncio.subprocess.PIPE, start_new_session=True,
        )
    )  # fmt: skip
    for _ in range(100):
        if (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip():
            break
        await asyncio.sleep(0.02)
    child = int((tmp_path / "child.pid").read_text())
    assert alive(child)
    await _abandon(creating)
    for _ in range(50):
        if not alive(child):
            break
        await asyncio.sleep(0.05)
    assert not alive(child)
