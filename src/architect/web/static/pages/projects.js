// Projects & features: the task board by status and phase with dependencies, progress, velocity and
// estimated completion, running tasks live, first-try success and rework, cost per task; for agent
// tasks the agent, model(s), attempts, cost and files changed, and a task's detail with its attempts.
import {
  api,
  app,
  badge,
  bar,
  el,
  emptyBox,
  errorBox,
  fmtAgo,
  fmtInt,
  fmtPct,
  fmtTime,
  fmtTotalCost,
  liveIndicator,
  subscribe,
  table,
  unpricedNote,
} from "../common.js";

const ORDER = ["running", "ready", "pending", "blocked", "failed", "succeeded", "cancelled"];
const root = app();
const params = new URLSearchParams(location.search);
const picker = el("div", { class: "toolbar" });
const summary = el("div", { id: "feature-summary" });
const board = el("section", { class: "card", "aria-labelledby": "board-h" });
const phases = el("section", { class: "card", "aria-labelledby": "phases-h" });
const dialog = el("dialog", { id: "task-detail", "aria-labelledby": "task-detail-h" });
root.replaceChildren(picker, summary, board, phases, dialog);

const tile = (label, value, sub, id) =>
  el(
    "div",
    { class: "tile", id },
    el("div", { class: "label" }, label),
    el("div", { class: "value" }, value),
    sub ? el("div", { class: "sub" }, sub) : null,
  );
const tasks = (n) => `${n} task${n === 1 ? "" : "s"}`;
const span = (s) =>
  s < 120
    ? `${Math.round(s)} s`
    : s < 7200
      ? `${Math.round(s / 60)} min`
      : s < 172800
        ? `${(s / 3600).toFixed(1)} h`
        : `${(s / 86400).toFixed(1)} days`;

/** Velocity in a unit its window supports, with that window. */
function velocityTile(m) {
  const w = m.velocity_window_s;
  if (w === null || w === undefined || m.velocity_tasks_per_day === null)
    return tile("Velocity", "—", "no task claimed by a worker yet", "m-velocity");
  const [unit, per] = w < 3600 ? ["min", 1440] : w < 172800 ? ["h", 24] : ["day", 1];
  const rate = m.velocity_tasks_per_day / per;
  return tile(
    "Velocity",
    `${rate === 0 ? 0 : rate < 10 ? rate.toPrecision(2) : Math.round(rate)}/${unit}`,
    `${tasks(m.velocity_tasks)} finished by workers in the last ${span(w)}`,
    "m-velocity",
  );
}

/** "2 tasks need attention: 1 failed, 1 blocked" ("" when none does). */
function attentionNote(attention) {
  const names = { manual: "manual (waiting for a person)", waiting_on_them: "waiting on those" };
  const entries = Object.entries(attention || {}).filter(([, n]) => n);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  if (!total) return "";
  return `${tasks(total)} need${total === 1 ? "s" : ""} attention: ${entries.map(([k, n]) => `${n} ${names[k] || k}`).join(", ")}`;
}

/** The completion estimate of the work workers can still do with its interval, or why there is none. */
function etaTile(m) {
  const f = m.forecast || {};
  const stuck = attentionNote(f.attention);
  const also = stuck ? `; ${stuck}` : "";
  if (f.basis === "throughput") {
    const part = stuck ? ` for the ${tasks(f.remaining)} workers can run` : "";
    return tile(
      "Estimated completion",
      fmtTime(f.eta, true),
      `90% interval ${fmtTime(f.eta_low, true)} to ${fmtTime(f.eta_high, true)}${part}, if the pace of the last ${span(f.window_s)} holds${also}`,
      "m-eta",
    );
  }
  if (f.basis === "done")
    return tile("Estimated completion", "done", `finished ${fmtTime(f.eta, true)}`, "m-eta");
  if (f.basis === "no_tasks") return tile("Estimated completion", "—", "no tasks", "m-eta");
  if (f.basis === "needs_attention")
    return tile("Estimated completion", "—", `no task left that workers can run; ${stuck}`, "m-eta");
  return tile(
    "Estimated completion",
    "—",
    `not enough history yet: ${tasks(f.completed ?? 0)} finished by workers, ${f.min_completions} needed${also}`,
    "m-eta",
  );
}
const deps = (t) => {
  try {
    return Array.isArray(t.deps) ? t.deps : JSON.parse(t.deps || "[]");
  } catch {
    return [];
  }
};

/** What an agent's model calls cost: "unknown" when every call's price is unknown, never $0.00 for them. */
function agentCost(usd, calls, unpriced) {
  if (!calls) return "no model calls";
  const note = unpriced && unpriced < calls ? `, ${unpricedNote(unpriced)}` : "";
  return fmtTotalCost(usd, calls, unpriced) + note;
}
const lines = (added, removed) =>
  added === null || added === undefined ? "" : ` (+${fmtInt(added)}/-${fmtInt(removed ?? 0)})`;
