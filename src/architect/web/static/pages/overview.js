// Overview: traffic, errors, latency and TTFT percentiles, cost against budgets, saving against the
// baseline, cache hit rate, open alerts and the latest calls (live).
import {
  api,
  app,
  badge,
  bar,
  currentRange,
  el,
  emptyBox,
  errorBox,
  fmtAgo,
  fmtInt,
  fmtMs,
  fmtPct,
  fmtTime,
  fmtCallCost,
  fmtTotalCost,
  fmtUsd,
  lineChart,
  liveIndicator,
  rangeSelect,
  section,
  servedBy,
  startOfDay,
  startOfMonth,
  subscribe,
  table,
  unpricedNote,
} from "../common.js";

const ADDITIVE = [
  "requests",
  "errors",
  "prompt_tokens",
  "completion_tokens",
  "cost_usd",
  "baseline_cost_usd",
  "saving_usd",
  "cache_hits",
  "unpriced",
  "attempts",
  "fallbacks",
];

/** One total row from summary rows; percentiles exist only when the API returned a single row. */
function total(summary) {
  const rows = summary.rows || [];
  const t = Object.fromEntries(ADDITIVE.map((k) => [k, rows.reduce((a, r) => a + (r[k] || 0), 0)]));
  for (const k of [
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "ttft_p99_ms",
    "cache_hit_p50_ms",
  ]) {
    t[k] = rows.length === 1 ? rows[0][k] : null;
  }
  t.error_rate = t.requests ? t.errors / t.requests : null;
  return t;
}

const tile = (label, value, sub, id) =>
  el(
    "div",
    { class: "tile", id },
    el("div", { class: "label" }, label),
    el("div", { class: "value" }, value),
    sub ? el("div", { class: "sub" }, sub) : null,
  );

const q = (o) =>
  new URLSearchParams(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)).toString();

function budgetLine(b) {
  const used = b.limit_usd ? b.spent_usd / b.limit_usd : 0;
  return el(
    "div",
    { class: "budget" },
    el(
      "div",
      {},
      `${b.scope}${b.target ? ` ${b.target}` : ""} · ${b.period}: ${fmtUsd(b.spent_usd)} of ${fmtUsd(b.limit_usd)} (${fmtPct(used, 0)})`,
    ),
    bar(used, `${b.scope} ${b.target || ""} ${b.period} budget ${fmtPct(used, 0)} used`),
  );
}
const budgetsFor = (budgets, periods) =>
  budgets.filter((b) => periods.includes(String(b.period).toLowerCase()));

const root = app();
const tiles = el("section", { "aria-label": "Key figures", class: "tiles-section" });
const charts = el("div", { class: "grid" });
const alerts = el("section", { class: "card", "aria-labelledby": "alerts-h" });
const budgetsCard = el("section", { class: "card", "aria-labelledby": "budgets-h" });
const autoCard = el("section", { class: "card", "aria-labelledby": "auto-h", id: "auto-card", hidden: true });
const recent = el("div");
const recentCard = el(
  "section",
  { class: "card", "aria-labelledby": "recent-h" },
  el("h2", { id: "recent-h" }, "Latest calls ", liveIndicator()),
  recent,
);
root.replaceChildren(
  el(
    "div",
    { class: "toolbar" },
    rangeSelect(() => load()),
    el("p", { class: "muted", id: "updated" }),
  ),
  tiles,
  charts,
  autoCard,
  el("div", { class: "grid" }, budgetsCard, alerts),
  recentCard,
);

