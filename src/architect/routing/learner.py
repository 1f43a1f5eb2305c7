"""What an `auto` route predicts from: per candidate model group, P(its answer to this prompt is
acceptable), learned from the outcomes in the store (`store.routing`), one model per Runtime.

    P(c acceptable | x) = sigmoid(logit(BetaMean(project, c, task_type)) + w_c . x)

- The Beta mean per (model group x task type), from the group's price-tier prior mean (`prior[c]`,
  given by the caller: cheapest candidate 0.55 ... dearest 0.85) with the weight of 2 outcomes and
  the outcomes seen (`routing.quality.posterior`). With `scope="project"` a project's own counts are
  shrunk to that global mean with the weight of 5 outcomes.
- `w_c`, the text on top of the tag: a per-candidate logistic regression (`OnlineLogistic`, AdaGrad)
  on the prompt's hashed features, learned with the Beta log-odds as each row's offset (as
  `routers.TextRouter(use_tags=True)`), so it learns only what the task type does not already say.
  Until a candidate has `min_text` (20) outcomes with features, its w is not used.
- The state is the store's: every `refresh_s` (2 s) a process flushes the features it buffered
  (`record_features`), reads the outcomes written since its watermark (by id, with their features)
  and learns them, and re-reads the Beta counts (a GROUP BY of the outcomes). On start it replays the
  newest 20,000 outcomes. So processes on one store agree, and a restart loses nothing but the text
  model's memory of outcomes beyond the replay window.

Offsets for learning come from counts the model keeps as it learns, in id order, with a fixed prior
mean (`TRAIN_PRIOR`) rather than the caller's: two processes that learned the same outcomes hold the
same weights, whenever each synced. An outcome id that is skipped (a transaction that committed after
a larger id was read, on PostgreSQL) is asked for again for `GAP_S` (60 s).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from architect.routing.features import HashedFeatures
from architect.routing.linear import OnlineLogistic
from architect.routing.quality import DEFAULT_PRIOR, PRIOR_WEIGHT, SHRINK, QualityRow, quality_rows
from architect.routing.state import pack, unpack
from architect.store.routing import RoutingRepo

__all__ = ["GAP_S", "MIN_TEXT", "REPLAY", "TRAIN_PRIOR", "QualityModel"]

log = logging.getLogger("architect.routing")

REPLAY = 20_000  # outcomes replayed on start
MIN_TEXT = 20  # outcomes with features before a candidate's text model is used
TRAIN_PRIOR = DEFAULT_PRIOR  # the prior mean of the offsets the text models learn with
GAP_S = 60.0  # how long a skipped outcome id is asked for again
SWEEP_S = 30.0  # how often key outcomes are applied to calls the ledger wrote since
PRUNE_S = 3600.0  # how often old features are pruned
FEATURE_DAYS = 30.0  # features older than this are pruned
MAX_PENDING = 10_000  # features buffered between flushes; more are dropped (and counted)
_BATCH = 1000
_MAX_GAP_QUERY = 500  # skipped ids asked for again per read (the newest)
_CLIP = 1e-4

Scope = Literal["global", "project"]


def _logit(p: float) -> float:
    q = min(1.0 - _CLIP, max(_CLIP, p))
    return math.log(q / (1.0 - q))


def _sigmoid(z: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * z))


def _mean(n: float, s: float, prior: float, weight: float = PRIOR_WEIGHT) -> float:
    """The Beta posterior's mean, exactly: with no outcomes, the prior itself (`posterior` adds a tiny
    epsilon to its parameters for the interval, which would put a prior of 0.7 just under a target of
    0.7)."""
    p = min(1.0 - 1e-6, max(1e-6, prior))
    return (weight * p + min(max(s, 0.0), n)) / (weight + n)


def _add(c: list[float], sign: float, y: float) -> None:
    """Add (sign 1) or take away (-1) one outcome `y` from running counts [n, sum]."""
    c[0] = max(0.0, c[0] + sign)
    c[1] = min(c[0], max(0.0, c[1] + sign * y))


class QualityModel:
    """The in-memory model of an `auto` route's candidates, synced with the store (see the module)."""

    def __init__(
        self,
        repo: RoutingRepo,
        *,
        scope: Scope = "global",
        refresh_s: float = 2.0,
        replay: int = REPLAY,
        min_text: int = MIN_TEXT,
        dim: int | None = None,
        lr: float = 0.1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.scope: Scope = scope
        self.refresh_s = refresh_s
        self.replay = replay
        self.min_text = min_text
        self.dim = dim if dim is not None else HashedFeatures().dim
        self.lr = lr
        self.clock = clock
        # the Beta counts (n, sum) as the store last had them: global, and per project
        self._counts: dict[tuple[str, str], tuple[int, float]] = {}
        self._project_counts: dict[tuple[str, str, str], tuple[int, float]] = {}
        # the counts of the outcomes learned so far, in id order (the text models' offsets)
        self._run: dict[tuple[str, str], list[float]] = {}
        self._run_project: dict[tuple[str, str, str], list[float]] = {}
        self._text: dict[str, OnlineLogistic] = {}
        self._text_n: dict[str, int] = {}
        self._priors: dict[str, float] = {}
        self.watermark = 0
        self._gaps: dict[int, float] = {}
        self._pending: list[tuple[str, float, bytes]] = []
        self.dropped_features = 0
        self.learned = 0
        self._sync_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._last_sweep = -math.inf
        self._last_prune = -math.inf

    # ------------------------------------------------------------------ the router's calls
    def predict(
        self,
        x: tuple[NDArray[Any], NDArray[Any]] | None,
        *,
        project: str | None,
        task_type: str,
        candidates: Sequence[str],
        prior: Mapping[str, float],
    ) -> dict[str, float]:
        """P(acceptable) of each candidate for a prompt with features `x` (hashed indices and values;
        None: no text, the Beta mean alone), in `project` (used with `scope="project"`), of
        `task_type`; `prior[c]` is candidate c's price-tier prior mean."""
        out: dict[str, float] = {}
        idx: NDArray[Any] | None = None
        val: NDArray[Any] | None = None
        if x is not None:
            idx, val = np.asarray(x[0]), np.asarray(x[1], dtype=np.float64)
            keep = (idx >= 0) & (idx < self.dim)
            idx, val = idx[keep], val[keep]
        for c in candidates:
            p0 = float(prior.get(c, DEFAULT_PRIOR))
            self._priors[c] = p0
            m = self.beta_mean(c, task_type, p0, project)
            lm = self._text.get(c)
            if idx is None or val is None or lm is None or self._text_n.get(c, 0) < self.min_text:
                out[c] = m
                continue
            w = lm.theta
            out[c] = _sigmoid(_logit(m) + float(val @ w[idx]) + float(w[-1]))
        return out

    def beta_mean(self, group: str, task_type: str, prior: float, project: str | None = None) -> float:
        """The Beta posterior mean of `group` on `task_type` (in `project` with project scope)."""
        n, s = self._counts.get((group, task_type), (0, 0.0))
        m = _mean(n, s, prior)
        if self.scope == "project" and project is not None:
            pn, ps = self._project_counts.get((project, group, task_type), (0, 0.0))
            m = _mean(pn, ps, m, SHRINK)
        return m

    def outcome_count(self, group: str, task_type: str | None = None) -> int:
        """The outcomes the store holds for `group` (on `task_type`, or all of them)."""
        if task_type is not None:
            return self._counts.get((group, task_type), (0, 0.0))[0]
        return sum(n for (g, _), (n, _s) in self._counts.items() if g == group)

    def outcome_counts(
        self, *, project: str | None, task_type: str, candidates: Sequence[str]
    ) -> dict[str, int]:
        """The outcomes of each candidate on `task_type` (in `project` with `routing.scope: project`):
        exploration picks the candidate with the fewest (`predict.OutcomeCounts`)."""
        if self.scope == "project" and project is not None:
            return {c: self._project_counts.get((project, c, task_type), (0, 0.0))[0] for c in candidates}
        return {c: self.outcome_count(c, task_type) for c in candidates}

    def text_outcomes(self, group: str) -> int:
        """The outcomes with features the text model of `group` has learned."""
        return self._text_n.get(group, 0)

    def record_features(self, request_id: str, x: tuple[NDArray[Any], NDArray[Any]]) -> None:
        """Keep the features an auto decision was made on; written to the store at the next sync."""
        if len(self._pending) >= MAX_PENDING:
            self.dropped_features += 1
            return
        self._pending.append((request_id, self.clock(), pack(x)))

    def set_priors(self, priors: Mapping[str, float]) -> None:
        """The price-tier prior means of groups (what `quality` shows before `predict` used them)."""
        self._priors.update({k: float(v) for k, v in priors.items()})

    @property
    def priors(self) -> dict[str, float]:
        return dict(self._priors)

    def quality(self, project: str | None = None) -> list[QualityRow]:
        """The quality table (for `GET /api/v1/quality`): per model group and task type, from the
        counts of the last sync (a project's counts are read from the store)."""
        counts = [
            {"model_group": g, "task_type": t, "n": n, "sum": s} for (g, t), (n, s) in self._counts.items()
        ]
        if project is None:
            return quality_rows(counts, self._priors)
        return quality_rows(
            counts, self._priors, project=project, project_counts=self.repo.quality(project=project)
        )

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Replay the newest outcomes, then sync every `refresh_s`."""
        await asyncio.to_thread(self.load)
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        try:
            await asyncio.to_thread(self.flush_features)
        except Exception:
            log.exception("writing the last route features failed")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await asyncio.to_thread(self.sync)
            except Exception:  # keep serving; the next pass retries
                log.exception("syncing the auto route's model failed")

    # ------------------------------------------------------------------ learning
    def load(self) -> None:
        """Replay the newest `replay` outcomes and read the counts (on start)."""
        with self._sync_lock:
            rows = self.repo.last_outcomes(self.replay) if self.replay else []
            self._read_counts()
            self._run = {k: [float(n), s] for k, (n, s) in self._counts.items()}
            self._run_project = {k: [float(n), s] for k, (n, s) in self._project_counts.items()}
            for r in rows:  # the counts before the replayed outcomes
                self._count(r, -1.0)
            for r in rows:
                self._learn(r)
            if rows:  # only recent ids may still commit; older gaps are deleted (changed) outcomes
                recent = [r for r in rows if int(r["id"]) > int(rows[-1]["id"]) - _BATCH]
                self._note_gaps(int(recent[0]["id"]) - 1, recent)
                self.watermark = int(rows[-1]["id"])

    def sync(self) -> int:
        """One pass: write the buffered features, apply key outcomes (every `SWEEP_S`), learn the new
        outcomes and re-read the counts. Returns the number of outcomes learned."""
        with self._sync_lock:
            now = self.clock()
            self.flush_features()
            if now - self._last_sweep >= SWEEP_S:
                self._last_sweep = now
                self.repo.sweep_key_outcomes(now=now)
            if now - self._last_prune >= PRUNE_S:
                self._last_prune = now
                self.repo.prune_features(now - FEATURE_DAYS * 86400)
            for gap, since in list(self._gaps.items()):
                if now - since > GAP_S:
                    del self._gaps[gap]
            learned = 0
            ids: Sequence[int] = sorted(self._gaps)[-_MAX_GAP_QUERY:]
            while True:
                rows = self.repo.outcomes_since(self.watermark, _BATCH, ids)
                new = [r for r in rows if int(r["id"]) > self.watermark]
                for r in rows:
                    self._gaps.pop(int(r["id"]), None)
                    self._learn(r)
                learned += len(rows)
                if new:
                    self._note_gaps(self.watermark, new)
                    self.watermark = int(new[-1]["id"])
                ids = ()
                if len(new) < _BATCH:
                    break
            if learned:
                self._read_counts()
            return learned

    def flush_features(self) -> None:
        rows, self._pending = self._pending, []
        if rows:
            self.repo.put_features(rows)

    def _note_gaps(self, after: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """Remember the ids between `after` and the last of `rows` that were not among them."""
        last = int(rows[-1]["id"])
        if last - after - len(rows) <= 0 or last - after > 100 * _BATCH:
            return
        seen = {int(r["id"]) for r in rows}
        now = self.clock()
        for i in range(after + 1, last):
            if i not in seen:
                self._gaps.setdefault(i, now)

    def _read_counts(self) -> None:
        self._counts = {
            (str(r["model_group"]), str(r["task_type"] or "unknown")): (int(r["n"]), float(r["sum"]))
            for r in self.repo.quality()
            if r["model_group"] is not None
        }
        if self.scope == "project":
            self._project_counts = {
                (str(r["project"]), str(r["model_group"]), str(r["task_type"] or "unknown")): (
                    int(r["n"]),
                    float(r["sum"]),
                )
                for r in self.repo.quality(by_project=True)
                if r["model_group"] is not None and r["project"] is not None
            }

    def _keys(self, r: Mapping[str, Any]) -> tuple[tuple[str, str], tuple[str, str, str] | None]:
        g, t = str(r["model_group"]), str(r.get("task_type") or "unknown")
        p = r.get("project")
        return (g, t), ((str(p), g, t) if p is not None and self.scope == "project" else None)

    def _count(self, r: Mapping[str, Any], sign: float) -> None:
        if r.get("model_group") is None:
            return
        k, kp = self._keys(r)
        y = float(r["outcome"])
        _add(self._run.setdefault(k, [0.0, 0.0]), sign, y)
        if kp is not None:
            _add(self._run_project.setdefault(kp, [0.0, 0.0]), sign, y)

    def _offset(self, r: Mapping[str, Any]) -> float:
        k, kp = self._keys(r)
        n, s = self._run.get(k, (0.0, 0.0))
        m = _mean(n, s, TRAIN_PRIOR)
        if kp is not None:
            pn, ps = self._run_project.get(kp, (0.0, 0.0))
            m = _mean(pn, ps, m, SHRINK)
        return _logit(m)

    def _learn(self, r: Mapping[str, Any]) -> None:
        group = r.get("model_group")
        if group is None:
            return
        data = r.get("features")
        if data:
            try:
                idx, val = unpack(data)
            except ValueError:
                log.warning(
                    "route features of %s are not readable; learned without them", r.get("request_id")
                )
            else:
                keep = (idx >= 0) & (idx < self.dim)
                lm = self._text.get(group)
                if lm is None:
                    lm = self._text[group] = OnlineLogistic(self.dim, lr=self.lr)
                lm.update(idx[keep], val[keep], float(r["outcome"]), self._offset(r))
                self._text_n[group] = self._text_n.get(group, 0) + 1
        self._count(r, 1.0)
        self.learned += 1