const files = (n, added, removed) =>
  n === null || n === undefined ? null : `${fmtInt(n)} file${n === 1 ? "" : "s"}${lines(added, removed)}`;
const fact = (cls, label, value) => el("div", { class: cls }, el("dt", {}, label), el("dd", {}, value));

/** The agent figures of a task's card: from its attempts (`a`, the agents section), or its agent alone
 * (with "none yet" for attempts only when the agents section was read). */
function agentFacts(t, a) {
  if (!a) {
    return el(
      "dl",
      { class: "facts" },
      fact("agent", "Agent", t.agent || feature.agent || "the default agent"),
      agentsRead ? fact("attempts", "Attempts", "none yet") : null,
    );
  }
  return el(
    "dl",
    { class: "facts" },
    fact("agent", "Agent", a.agents.join(", ") || "—"),
    fact("models", a.models.length === 1 ? "Model" : "Models", a.models.join(", ") || "—"),
    fact("attempts", "Attempts", fmtInt(a.attempts)),
    fact("cost", "Cost", agentCost(a.cost_usd, a.calls, a.unpriced_calls)),
    fact(
      "files",
      "Files changed",
      files(a.files_changed, a.lines_added, a.lines_removed) ??
        (a.outcome === "running" ? "running" : "none merged"),
    ),
  );
}

let feature = null;
let stop = null;
let agentRows = new Map(); // task key -> the agents section's row of that task
let agentsRead = false; // whether the agents section could be read at the last refresh
let openKey = null; // the task whose detail is shown

async function init() {
  let features;
  try {
    features = await api("/features");
    features = Array.isArray(features) ? features : features.features || [];
  } catch (e) {
    picker.replaceChildren(errorBox(e, "Features"));
    return;
  }
  if (!features.length) {
    picker.replaceChildren(
      emptyBox(
        "No features yet. Import a plan with ",
        el("code", {}, "architect plan import plan.md"),
        " or POST /api/v1/plans; its tasks appear here.",
      ),
    );
    return;
  }
  const wanted = params.get("feature");
  feature = features.find((f) => f.slug === wanted || String(f.id) === wanted) || features[0];
  const select = el(
    "select",
    { id: "feature" },
    features.map((f) =>
      el(
        "option",
        { value: f.slug, selected: f.slug === feature.slug },
        `${f.project} / ${f.title} (${f.status})`,
      ),
    ),
  );
  select.addEventListener("change", () => {
    feature = features.find((f) => f.slug === select.value);
    history.replaceState(null, "", `?feature=${encodeURIComponent(feature.slug)}`);
    watch();
    load();
  });
  picker.replaceChildren(
    el("div", {}, el("label", { for: "feature" }, "Feature"), select),
    el(
      "a",
      { href: `/ui/report?feature=${encodeURIComponent(feature.slug)}`, id: "report-link" },
      "Status report",
    ),
    el("p", {}, liveIndicator()),
  );
  watch();
  load();
}

function watch() {
  stop?.();
  let pending = null;
  const reload = (topic) => {
    if (topic !== "task" || pending) return;
    pending = setTimeout(() => {
      pending = null;
      load();
    }, 100);
  };
  // the bus carries this process's transitions at once; the store-tailed stream those of every
  // worker process; a slow poll is the safety net if a stream is down
  const stops = [
    subscribe("task", reload),
    subscribe(`/tasks/events?feature=${encodeURIComponent(feature.slug)}`, reload),
  ];
  const poll = setInterval(load, 10000);
  stop = () => {
    stops.forEach((f) => f());
    clearInterval(poll);
  };
}

/** A task's card; `m` (the feature's metrics, or null) gives its cost, "unknown" when no call of it has a
 * known price; an agent task's cost is its attempts' (the agents section), with its agent figures. */
function card(t, m) {
  const d = deps(t);
  const a = agentRows.get(t.key);
  const isAgent = t.executor === "agent" || a !== undefined;
  const cost = a ? undefined : m?.cost_by_task?.[t.key]; // an agent task's cost is its attempts' keys' calls
  return el(
    "li",
    { class: "task", id: `task-${t.key}`, "data-status": t.status },
    el("div", {}, el("span", { class: "key" }, t.key), " ", t.title),
    el(
      "div",
      { class: "muted" },
      `phase ${t.phase} · priority ${t.priority}${t.attempt && !a ? ` · attempt ${t.attempt}` : ""}` +
        (cost !== undefined
          ? ` · ${fmtTotalCost(cost, m.calls_by_task?.[t.key], m.unpriced_by_task?.[t.key])}`
          : ""),
    ),
    d.length ? el("div", { class: "deps" }, `depends on ${d.join(", ")}`) : null,
    t.status === "running"
      ? el("div", { class: "muted" }, `${t.worker_id || "worker"} · started ${fmtAgo(t.started_at)}`)
      : null,
    t.reason &&
      (["failed", "blocked"].includes(t.status) || (t.status === "ready" && t.reason.startsWith("waiting:")))
      ? el("div", { class: "deps" }, t.reason)
      : null,
    isAgent ? agentFacts(t, a) : null,
    el(
      "button",
      { type: "button", class: "secondary small", onclick: () => openTask(t.key) },
      "Details",
      el("span", { class: "visually-hidden" }, ` of ${t.key}`),
    ),
  );
}

