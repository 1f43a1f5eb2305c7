"""`agent` executor: one attempt of a task done by a coding agent.

Per attempt:

1. the feature branch `architect/<feature>` exists (made from the feature's `base`, whose SHA is
   recorded at the first run); attempts a dead worker left `running` are closed as `crashed`, their
   keys revoked and worktrees removed - except one whose commit is already on the feature branch (the
   worker died between the merge and recording it, found by the commit's `Architect-Task` and
   `Architect-Attempt` trailers): that one is closed as `succeeded` and the task is done, not re-run;
2. a worktree of the repository on `architect-task/<feature>/<task>-a<attempt>`, branched from the
   feature branch, in Architect's own directory (`<home>/worktrees/<repo>-<hash>/<feature>/<task>-a<n>`,
   `home` being ARCHITECT_HOME): the user's own working tree is never touched, and it is not inside the
   git directory, whose files coding agents refuse to edit (see `orchestrator.git`);
3. a virtual key of its own (`KeyMinter`): tagged with project, feature, task, attempt and agent,
   budgeted in USD per attempt, temporary; revoked when the attempt ends, whatever ends it;
4. the runner (builtin, aider, claude-code, codex, script) in the worktree, confined (`Sandbox`),
   with the gateway's URL, the key and the briefing (`orchestrator.briefing`);
5. what the agent left uncommitted is committed; no change at all fails the attempt (`no_changes`);
6. the validator in the worktree, confined; red fails the attempt (`validation_failed`);
7. the merge queue: squashed onto the feature branch (one commit, whose trailers name the feature,
   task and attempt), re-validated there, fast-forwarded; a conflict or a red re-validation fails the
   attempt with that output (`merge_conflict`, `validation_failed`);
8. a `task_attempts` row from start to end: agent, runner, model, key, worktree, SHAs, files and
   lines changed, commits, validation counts, outcome and reason, isolation, duration.

A failed attempt's reason and output reach the next attempt's briefing; its worktree is kept for
inspection. A merged attempt's worktree and branch are removed.

What an `auto` route learns from (`KeyMinter.judge`, docs/routing.md): the attempt's key carries the
task's `route` settings, and its validator's verdict is the key's outcome (passed 1, failed 0, source
`task`), applied to every call made with it; when an attempt succeeds, the task's earlier attempts
that have no outcome get 0 (source `escalation`: a later attempt had to do it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from architect.config import AgentConfig, EscalateStep, architect_home
from architect.config_agents import BUILTIN
from architect.errors import ArchitectError
from architect.orchestrator.agents import AgentJob, AgentOutcome, Runner, Sandbox, build_runner, run_confined
from architect.orchestrator.briefing import Briefing, DepChange, render_briefing
from architect.orchestrator.executors.base import ExecResult, TaskContext, tail
from architect.orchestrator.executors.command import parse_test_summary
from architect.orchestrator.git import Git, attempt_branch, attempt_worktree, feature_branch, repo_worktrees
from architect.orchestrator.keys import KeyMinter, MintedKey
from architect.orchestrator.merge import MergeQueue
from architect.store.orchestrator import Row, TaskRepo

__all__ = ["TRAILER_ATTEMPT", "TRAILER_TASK", "AgentExecutor", "resolve_agent"]

log = logging.getLogger("architect.orchestrator")

# The trailers of a task's commit on the feature branch: `Architect-Task: <feature>/<task>`, and the
# attempt that made it.
TRAILER_TASK = "Architect-Task"
TRAILER_ATTEMPT = "Architect-Attempt"


def _why(outcome: str, reason: str | None) -> str:
    """A failed attempt's reason for the task: its outcome, then why (unless it already says it)."""
    if not reason:
        return outcome
    return reason if reason.startswith(outcome) else f"{outcome}: {reason}"