async function load() {
  const range = currentRange();
  const now = Date.now() / 1000;
  const since = now - range.seconds;
  const step = range.seconds <= 6 * 3600 ? 60 : 3600; // the API serves per-minute or per-hour points
  const [sum, day, month, ts, budgets] = await Promise.allSettled([
    api(`/metrics/summary?${q({ since, until: now, group_by: "" })}`),
    api(`/metrics/summary?${q({ since: startOfDay(), until: now, group_by: "", percentiles: "false" })}`),
    api(`/metrics/summary?${q({ since: startOfMonth(), until: now, group_by: "", percentiles: "false" })}`),
    api(`/metrics/timeseries?${q({ since, until: now, step })}`),
    api("/budgets"),
  ]);
  const budgetRows = budgets.status === "fulfilled" ? budgets.value.budgets || [] : [];
  // tiles
  if (sum.status === "rejected") {
    tiles.replaceChildren(errorBox(sum.reason, "Metrics summary"));
  } else {
    const t = total(sum.value);
    const minutes = range.seconds / 60;
    const d = day.status === "fulfilled" ? total(day.value) : null;
    const m = month.status === "fulfilled" ? total(month.value) : null;
    // the budget closest to its limit for each period (budgets are per key or per project)
    const tightest = (list) => list.sort((a, b) => b.spent_usd / b.limit_usd - a.spent_usd / a.limit_usd)[0];
    const dayBudget = tightest(budgetsFor(budgetRows, ["day", "daily"]));
    const monthBudget = tightest(budgetsFor(budgetRows, ["month", "monthly"]));
    const budgetNote = (b, period) =>
      b
        ? `tightest ${period} budget: ${b.scope} ${b.target} ${fmtUsd(b.spent_usd)} of ${fmtUsd(b.limit_usd)}`
        : `no ${period} budget set`;
    const baseline = sum.value.baseline;
    const notice =
      t.requests === 0
        ? [
            el(
              "p",
              { class: "notice" },
              `No calls in the ${range.label.toLowerCase()}. Point an OpenAI client at this gateway's /v1 (or run `,
              el("code", {}, "architect serve --example"),
              ") and the figures appear here.",
            ),
          ]
        : [];
    tiles.replaceChildren(
      ...notice,
      el(
        "div",
        { class: "tiles" },
        tile(
          "Requests / min",
          (t.requests / minutes).toFixed(t.requests / minutes < 10 ? 2 : 0),
          `${fmtInt(t.requests)} in range`,
          "t-rpm",
        ),
        tile("Error rate", fmtPct(t.error_rate), `${fmtInt(t.errors)} errors`, "t-errors"),
        tile(
          "Latency p50 / p95 / p99",
          `${fmtMs(t.p50_ms)}`,
          `p95 ${fmtMs(t.p95_ms)} · p99 ${fmtMs(t.p99_ms)} · cache hits excluded`,
          "t-latency",
        ),
        tile(
          "Time to first token p50",
          fmtMs(t.ttft_p50_ms),
          t.ttft_p50_ms === null
            ? "no stream answered by an upstream in range"
            : `p95 ${fmtMs(t.ttft_p95_ms)} · p99 ${fmtMs(t.ttft_p99_ms)} · streamed upstream calls`,
          "t-ttft",
        ),
        tile(
          "Cost today",
          d ? fmtTotalCost(d.cost_usd, d.requests, d.unpriced) : "—",
          [budgetNote(dayBudget, "daily"), unpricedNote(d?.unpriced)].filter(Boolean).join(" · "),
          "t-today",
        ),
        tile(
          "Cost this month",
          m ? fmtTotalCost(m.cost_usd, m.requests, m.unpriced) : "—",
          [budgetNote(monthBudget, "monthly"), unpricedNote(m?.unpriced)].filter(Boolean).join(" · "),
          "t-month",
        ),
        tile(
          "Saving vs baseline",
          fmtUsd(t.saving_usd),
          baseline
            ? `against ${baseline} (${fmtUsd(t.baseline_cost_usd)} had it served all)`
            : "no baseline model configured",
          "t-saving",
        ),
        tile(
          "Cache hit rate",
          t.requests ? fmtPct(t.cache_hits / t.requests) : "—",
          `${fmtInt(t.cache_hits)} hits${t.cache_hits ? ` · hit latency p50 ${fmtMs(t.cache_hit_p50_ms)}` : ""}`,
          "t-cache",
        ),
      ),
    );
  }
  // charts
  if (ts.status === "rejected") {
    charts.replaceChildren(el("div", { class: "card" }, errorBox(ts.reason, "Time series")));
  } else {
    const pts = ts.value.points || [];
    const s = (key, name, f = (v) => v) => ({
      name,
      values: pts.map((p) => [p.t, p[key] === null || p[key] === undefined ? null : f(p[key])]),
    });
    const perMin = (v) => v / (ts.value.step / 60);
    charts.replaceChildren(
      el(
        "div",
        { class: "card" },
        lineChart([s("requests", "requests/min", perMin), s("errors", "errors/min", perMin)], {
          title: "Traffic and errors",
          yFormat: (v) => (v < 10 ? v.toFixed(1) : fmtInt(v)),
        }),
      ),
      el(
        "div",
        { class: "card" },
        lineChart(
          [s("p50_ms", "p50"), s("p95_ms", "p95"), s("p99_ms", "p99"), s("ttft_p50_ms", "TTFT p50")],
          { title: "Latency percentiles (cache hits excluded)", yFormat: fmtMs },
        ),
      ),
      el(
        "div",
        { class: "card" },
        lineChart([s("cost_usd", "cost"), s("baseline_cost_usd", "baseline cost")], {
          title: "Cost against the baseline",
          yFormat: fmtUsd,
        }),
      ),
    );
  }
  // budgets
  budgetsCard.replaceChildren(
    el("h2", { id: "budgets-h" }, "Budgets"),
    budgets.status === "rejected"
      ? errorBox(budgets.reason, "Budgets")
      : budgetRows.length
        ? el("div", {}, budgetRows.map(budgetLine))
        : emptyBox(
            "No budgets set. Create a key with a budget on the Keys & budgets page (or `architect keys create --budget-usd`); set a project's budget with POST /api/v1/budgets (admin key).",
          ),
  );
  await loadAuto(since);
  document.getElementById("updated").textContent = `Updated ${fmtTime(now)}`;
}