async function load() {
  if (!feature) return;
  const ref = encodeURIComponent(feature.slug);
  const [tasksR, metricsR, agentsR] = await Promise.allSettled([
    api(`/features/${ref}/tasks`),
    api(`/features/${ref}/metrics`),
    api(`/features/${ref}/agents`),
  ]);
  const m = metricsR.status === "fulfilled" ? metricsR.value : null;
  agentsRead = agentsR.status === "fulfilled";
  agentRows = new Map(agentsRead ? (agentsR.value.tasks || []).map((a) => [a.task, a]) : []);
  if (dialog.open && openKey) fillTask(openKey);
  summary.replaceChildren(
    metricsR.status === "rejected"
      ? errorBox(metricsR.reason, "Delivery metrics")
      : el(
          "div",
          { class: "tiles" },
          tile("Progress", fmtPct(m.progress, 0), `${m.tasks_done}/${m.tasks_total} tasks`, "m-progress"),
          velocityTile(m),
          etaTile(m),
          tile(
            "First-try success",
            fmtPct(m.first_try_success_rate, 0),
            `rework ${fmtPct(m.rework_rate, 0)}`,
            "m-first-try",
          ),
          tile(
            "Cost",
            fmtTotalCost(m.cost_usd, m.model_calls, m.unpriced_calls),
            [`${fmtInt(m.model_calls)} model calls`, unpricedNote(m.unpriced_calls)]
              .filter(Boolean)
              .join(" · "),
            "m-cost",
          ),
        ),
  );
  if (tasksR.status === "rejected") {
    board.replaceChildren(el("h2", { id: "board-h" }, "Task board"), errorBox(tasksR.reason, "Tasks"));
    return;
  }
  const tasks = Array.isArray(tasksR.value) ? tasksR.value : tasksR.value.tasks || [];
  const statuses = [
    ...ORDER.filter((s) => tasks.some((t) => t.status === s)),
    ...new Set(tasks.map((t) => t.status).filter((s) => !ORDER.includes(s))),
  ];
  const agentsError =
    agentsR.status === "rejected" && tasks.some((t) => t.executor === "agent")
      ? [errorBox(agentsR.reason, "Agent figures")]
      : [];
  board.replaceChildren(
    el("h2", { id: "board-h" }, `Task board: ${feature.title}`),
    ...agentsError,
    tasks.length
      ? el(
          "div",
          { class: "board" },
          statuses.map((s) => {
            const list = tasks
              .filter((t) => t.status === s)
              .sort((a, b) => a.phase - b.phase || b.priority - a.priority || a.key.localeCompare(b.key));
            return el(
              "section",
              { class: "column", "aria-label": `${s} tasks`, id: `col-${s}` },
              el("h3", {}, badge(s, s), ` ${list.length}`),
              el(
                "ul",
                { class: "plain" },
                list.map((t) => card(t, m)),
              ),
            );
          }),
        )
      : emptyBox("This feature has no tasks."),
  );
  phases.replaceChildren(
    el("h2", { id: "phases-h" }, "Phases"),
    m
      ? table(
          [
            { label: "Phase", cell: (p) => `${p.phase}: ${p.title}` },
            {
              label: "Progress",
              cell: (p) =>
                el(
                  "div",
                  {},
                  `${p.done}/${p.total}`,
                  bar(p.progress || 0, `phase ${p.phase} ${fmtPct(p.progress, 0)} done`),
                ),
            },
            {
              label: "Cost",
              num: true,
              cell: (p) =>
                fmtTotalCost(
                  m.cost_by_phase?.[p.phase] ?? 0,
                  m.calls_by_phase?.[p.phase] ?? 0,
                  m.unpriced_by_phase?.[p.phase] ?? 0,
                ),
            },
          ],
          m.phases || [],
          { caption: "Phases", empty: "No phases." },
        )
      : emptyBox("Phase figures need the metrics endpoint."),
  );
}

const kv = (pairs) =>
  el(
    "dl",
    { class: "kv" },
    pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "—")]),
  );
const OUTCOME_CLASS = { succeeded: "succeeded", running: "running" };
const outcomeBadge = (o) => badge(o, OUTCOME_CLASS[o] || "failed");
const secs = (s) => (s === null || s === undefined ? "—" : `${s < 10 ? s.toFixed(1) : Math.round(s)} s`);