def resolve_agent(
    agents: Mapping[str, AgentConfig],
    task: Mapping[str, Any],
    feature: Mapping[str, Any],
    default: str = "builtin",
) -> tuple[AgentConfig, str | None]:
    """The agent for this attempt and its model group: the task's agent, else the feature's, else
    the default; then the escalation ladder's steps whose `attempt` is at most this attempt number."""
    name = task.get("agent") or feature.get("agent") or default
    cfg = agents.get(name) or (BUILTIN if name == "builtin" else None)
    if cfg is None:
        raise ArchitectError(f"agent {name!r} is not configured (agents: in the config file)")
    model = cfg.model
    attempt = int(task.get("attempt") or 1)
    steps: list[EscalateStep] = sorted(cfg.escalate, key=lambda s: s.attempt)
    for step in steps:
        if step.attempt > attempt:
            break
        if step.agent:
            nxt = agents.get(step.agent) or (BUILTIN if step.agent == "builtin" else None)
            if nxt is None:
                raise ArchitectError(
                    f"agent {cfg.name!r} escalates to {step.agent!r}, which is not configured"
                )
            cfg, model = nxt, nxt.model
        if step.model:
            model = step.model
    return cfg, model


class AgentExecutor:
    name = "agent"

    def __init__(
        self,
        repo: TaskRepo,
        agents: Mapping[str, AgentConfig],
        minter: KeyMinter,
        gateway_url: str,
        *,
        sandbox: Sandbox | None = None,
        validator_timeout_s: float = 600.0,
        default_agent: str = "builtin",
        worker_id: str = "",
        home: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.agents = dict(agents)
        self.minter = minter
        self.gateway_url = gateway_url.rstrip("/").removesuffix("/v1")
        self.sandbox = sandbox or Sandbox()
        self.validator_timeout_s = validator_timeout_s
        self.default_agent = default_agent
        self.worker_id = worker_id
        # where attempt worktrees go (`<home>/worktrees/…`); None: ARCHITECT_HOME, read at each attempt
        self.home = home
        self.clock = clock
        self._runners: dict[str, Runner] = {}

    def runner(self, cfg: AgentConfig) -> Runner:
        if cfg.name not in self._runners:
            self._runners[cfg.name] = build_runner(cfg)
        return self._runners[cfg.name]

    def missing(self) -> dict[str, str]:
        """Agent name -> why its tasks cannot run here: for every configured agent whose program is not
        installed, and every agent whose escalation ladder reaches one (its later attempts would need
        it). The worker does not claim these agents' tasks (they wait, not fail) and says why."""
        agents = {BUILTIN.name: BUILTIN, **self.agents}
        out: dict[str, str] = {}
        for cfg in agents.values():
            problem = self.runner(cfg).missing()
            if problem:
                out[cfg.name] = problem
        for cfg in agents.values():
            step = next((s for s in cfg.escalate if s.agent in out and s.agent != cfg.name), None)
            if cfg.name not in out and step is not None and step.agent is not None:
                out[cfg.name] = (
                    f"escalates to agent {step.agent} from attempt {step.attempt}: {out[step.agent]}"
                )
        return out

    async def health(self) -> str | None:
        """None: what one agent lacks holds back only that agent's tasks (`missing`), not all of them."""
        return None

    # ------------------------------------------------------------------ one attempt
    async def run(self, ctx: TaskContext) -> ExecResult:
        t, f = ctx.task, ctx.feature
        if not f.get("repo"):
            return ExecResult(False, None, "the feature has no repo: an agent task needs one")
        try:
            cfg, model = resolve_agent(self.agents, t, f, self.default_agent)
        except ArchitectError as exc:
            return ExecResult(False, None, str(exc))
        runner = self.runner(cfg)
        problem = runner.missing()
        if problem:
            return ExecResult(False, None, f"agent {cfg.name}: {problem}")
        git = await Git.open(Path(f["repo"]))
        if f.get("total_budget_usd"):
            await asyncio.to_thread(self.minter.feature_budget, f["slug"], float(f["total_budget_usd"]))
        base_sha = await self._base(git, f)
        fbranch = feature_branch(f["slug"])
        tip = await git.ensure_branch(fbranch, base_sha)
        landed = await self._close_stale(git, t, f, base_sha, tip)
        if landed is not None:  # a dead worker's attempt merged it: not run (nor merged) again
            return ExecResult(True, landed)
        attempt = int(t["attempt"])
        branch = attempt_branch(f["slug"], t["key"], attempt)
        common = await git.common_dir()
        worktree = attempt_worktree(
            repo_worktrees(self.home or architect_home(), common), f["slug"], t["key"], attempt
        )
        scratch = common / "architect" / "scratch" / f["slug"] / f"{t['key']}-a{attempt}"
        isolation = await self.sandbox.probe()
        started = self.clock()
        row: dict[str, Any] = {
            "task_id": t["id"], "feature_id": f["id"], "attempt": attempt, "agent": cfg.name,
            "runner": cfg.runner, "model": model, "worktree": str(worktree), "branch": branch,
            "base_sha": tip, "outcome": "running", "isolation": isolation.kind,
            "worker_id": self.worker_id, "started_at": started,
        }  # fmt: skip
        key: MintedKey | None = None
        attempt_id = await asyncio.to_thread(self.repo.start_attempt, row)
        fields: dict[str, Any] = {}
        try:
            await git.add_worktree(worktree, branch, tip)
            if scratch.exists():
                shutil.rmtree(scratch)
            scratch.mkdir(parents=True)
            key = await asyncio.to_thread(self._mint, t, f, cfg, attempt)
            await asyncio.to_thread(self.repo.update_attempt, attempt_id, {"key_id": key.id})
            prompt = render_briefing(await self._briefing(t, f, attempt))
            prompt_file = scratch / "prompt.md"
            prompt_file.write_text(prompt, encoding="utf-8")
            job = AgentJob(
                worktree=worktree, prompt=prompt, prompt_file=prompt_file, scratch=scratch,
                gateway_url=self.gateway_url, api_key=key.secret, model=model or "default",
                timeout_s=cfg.timeout_s, validator=self._validator(t, f), args=tuple(cfg.args),
                env=dict(cfg.env),
            )  # fmt: skip
            outcome = await runner.run(job, self.sandbox, ctx.on_process)
            fields = await self._after_agent(git, ctx, job, outcome, tip, branch, cfg.name)
        except asyncio.CancelledError:
            fields = {"outcome": "crashed", "reason": "the attempt was stopped (lease lost or shutdown)"}
            raise
        except ArchitectError as exc:
            fields = {"outcome": "failed", "reason": str(exc)}
        finally:
            if key is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.minter.revoke, key.id)
            end = self.clock()
            fields.setdefault("outcome", "failed")
            fields.update(finished_at=end, duration_s=round(end - started, 3))
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.to_thread(self.repo.finish_attempt, attempt_id, fields))
        if key is not None:
            await self._judge(t, attempt, key.id, fields)
        ok = fields["outcome"] == "succeeded"
        if ok:
            with contextlib.suppress(ArchitectError):
                await git.remove_worktree(worktree, delete_branch=branch)
            shutil.rmtree(scratch, ignore_errors=True)
        result = {k: fields.get(k) for k in ("outcome", "merged_sha", "files_changed", "lines_added",
                                             "lines_removed", "validation")}  # fmt: skip
        result.update(agent=cfg.name, model=model, worktree=str(worktree), key_id=key.id if key else None)
        return ExecResult(ok, result, None if ok else _why(fields["outcome"], fields.get("reason")))

    async def _after_agent(
        self,
        git: Git,
        ctx: TaskContext,
        job: AgentJob,
        outcome: AgentOutcome,
        tip: str,
        branch: str,
        agent: str,
    ) -> dict[str, Any]:
        """Commit, measure, validate and merge what the agent did; the attempt row's closing fields."""
        t = ctx.task
        out: dict[str, Any] = {"output": tail(outcome.output, 8000)}
        await git.commit_all(job.worktree, f"{t['key']}: work left uncommitted by the agent")
        head = await git.head(job.worktree)
        stat = await git.diff_stat(tip, head)
        commits = await git.commits(tip, head)
        out.update(
            head_sha=head, files=list(stat.files), files_changed=len(stat.files), lines_added=stat.added,
            lines_removed=stat.removed, commits=[{"sha": c.sha, "subject": c.subject} for c in commits],
        )  # fmt: skip
        if not outcome.ok:
            out.update(outcome=outcome.stop or "failed", reason=outcome.reason or "the agent failed")
            return out
        if not stat.files:
            out.update(outcome="no_changes", reason="the agent changed no file")
            return out
        validation = await self._validate(job.worktree, t, ctx.feature, job.scratch)
        out["validation"] = validation
        if validation is not None and not validation["ok"]:
            out.update(
                outcome="validation_failed",
                reason=f"the validator failed in the worktree (exit code {validation['exit_code']})",
                output=validation["output_tail"],
            )
            return out
        queue = MergeQueue(
            git, _StoreLock(self.repo, int(ctx.feature["id"])),
            lambda path: self._validate_or_ok(path, t, ctx.feature, job.scratch),
        )  # fmt: skip
        merged = await queue.merge(
            ctx.feature["slug"], branch, tip, await self._message(t, ctx.feature["slug"], job, outcome, agent)
        )
        if not merged.ok:
            kind = {"conflict": "merge_conflict", "validation_failed": "validation_failed",
                    "no_changes": "no_changes"}.get(merged.reason or "", "failed")  # fmt: skip
            out.update(outcome=kind, output=merged.output,
                       reason=f"merge onto {feature_branch(ctx.feature['slug'])}: {merged.reason}"
                       + (f" ({merged.output.strip()[:300]})" if merged.reason == "checked_out" else ""))  # fmt: skip
            if merged.validation is not None:
                out["validation"] = merged.validation
            return out
        out.update(outcome="succeeded", merged_sha=merged.sha, reason=None)
        return out

    # ------------------------------------------------------------------ pieces
    async def _judge(
        self, t: Mapping[str, Any], attempt: int, key_id: str, fields: Mapping[str, Any]
    ) -> None:
        """The attempt's outcome by its key: its validator's verdict; when it succeeded, 0 for the
        task's earlier attempts without one. A failure here is logged, never the attempt's."""
        validation = fields.get("validation")
        try:
            if isinstance(validation, Mapping) and "ok" in validation:
                verdict = 1.0 if validation["ok"] else 0.0
                await asyncio.to_thread(self.minter.judge, key_id, verdict, "task")
            if fields.get("outcome") == "succeeded":
                for a in await asyncio.to_thread(self.repo.attempts, t["id"]):
                    if int(a["attempt"]) < attempt and a.get("key_id"):
                        await asyncio.to_thread(
                            functools.partial(
                                self.minter.judge, str(a["key_id"]), 0.0, "escalation", replace=False
                            )
                        )
        except Exception:
            log.warning(
                "task %s attempt %d: recording its outcome failed", t.get("key"), attempt, exc_info=True
            )

    def _validator(self, t: Mapping[str, Any], f: Mapping[str, Any]) -> str | None:
        v = t.get("validator") or f.get("validator")
        return str(v) if v else None

    async def _validate(
        self, cwd: Path, t: Mapping[str, Any], f: Mapping[str, Any], scratch: Path
    ) -> dict[str, Any] | None:
        command = self._validator(t, f)
        if command is None:
            return None
        ran = await run_confined(
            ["/bin/sh", "-c", command], cwd=cwd, env={"HOME": str(scratch), "TMPDIR": str(scratch)},
            timeout_s=self.validator_timeout_s, sandbox=self.sandbox, writable=[cwd, scratch],
        )  # fmt: skip
        summary = parse_test_summary(ran.output)
        return {
            "ok": ran.code == 0, "exit_code": ran.code, "duration_s": round(ran.seconds, 3), **summary,
            "output_tail": tail(ran.output, 4000),
        }  # fmt: skip

    async def _validate_or_ok(
        self, cwd: Path, t: Mapping[str, Any], f: Mapping[str, Any], scratch: Path
    ) -> dict[str, Any]:
        return await self._validate(cwd, t, f, scratch) or {"ok": True, "exit_code": 0}

    def _mint(self, t: Mapping[str, Any], f: Mapping[str, Any], cfg: AgentConfig, attempt: int) -> MintedKey:
        budget = t.get("budget_usd") or f.get("attempt_budget_usd") or cfg.budget_usd
        tags = {
            "project": f["project"], "feature": f["slug"], "task": t["key"], "attempt": str(attempt),
            "agent": cfg.name,
        }  # fmt: skip
        key_id, secret = self.minter.mint(
            name=f"attempt {f['slug']}/{t['key']}#{attempt}", tags=tags,
            budget_usd=float(budget) if budget else None, route=t.get("route") or None,
        )  # fmt: skip
        return MintedKey(key_id, secret)

    async def _base(self, git: Git, f: Mapping[str, Any]) -> str:
        if f.get("base_sha"):
            return str(f["base_sha"])
        sha = await git.resolve(str(f.get("base") or "HEAD"))
        await asyncio.to_thread(self.repo.set_base_sha, f["id"], sha)
        return sha

    async def _close_stale(
        self, git: Git, t: Mapping[str, Any], f: Mapping[str, Any], base_sha: str, tip: str
    ) -> dict[str, Any] | None:
        """Close the attempts of this task a dead worker left `running`: keys revoked, worktrees and
        branches removed. One whose commit is already on the feature branch (the worker died after the
        merge queue moved the branch, before it recorded the attempt) is closed as `succeeded` with that
        commit, and its result returned: the task is done and is neither run nor merged again. The
        others are closed as `crashed` (None: run the task)."""
        stale = await asyncio.to_thread(self.repo.stale_attempts, t["id"])
        if not stale:
            return None
        merged = await self._merged(git, t, f, base_sha, tip)
        landed: dict[str, Any] | None = None
        for old in stale:
            if old.get("key_id"):
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.minter.revoke, str(old["key_id"]))
            if old.get("worktree"):
                with contextlib.suppress(ArchitectError):
                    await git.remove_worktree(Path(old["worktree"]), delete_branch=old.get("branch"))
            fields: dict[str, Any] = {
                "outcome": "crashed", "reason": "its worker was lost; the attempt was re-run",
                "finished_at": self.clock(),
            }  # fmt: skip
            sha = merged.get(int(old["attempt"]))
            if sha is not None and landed is None:
                stat = await git.diff_stat(f"{sha}^", sha)
                fields.update(
                    outcome="succeeded", merged_sha=sha, files=list(stat.files), files_changed=len(stat.files),
                    lines_added=stat.added, lines_removed=stat.removed,
                    reason="merged onto the feature branch; its worker was lost before recording it, "
                    "so the task was not run again",
                )  # fmt: skip
                landed = {k: fields.get(k) for k in ("outcome", "merged_sha", "files_changed", "lines_added",
                                                      "lines_removed")}  # fmt: skip
                landed.update(agent=old.get("agent"), model=old.get("model"), worktree=old.get("worktree"),
                              key_id=old.get("key_id"), attempt=int(old["attempt"]))  # fmt: skip
            await asyncio.to_thread(self.repo.finish_attempt, old["id"], fields)
        return landed

    async def _merged(
        self, git: Git, t: Mapping[str, Any], f: Mapping[str, Any], base_sha: str, tip: str
    ) -> dict[int, str]:
        """Attempt number -> the commit on the feature branch (since `base_sha`) that the merge queue
        made for that attempt of this task, read from the commits' trailers (`TRAILER_TASK`,
        `TRAILER_ATTEMPT`)."""
        task_line = f"{TRAILER_TASK}: {f['slug']}/{t['key']}"
        out: dict[int, str] = {}
        for sha, message in await git.messages(base_sha, tip, task_line):
            lines = message.splitlines()
            if task_line not in lines:
                continue
            for line in lines:
                key, _, value = line.partition(": ")
                if key == TRAILER_ATTEMPT and value.strip().isdigit():
                    out.setdefault(int(value), sha)
        return out

    async def _briefing(self, t: Mapping[str, Any], f: Mapping[str, Any], attempt: int) -> Briefing:
        earlier = [a for a in await asyncio.to_thread(self.repo.attempts, t["id"]) if a["attempt"] < attempt]
        prev: Row | None = earlier[-1] if earlier else None
        deps = await asyncio.to_thread(self._dep_changes, t, f)
        return Briefing(
            task=t, feature=f, validator=self._validator(t, f), attempt=attempt, deps=deps,
            previous_reason=prev.get("reason") if prev else None,
            previous_output=prev.get("output") if prev else None,
        )  # fmt: skip

    def _dep_changes(self, t: Mapping[str, Any], f: Mapping[str, Any]) -> list[DepChange]:
        keys = set(t.get("deps") or [])
        if not keys:
            return []
        tasks = {int(x["id"]): x for x in self.repo.tasks(f["id"]) if x["key"] in keys}
        out = []
        for a in self.repo.attempts(feature_id=f["id"]):
            dep = tasks.get(int(a["task_id"]))
            if dep is not None and a["outcome"] == "succeeded":
                out.append(DepChange(dep["key"], dep["title"], tuple(a.get("files") or ())))
        return out

    async def _message(
        self, t: Mapping[str, Any], feature_slug: str, job: AgentJob, outcome: AgentOutcome, agent: str
    ) -> str:
        """The feature branch's commit for a task: id, title, agent, model(s), attempts and the cost of
        all its attempts' keys so far (from the ledger), then the trailers that name the feature, task
        and attempt (how a re-run finds the commit of an attempt whose worker died after merging)."""
        cost, unpriced, models = 0.0, 0, []  # model groups as the ledger has them
        for a in await asyncio.to_thread(self.repo.attempts, t["id"]):
            if a.get("key_id"):
                u = await asyncio.to_thread(self.minter.usage, str(a["key_id"]), float(a["started_at"]))
                cost += float(u["cost_usd"])
                unpriced += int(u["unpriced"])
                models += [m for m in u["models"] if m not in models]
        priced = f"${cost:.6f}" + (f" (+{unpriced} calls of unknown price)" if unpriced else "")
        return (
            f"{t['key']}: {t['title']}\n\n"
            f"Agent: {agent}\nModel(s): {', '.join(models) or ', '.join(outcome.models) or job.model}\n"
            f"Attempts: {int(t['attempt'])}\n"
            f"Cost: {priced}\n\n"
            f"{TRAILER_TASK}: {feature_slug}/{t['key']}\n{TRAILER_ATTEMPT}: {int(t['attempt'])}\n"
        )


class _StoreLock:
    """The merge queue's lock: a row in the store per feature, so that merges of one feature are one
    at a time across workers and machines (the queue names the feature by slug; the row by id)."""

    def __init__(self, repo: TaskRepo, feature_id: int) -> None:
        self.repo, self.feature_id = repo, feature_id

    def acquire(self, key: str, holder: str, ttl_s: float) -> bool:
        return self.repo.acquire_merge_lock(self.feature_id, holder, ttl_s, time.time())

    def release(self, key: str, holder: str) -> None:
        self.repo.release_merge_lock(self.feature_id, holder)