const pOrDash = (x) => (x === null || x === undefined ? "—" : x.toFixed(2));

/** "Routed by auto": per auto group in range, each candidate's share of its calls, the predicted
 * P(acceptable) against the observed outcomes, explorations and the saving against the baseline.
 * Shown only when an auto group served calls in range. */
async function loadAuto(since) {
  let data;
  try {
    data = await api(`/quality?${q({ since })}`);
  } catch (e) {
    autoCard.hidden = false;
    autoCard.replaceChildren(el("h2", { id: "auto-h" }, "Routed by auto"), errorBox(e, "Auto routes"));
    return;
  }
  const groups = data.auto || [];
  autoCard.hidden = groups.length === 0;
  if (!groups.length) return;
  autoCard.replaceChildren(
    el("h2", { id: "auto-h" }, "Routed by auto"),
    ...groups.flatMap((a) => [
      el(
        "p",
        { class: "muted" },
        `${a.group}: ${fmtInt(a.calls)} calls · ${fmtUsd(a.cost_usd)} · saving vs baseline ${fmtUsd(a.saving_usd)}` +
          ` · explored ${fmtPct(a.explored_share)} (${fmtUsd(a.explored_cost_usd)})`,
      ),
      table(
        [
          { label: "Candidate", cell: (c) => c.model_group },
          { label: "Share", num: true, cell: (c) => fmtPct(c.share) },
          { label: "Calls", num: true, cell: (c) => fmtInt(c.calls) },
          { label: "Predicted P", num: true, cell: (c) => pOrDash(c.predicted_mean) },
          {
            label: "Observed",
            num: true,
            cell: (c) =>
              c.outcomes ? `${pOrDash(c.observed_mean)} (${fmtInt(c.outcomes)} outcomes)` : "no outcome yet",
          },
          { label: "Cost", num: true, cell: (c) => fmtUsd(c.cost_usd) },
        ],
        a.candidates,
        { caption: `Candidates of ${a.group}` },
      ),
    ]),
  );
}

async function loadAlerts() {
  await section(alerts, "Alerts", async () => {
    const { alerts: rows = [] } = await api("/alerts");
    const open = rows.filter((a) => !["resolved", "ok", "closed"].includes(String(a.state)));
    return [
      el("h2", { id: "alerts-h" }, `Open alerts (${open.length})`),
      table(
        [
          { label: "State", cell: (a) => badge(a.state, a.state) },
          { label: "Rule", cell: (a) => a.rule },
          { label: "Message", cell: (a) => a.message },
          { label: "Since", cell: (a) => fmtAgo(a.ts) },
        ],
        open,
        {
          caption: "Open alerts",
          empty:
            "No open alerts. Alert rules (budget thresholds, error rate, latency) are set in the config.",
        },
      ),
    ];
  });
  if (alerts.querySelector(".error")) alerts.prepend(el("h2", { id: "alerts-h" }, "Open alerts"));
}

const callCols = [
  { label: "Time", cell: (c) => fmtTime(c.ts) },
  {
    label: "Request",
    cell: (c) => el("a", { href: `/ui/ledger?call=${encodeURIComponent(c.request_id)}` }, c.request_id),
  },
  { label: "Model", cell: (c) => c.model },
  { label: "Deployment", cell: servedBy },
  { label: "Status", cell: (c) => badge(c.status, c.status) },
  { label: "Total", num: true, cell: (c) => fmtMs(c.total_ms) },
  { label: "Cost", num: true, cell: fmtCallCost },
];
let recentRows = [];
function drawRecent(newId) {
  const t = table(callCols, recentRows, {
    caption: "Latest calls",
    empty: "No calls yet. Requests made through the gateway appear here as they finish.",
  });
  if (newId) t.querySelector("tbody tr")?.classList.add("new");
  recent.replaceChildren(t);
}
async function loadRecent() {
  await section(recent, "Latest calls", async () => {
    recentRows = (await api("/calls?limit=10")).calls || [];
    drawRecent();
    return recent.firstChild;
  });
}

let pending = null;
subscribe("call", (topic, data) => {
  if (topic !== "call") return;
  recentRows = [data, ...recentRows.filter((r) => r.request_id !== data.request_id)].slice(0, 10);
  drawRecent(data.request_id);
  if (!pending)
    pending = setTimeout(() => {
      pending = null;
      load();
    }, 3000);
});
load();
loadAlerts();
loadRecent();
setInterval(loadAlerts, 30000);