function worktree(a) {
  switch (a.worktree_state) {
    case "kept":
      return el("span", {}, "kept: ", el("code", {}, a.worktree));
    case "removed":
      return "removed after merge";
    case "in_use":
      return el("span", {}, "in use: ", el("code", {}, a.worktree));
    case "unknown":
      return el("span", {}, "crashed; may be kept: ", el("code", {}, a.worktree));
    default:
      return "—";
  }
}

const attemptCols = [
  { label: "#", num: true, cell: (a) => a.attempt },
  { label: "Agent", cell: (a) => a.agent || "—" },
  {
    label: "Model(s)",
    cell: (a) => (a.usage?.models?.length ? a.usage.models : [a.model]).filter(Boolean).join(", ") || "—",
  },
  { label: "Outcome", cell: (a) => outcomeBadge(a.outcome) },
  { label: "Reason", cell: (a) => a.reason || "—" },
  { label: "Files changed", cell: (a) => files(a.files_changed, a.lines_added, a.lines_removed) ?? "—" },
  {
    label: "Cost",
    num: true,
    cell: (a) => (a.usage ? agentCost(a.usage.cost_usd, a.usage.calls, a.usage.unpriced) : "—"),
  },
  { label: "Isolation", cell: (a) => a.isolation || "—" },
  { label: "Worktree", cell: worktree },
  { label: "Duration", num: true, cell: (a) => secs(a.duration_s) },
];

/** Fill the detail dialog with a task and its attempts (again on each board refresh while open). */
async function fillTask(key) {
  const ref = encodeURIComponent(feature.slug);
  const path = `/features/${ref}/tasks/${encodeURIComponent(key)}`;
  const [taskR, attemptsR] = await Promise.allSettled([api(path), api(`${path}/attempts`)]);
  const body = dialog.querySelector(".dialog-body");
  if (key !== openKey || !dialog.open || !body) return; // closed, or another task opened meanwhile
  if (taskR.status === "rejected") {
    body.replaceChildren(errorBox(taskR.reason, "Task"));
    return;
  }
  const t = taskR.value;
  const a = agentRows.get(t.key);
  const agentPairs =
    t.executor === "agent" || a
      ? [
          ["Agent", a ? a.agents.join(", ") : t.agent || feature.agent || "the default agent"],
          ["Model(s)", a?.models.join(", ") || null],
          ["Cost", a ? agentCost(a.cost_usd, a.calls, a.unpriced_calls) : null],
          ["Files changed", a ? files(a.files_changed, a.lines_added, a.lines_removed) : null],
          ["Merged as", a?.merged_sha ? el("code", {}, a.merged_sha.slice(0, 12)) : null],
        ]
      : [];
  dialog.querySelector("#task-detail-h").textContent = `${t.key} ${t.title}`;
  body.replaceChildren(
    kv([
      ["Status", badge(t.status, t.status)],
      ["Reason", t.reason || null],
      ["Phase", String(t.phase)],
      ["Executor", t.executor],
      ["Attempts", a ? fmtInt(a.attempts) : String(t.attempt ?? 0)],
      ...agentPairs,
    ]),
    el("h3", {}, "Attempts"),
    attemptsR.status === "rejected"
      ? errorBox(attemptsR.reason, "Attempts")
      : table(attemptCols, attemptsR.value, {
          caption: `Attempts of ${t.key}`,
          empty:
            t.executor === "agent"
              ? "No agent attempt recorded yet. A worker with the agents configured runs it."
              : "No agent attempt: this task is not run by a coding agent.",
        }),
  );
}

function openTask(key) {
  openKey = key;
  const close = el(
    "button",
    { type: "button", class: "secondary", id: "close-task", onclick: () => dialog.close() },
    "Close",
  );
  dialog.replaceChildren(
    el("header", {}, el("h2", { id: "task-detail-h" }, key), close),
    el(
      "div",
      { class: "dialog-body", tabindex: "0", role: "region", "aria-label": "Task detail" },
      el("p", { class: "muted" }, "Loading…"),
    ),
  );
  if (!dialog.open) dialog.showModal();
  close.focus();
  const p = new URLSearchParams(location.search);
  p.set("feature", feature.slug);
  p.set("task", key);
  history.replaceState(null, "", `?${p}`);
  fillTask(key);
}
dialog.addEventListener("close", () => {
  const key = openKey;
  openKey = null;
  history.replaceState(null, "", `?feature=${encodeURIComponent(feature.slug)}`);
  // back to the task's card (the board may have been redrawn while the dialog was open)
  if (key) document.getElementById(`task-${key}`)?.querySelector("button")?.focus();
});

init().then(() => {
  if (feature && params.get("task")) openTask(params.get("task"));
});
