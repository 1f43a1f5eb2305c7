"""The async worker (procrastinate's `worker`): claims as many ready tasks as it has free slots,
runs them, heartbeats their leases, reaps expired leases, and stops cleanly.

* No prefetch: a claim asks for exactly the free slots; shared concurrency and rate limits are
  enforced by the store inside the claim, so they hold across workers and machines.
* When the shared rate limit holds a free slot back, the claim says when the next start is allowed;
  the worker sleeps until then (not until its next poll) and does not ask the store before.
* Before claiming, each executor's health check runs (cached for `health_s`, so also before the
  first claim of a task that just became ready); while one fails, its tasks are not claimed and,
  when it has ready tasks, the worker reports that it is waiting and why.
* An agent whose program is not installed here (`AgentPrograms.missing`) holds back only its own
  tasks: they are not claimed (they wait, not fail), other agents' tasks run, and `waiting` names the
  agent and what is missing. They do not keep `exit_when_idle` from exiting: with nothing else to do,
  the worker stops, counts them in `held_back` and says why they wait.
* A claimed task whose previous attempt left a process group on this host (a lost worker's orphan)
  has that group killed before the task is dispatched again.
* When a heartbeat finds a lease gone (reaped, or the task cancelled), the attempt is cancelled and
  its process group killed; its late completion would be fenced anyway.
* A claimed task whose executable fields were not written by an allowed principal (`trust`), or
  whose command or validator is outside this worker's allow-list, is never run: it is blocked
  (`untrusted_executable` / `command_not_allowed`, audited) and stays out of the queue until a person
  acts, so `exit_when_idle` still exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from architect.orchestrator.executors.base import AgentPrograms, ExecResult, Executor, TaskContext
from architect.orchestrator.executors.command import kill_group, run_validator
from architect.orchestrator.keys import KeyMinter
from architect.orchestrator.manager import Finished, Manager
from architect.store.orchestrator import DEFAULT_AGENT, ClaimOptions, Row
from architect.trust import NOT_ALLOWED, UNTRUSTED, CommandPolicy

__all__ = ["Running", "TaskKeys", "Worker", "WorkerOptions"]


@dataclass(frozen=True, slots=True)
class TaskKeys:
    """Where the gateway is and how to mint a key for a task attempt: a `command` task gets its own
    key in its environment (`ARCHITECT_GATEWAY_URL`, `ARCHITECT_API_KEY`, and the OpenAI SDK's
    `OPENAI_BASE_URL`, `OPENAI_API_KEY`), so its model calls land on the task; revoked at its end."""

    gateway_url: str
    minter: KeyMinter


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    slots: int = 4
    lease_s: float = 30.0
    heartbeat_s: float | None = None  # default lease_s / 3
    poll_s: float = 0.25
    reap_s: float | None = None  # default min(lease_s / 2, 5)
    health_s: float = 2.0
    exit_when_idle: bool = False
    claim: ClaimOptions = field(default_factory=ClaimOptions)
    commands: CommandPolicy = field(default_factory=CommandPolicy)  # allow-list; empty: any command
    worker_id: str | None = None
    host: str = field(default_factory=socket.gethostname)


@dataclass(slots=True)
class Running:
    task: Row
    started: float
    job: asyncio.Task[None] | None = None
    lost: bool = False  # its lease is gone and the attempt is being stopped


class Worker:
    def __init__(
        self,
        manager: Manager,
        executors: Mapping[str, Executor],
        options: WorkerOptions | None = None,
        *,
        on_status: Callable[[str], None] | None = None,
        keys: TaskKeys | None = None,
    ) -> None:
        self.manager = manager
        self.executors = dict(executors)
        self.opts = options or WorkerOptions()
        self.id = self.opts.worker_id or f"{self.opts.host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.running: dict[int, Running] = {}
        self.stats = {
            "claimed": 0, "succeeded": 0, "failed": 0, "retried": 0, "lost": 0, "orphans_killed": 0, "blocked": 0,
        }  # fmt: skip
        self.waiting: str | None = None
        # agents whose program is missing here -> why (their tasks are not claimed); the default agent
        self.missing_agents: dict[str, str] = {}
        self.default_agent = DEFAULT_AGENT
        self.held_back = 0  # ready tasks left waiting for those agents when the worker stopped idle
        self._on_status = on_status
        self.keys = keys
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._health: dict[str, tuple[float, str | None]] = {}  # executor -> (checked at, problem)
        self._said: dict[str, str | None] = {}  # executor -> the health problem last said
        self._features: dict[int, Row] = {}
        self._finished: list[tuple[Finished, asyncio.Future[bool]]] = []
        self._claim_lock = asyncio.Lock()
        self._flush_wake = asyncio.Event()
        self._needed: set[str] = set()
        self._needed_agents: set[str] = set()  # the agents of the ready agent tasks
        self._announced: dict[str, str] = {}  # agents said to be held back -> why
        self._needed_at = -1e9
        self._agents_at = -1e9
        self._agents: AgentPrograms | None = next(
            (ex for ex in self.executors.values() if isinstance(ex, AgentPrograms)), None
        )
        if self._agents is not None:
            self.default_agent = self._agents.default_agent
        self._next_start: float | None = None  # the rate limit allows no start before this (clock time)

    def _status(self, msg: str) -> None:
        if self._on_status is not None:
            self._on_status(msg)

    def stop(self) -> None:
        """Stop claiming; `run` returns once the running tasks finished."""
        self._stop.set()
        self._wake.set()

    # ---------------------------------------------------------------- main loop
    async def run(self) -> dict[str, int]:
        o = self.opts
        repo = self.manager.repo
        await asyncio.to_thread(repo.register_worker, self.id, o.host, os.getpid(), self.manager.clock())
        hb = asyncio.create_task(self._heartbeats())
        flusher = asyncio.create_task(self._flusher())
        reap_every = o.reap_s if o.reap_s is not None else min(o.lease_s / 2, 5.0)
        next_reap = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_reap:
                    for t in await asyncio.to_thread(self.manager.reap):
                        self._status(f"lease of {t['key']} (attempt {t['attempt']}) expired: {t['status']}")
                    next_reap = time.monotonic() + reap_every
                claimed = await self._claim()
                if not claimed and not self.running and o.exit_when_idle and await self._idle():
                    break
                if claimed and len(self.running) < o.slots:
                    continue  # more may be ready right now
                self._wake.clear()
                wait = o.poll_s
                if self._next_start is not None and len(self.running) < o.slots:
                    # the rate holds a free slot back: wake when it allows the next start
                    wait = min(self._rate_wait(), max(next_reap - time.monotonic(), 0.0))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            if self.running:
                await asyncio.gather(*(r.job for r in self.running.values() if r.job), return_exceptions=True)
        finally:
            for bg in (hb, flusher):
                bg.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bg
            for r in list(self.running.values()):
                if r.job:
                    r.job.cancel()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(repo.remove_worker, self.id)
        return dict(self.stats)

    async def _claim(self) -> list[Row]:
        async with self._claim_lock:
            free = self.opts.slots - len(self.running)
            if free <= 0 or self._stop.is_set() or self._rate_wait() > 0:
                return []
            opts = await self._claim_options()
            claimed = await asyncio.to_thread(self.manager.claim, self.id, free, self.opts.lease_s, opts)
            self._next_start = claimed.next_start_at
            self._start(claimed)
            return claimed

    def _rate_wait(self) -> float:
        """Seconds until the shared rate limit allows the next start, as the last claim said (0: now).

        The limiter's next start time only moves forward, so no claim can succeed before it.
        """
        if self._next_start is None:
            return 0.0
        return max(0.0, self._next_start - self.manager.clock())

    async def _claim_options(self) -> ClaimOptions:
        unhealthy = await self._unhealthy()
        base = self.opts.claim
        exclude = tuple({*base.exclude_executors, "manual", *unhealthy, *self._unknown_executors()})
        agents = tuple(sorted({*base.exclude_agents, *self.missing_agents}))
        return dataclasses.replace(
            base, exclude_executors=exclude, exclude_agents=agents, default_agent=self.default_agent
        )

    def _start(self, claimed: list[Row]) -> None:
        for t in claimed:
            self.stats["claimed"] += 1
            r = Running(t, time.monotonic())
            self.running[t["id"]] = r
            r.job = asyncio.create_task(self._execute(r))

    def _unknown_executors(self) -> tuple[str, ...]:
        return tuple(e for e in ("command", "python", "llm", "agent") if e not in self.executors)

    async def _unhealthy(self) -> list[str]:
        """The executors whose health check fails. Each executor is checked at most every `health_s`,
        and always before a claim that could take its tasks: a task can become ready between two
        refreshes of which executors have ready tasks (every `health_s`), so an executor without
        ready tasks at the last refresh is checked too, silently. A failing check is said (and put in
        `waiting`) for the executors with ready tasks. Also refreshes the agents whose program is
        missing (`_check_agents`)."""
        bad: list[str] = []
        now = time.monotonic()
        if now - self._needed_at >= self.opts.health_s:
            repo, feats = self.manager.repo, self.opts.claim.feature_ids
            self._needed = await asyncio.to_thread(repo.ready_executors, feats)
            self._needed_agents = (
                await asyncio.to_thread(repo.ready_agents, feats, self.default_agent)
                if self._agents is not None and "agent" in self._needed
                else set()
            )
            self._needed_at = now
        await self._check_agents(now)
        waits: list[str] = []
        for name, ex in self.executors.items():
            checked, problem = self._health.get(name, (-1e9, None))
            if now - checked >= self.opts.health_s:
                problem = await ex.health()
                self._health[name] = (now, problem)
            if problem:
                bad.append(name)
            if name not in self._needed:
                continue
            if problem != self._said.get(name):
                self._status(
                    f"waiting: {name} tasks held back, health check failed: {problem}"
                    if problem
                    else f"{name} health check passes again"
                )
                self._said[name] = problem
            if problem:
                waits.append(f"{name}: {problem}")
        waits += [
            f"agent {a}: {why}" for a, why in sorted(self.missing_agents.items()) if a in self._needed_agents
        ]
        self.waiting = "; ".join(waits) or None
        return bad

    async def _check_agents(self, now: float) -> None:
        """Refresh `missing_agents` every `health_s` (whether their tasks are ready or not: a claim
        may find one before the next refresh); say when an agent with ready tasks starts or stops
        being held back."""
        if self._agents is None or now - self._agents_at < self.opts.health_s:
            return
        self._agents_at = now
        self.missing_agents = missing = dict(await asyncio.to_thread(self._agents.missing))
        if missing:  # written on the waiting tasks, for the board and the API (a claim clears it)
            await asyncio.to_thread(
                self.manager.repo.note_waiting, missing, self.opts.claim.feature_ids,
                self.opts.claim.default_agent, self.manager.clock(),
            )  # fmt: skip
        for agent, why in sorted(missing.items()):
            if agent in self._needed_agents and self._announced.get(agent) != why:
                self._status(f"waiting: tasks of agent {agent} held back (not claimed): {why}")
                self._announced[agent] = why
        for agent in sorted(set(self._announced) - set(missing)):
            self._status(f"agent {agent} can run again: its tasks are claimed")
            del self._announced[agent]

    async def _idle(self) -> bool:
        """Nothing left this worker could do: no task running, none ready that it may claim (manual
        tasks, tasks of executors it lacks and of agents whose program is missing left out; those of
        paused or cancelled features too). Tasks left waiting for a missing agent are counted in
        `held_back` and said."""
        o = self.opts.claim
        repo = self.manager.repo
        exclude = ("manual", *self._unknown_executors())
        agents = tuple(sorted({*o.exclude_agents, *self.missing_agents}))
        info = await asyncio.to_thread(
            repo.active_count, o.feature_ids, o.max_phase, exclude, agents, self.default_agent
        )
        counts = info["counts"]
        if counts.get("running", 0):
            return False
        if counts.get("ready", 0):
            if info["inactive_features"]:
                self._status("stopping: the remaining ready tasks belong to a paused or cancelled feature")
                return True
            return False
        if agents:
            every = await asyncio.to_thread(repo.active_count, o.feature_ids, o.max_phase, exclude)
            self.held_back = int(every["counts"].get("ready", 0))
            if self.held_back:
                why = "; ".join(f"agent {a}: {self.missing_agents.get(a, 'excluded')}" for a in agents)
                self._status(
                    f"stopping: {self.held_back} ready task(s) wait for agents that cannot run here: {why}"
                )
        return True

    async def _heartbeats(self) -> None:
        every = self.opts.heartbeat_s or self.opts.lease_s / 3
        while True:
            await asyncio.sleep(every)
            ids = list(self.running)
            try:
                owned = await asyncio.to_thread(self.manager.heartbeat, self.id, ids, self.opts.lease_s)
            except Exception as exc:  # the store is down: keep trying; leases may expire meanwhile
                self._status(f"heartbeat failed: {exc}")
                continue
            for tid in ids:
                r = self.running.get(tid)
                if (
                    tid not in owned
                    and r is not None
                    and r.job is not None
                    and not r.job.done()
                    and not r.lost
                ):
                    # once: stopping an attempt (killing its process group) can outlast a heartbeat
                    r.lost = True
                    self._status(f"{r.task['key']}: lease lost (reaped or cancelled); stopping this attempt")
                    self.stats["lost"] += 1
                    r.job.cancel()

    async def _record(self, finished: Finished) -> bool:
        """Queue an outcome for the flusher, which records the queued ones in one transaction."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._finished.append((finished, fut))
        self._flush_wake.set()
        return await fut

    async def _flusher(self) -> None:
        while True:
            await self._flush_wake.wait()
            for _ in range(3):  # let the attempts finishing in this same turn join the batch
                await asyncio.sleep(0)
            self._flush_wake.clear()
            batch, self._finished = self._finished, []
            if not batch:
                continue
            try:
                done = await self._flush([b[0] for b in batch])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), d in zip(batch, done, strict=True):
                if not fut.done():
                    fut.set_result(d)

    async def _flush(self, finished: list[Finished]) -> list[bool]:
        """Record finished attempts; claim the slots they free in the same transaction."""
        async with self._claim_lock:
            free = self.opts.slots - (len(self.running) - len(finished))
            if free <= 0 or self._stop.is_set() or self._rate_wait() > 0:
                return await asyncio.to_thread(self.manager.complete_many, finished, self.id)
            opts = await self._claim_options()
            done, claimed = await asyncio.to_thread(
                self.manager.complete_and_claim, finished, self.id, free, self.opts.lease_s, opts
            )
            self._next_start = claimed.next_start_at
            self._start(claimed)
            return done

    # ---------------------------------------------------------------- one attempt
    async def _feature(self, feature_id: int) -> Row:
        if feature_id not in self._features:
            self._features[feature_id] = await asyncio.to_thread(self.manager.repo.get_feature, feature_id)
        return self._features[feature_id]

    async def _execute(self, r: Running) -> None:
        t = r.task
        try:
            await self._attempt(t)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the store failed mid-attempt; the lease will expire and be reaped
            self._status(f"{t['key']}: could not record the outcome: {exc}")
        finally:
            self.running.pop(t["id"], None)
            self._wake.set()

    def _refusal(self, t: Row) -> tuple[str, dict[str, Any]] | None:
        """Why this worker must not run `t` (a blocked reason and its details), or None."""
        if t["executor"] != "manual" and not t.get("exec_trusted"):
            return UNTRUSTED, {"set_by": t.get("exec_set_by")}
        command = self.opts.commands.refused(t, self._features.get(t["feature_id"]))
        if command is not None:
            return NOT_ALLOWED, {"command": command}
        return None

    async def _task_key(self, t: Row, feature: Row, env: dict[str, str]) -> str | None:
        """Mint a key for a `command` attempt and put it, with the gateway's URL, in its environment."""
        if self.keys is None or t["executor"] != "command":
            return None
        tags = {"project": feature["project"], "feature": feature["slug"], "task": t["key"],
                "attempt": str(t["attempt"])}  # fmt: skip
        name = f"attempt {feature['slug']}/{t['key']}#{t['attempt']}"
        key_id, secret = await asyncio.to_thread(
            functools.partial(
                self.keys.minter.mint, name=name, tags=tags, budget_usd=None, route=t.get("route") or None
            )
        )
        url = self.keys.gateway_url.rstrip("/").removesuffix("/v1")
        env.update(ARCHITECT_GATEWAY_URL=url, ARCHITECT_API_KEY=secret, OPENAI_BASE_URL=f"{url}/v1",
                   OPENAI_API_KEY=secret)  # fmt: skip
        return key_id

    async def _attempt(self, t: Row) -> None:
        await self._feature(t["feature_id"])  # the allow-list may need its validator
        refusal = self._refusal(t)
        if refusal is not None:  # checked before anything of the task runs
            reason, detail = refusal
            if await asyncio.to_thread(self.manager.block_claimed, t, reason, self.id, detail):
                self.stats["blocked"] += 1
                self._status(
                    f"{t['key']}: blocked, not run: {reason} (written by {detail['set_by'] or 'unknown'}; "
                    "an admin may approve it: architect plan approve FEATURE TASK)"
                    if reason == UNTRUSTED
                    else f"{t['key']}: blocked, not run: {reason}: {detail['command']!r} matches no --allow-command"
                )
            return
        repo = self.manager.repo
        host = self.opts.host
        if t.get("pgid") and t.get("host") == host:
            if kill_group(int(t["pgid"])):
                self.stats["orphans_killed"] += 1
                self._status(f"{t['key']}: killed the orphaned process group {t['pgid']} of a lost worker")
            await asyncio.to_thread(repo.set_process, t["id"], t["attempt"], None, None)
        feature = await self._feature(t["feature_id"])

        async def on_process(pgid: int | None) -> None:
            await asyncio.to_thread(repo.set_process, t["id"], t["attempt"], host, pgid)

        env = {
            "ARCHITECT_PROJECT": feature["project"], "ARCHITECT_FEATURE": feature["slug"],
            "ARCHITECT_TASK": t["key"], "ARCHITECT_ATTEMPT": str(t["attempt"]),
        }  # fmt: skip
        ctx = TaskContext(t, feature, on_process, env)
        start = time.monotonic()
        ex = self.executors[t["executor"]]
        key_id = await self._task_key(t, feature, env)
        try:
            res = await ex.run(ctx)
        except Exception as exc:
            res = ExecResult(False, None, f"executor {t['executor']} raised {exc.__class__.__name__}: {exc}")
        finally:
            if key_id is not None and self.keys is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.keys.minter.revoke, key_id)
        validation: dict[str, Any] | None = None
        if (
            res.ok and t.get("validator") and t["executor"] != "agent"
        ):  # an agent task validates in its worktree
            validation = await run_validator(ctx, str(t["validator"]))
            if key_id is not None and self.keys is not None:  # the attempt's outcome, by its key
                verdict = 1.0 if validation["ok"] else 0.0
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.keys.minter.judge, key_id, verdict, "task")
            if not validation["ok"]:
                res = ExecResult(False, res.result, f"validator failed (exit code {validation['exit_code']})")
        duration = round(time.monotonic() - start, 4)
        done = await self._record((t, res.ok, res.result, validation, res.reason, duration))
        if not done:
            self.stats["lost"] += 1
            self._status(
                f"{t['key']}: attempt {t['attempt']} finished after losing its claim; result discarded"
            )
        elif res.ok:
            self.stats["succeeded"] += 1
        else:
            retry = int(t.get("failures") or 0) + 1 < int(t["max_attempts"])
            self.stats["retried" if retry else "failed"] += 1
            self._status(
                f"{t['key']}: attempt {t['attempt']} failed: {res.reason}"
                + (" (will retry)" if retry else "")
            )
