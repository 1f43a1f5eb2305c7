// Providers & models: per deployment health, circuit state and its history, latency, the attempts made
// on it and their error kinds, cost per model and vendor, requests routed and failed over. Breaker state refreshes live.
import {
  api,
  app,
  badge,
  barChart,
  currentRange,
  el,
  emptyBox,
  errorBox,
  fmtAgo,
  fmtInt,
  fmtMs,
  fmtPct,
  fmtTotalCost,
  fmtUsd,
  liveIndicator,
  rangeSelect,
  section,
  subscribe,
  table,
  unpricedNote,
} from "../common.js";

const root = app();
const health = el("div", { id: "health" });
const costs = el("div", { class: "grid", id: "costs" });
const note = el("div");
const quality = el("section", { class: "card", "aria-labelledby": "quality-h", id: "quality" });
root.replaceChildren(
  el(
    "div",
    { class: "toolbar" },
    rangeSelect(() => load()),
    el("p", {}, liveIndicator()),
  ),
  note,
  el(
    "section",
    { class: "card", "aria-labelledby": "dep-h" },
    el("h2", { id: "dep-h" }, "Deployments"),
    health,
  ),
  costs,
  quality,
);

const kinds = (m) =>
  Object.entries(m || {})
    .map(([k, v]) => `${k} ${v}`)
    .join(", ") || "—";

function historyCell(d) {
  const h = d.breaker?.history || [];
  if (!h.length) return el("span", { class: "muted" }, "no transitions");
  return el(
    "details",
    {},
    el(
      "summary",
      {},
      `${h.length} transition${h.length === 1 ? "" : "s"}, last ${fmtAgo(h[h.length - 1].ts)}`,
    ),
    el(
      "ul",
      {},
      h
        .slice(-8)
        .reverse()
        .map((e) => el("li", {}, `${fmtAgo(e.ts)}: ${e.from} → ${e.to}${e.reason ? ` (${e.reason})` : ""}`)),
    ),
  );
}

/** A deployment's price (USD per million tokens in / out) and where it comes from, or "unknown". */
function priceCell(d) {
  const p = d.price;
  if (!p) return el("span", { title: d.price_detail || "" }, badge("unknown", "warn"));
  const text = `${fmtUsd(p.input_per_mtok)} / ${fmtUsd(p.output_per_mtok)}`;
  return el(
    "span",
    { title: d.price_detail || "" },
    text,
    d.price_source === "catalogue" ? " (catalogue)" : "",
  );
}

async function load() {
  const range = currentRange();
  const now = Date.now() / 1000;
  const [prov, sum] = await Promise.allSettled([
    api("/providers"),
    api(`/metrics/summary?since=${now - range.seconds}&until=${now}&group_by=deployment,provider`),
  ]);
  if (prov.status === "rejected") {
    health.replaceChildren(errorBox(prov.reason, "Providers"));
    return;
  }
  const deps = prov.value.deployments || [];
  const stats = new Map();
  if (sum.status === "fulfilled") for (const r of sum.value.rows || []) stats.set(r.deployment, r);
  note.replaceChildren(
    sum.status === "rejected" ? errorBox(sum.reason, "Traffic figures (metrics summary)") : "",
  );
  const s = (d) => stats.get(d.name) || {};
  health.replaceChildren(
    table(
      [
        {
          label: "Deployment",
          cell: (d) =>
            el("span", {}, el("strong", {}, d.name), d.simulated ? [" ", badge("simulated", "warn")] : null),
        },
        { label: "Group", cell: (d) => d.group },
        { label: "Provider / model", cell: (d) => `${d.provider} / ${d.model}` },
        { label: "Price in/out per Mtok", cell: priceCell },
        {
          label: "Circuit",
          cell: (d) =>
            el(
              "span",
              {},
              badge(d.breaker?.state || "unknown", d.breaker?.state),
              d.breaker?.state === "open" ? ` retry in ${d.breaker.retry_in_s}s` : "",
            ),
        },
        { label: "History", cell: historyCell },
        { label: "In flight", num: true, cell: (d) => fmtInt(d.in_flight) },
        {
          label: "EWMA TTFT / total",
          num: true,
          cell: (d) => `${fmtMs(d.ewma_ttft_ms)} / ${fmtMs(d.ewma_total_ms)}`,
        },
        { label: "Calls answered", num: true, cell: (d) => fmtInt(s(d).requests) },
        { label: "Call error rate", num: true, cell: (d) => fmtPct(s(d).error_rate) },
        { label: "Attempts", num: true, cell: (d) => fmtInt(s(d).attempts) },
        {
          label: "Failed attempts",
          num: true,
          cell: (d) =>
            s(d).attempts
              ? `${fmtInt(s(d).failed_attempts)} (${fmtPct(s(d).attempt_error_rate)})`
              : fmtInt(0),
        },
        { label: "Attempt error kinds", cell: (d) => kinds(s(d).attempt_errors_by_kind) },
        { label: "p50 / p95", num: true, cell: (d) => `${fmtMs(s(d).p50_ms)} / ${fmtMs(s(d).p95_ms)}` },
        { label: "Failovers answered", num: true, cell: (d) => fmtInt(s(d).failovers) },
        {
          label: "Cost",
          num: true,
          cell: (d) =>
            s(d).requests ? fmtTotalCost(s(d).cost_usd, s(d).requests, s(d).unpriced) : fmtUsd(0),
        },
      ],
      deps,
      {
        caption: "Deployments",
        empty: "No deployments configured. Add providers and models to the config file.",
      },
    ),
  );
  if (sum.status === "fulfilled") {
    // one row per deployment and provider; the API counts cache hits under deployment and provider
    // "cache", and calls no deployment answered (errors, refusals) under none
    const rows = sum.value.rows || [];
    const total = (k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
    const served = rows.filter((r) => r.deployment);
    const unanswered = rows.filter((r) => !r.deployment).reduce((a, r) => a + (r.requests || 0), 0);
    const unpricedCalls = served.reduce((a, r) => a + (r.unpriced || 0), 0);
    const byVendor = new Map();
    for (const r of served) byVendor.set(r.provider, (byVendor.get(r.provider) || 0) + (r.cost_usd || 0));
    const desc = (items) => items.sort((a, b) => b.value - a.value);
    const routed = desc(served.map((r) => ({ label: r.deployment, value: r.requests || 0 })));
    if (unanswered) routed.push({ label: "no deployment answered (errors)", value: unanswered });
    costs.replaceChildren(
      el(
        "section",
        { class: "card" },
        barChart(desc(served.map((r) => ({ label: r.deployment, value: r.cost_usd || 0 }))), {
          title: "Cost per deployment",
          format: fmtUsd,
        }),
        unpricedCalls ? el("p", { class: "muted" }, `These costs ${unpricedNote(unpricedCalls)}.`) : null,
      ),
      el(
        "section",
        { class: "card" },
        barChart(desc([...byVendor].map(([label, value]) => ({ label, value }))), {
          title: "Cost per vendor",
          format: fmtUsd,
        }),
      ),
      el(
        "section",
        { class: "card" },
        barChart(routed, { title: "Requests per deployment", format: fmtInt }),
        el(
          "p",
          { class: "muted" },
          `Answered by another deployment than the first one tried (in the group or a fallback group): ${fmtInt(total("failovers"))} calls; upstream attempts: ${fmtInt(total("attempts"))}, of which failed: ${fmtInt(total("failed_attempts"))}.`,
        ),
      ),
    );
  } else {
    costs.replaceChildren(
      el(
        "section",
        { class: "card" },
        emptyBox("Cost and routing figures need the metrics API (GET /api/v1/metrics/summary)."),
      ),
    );
  }
}

let pending = null;
subscribe("call,breaker", () => {
  if (!pending)
    pending = setTimeout(() => {
      pending = null;
      load();
    }, 1000);
});
load();
setInterval(load, 15000);

/** Quality per model group x task type, from the recorded outcomes (feedback, task validation): the
 * posterior mean of the share of acceptable answers, its 90% interval and the price-tier prior. */
async function loadQuality() {
  await section(quality, "Quality", async () => {
    const data = await api("/quality");
    const rows = data.rows || [];
    return [
      el("h2", { id: "quality-h" }, "Quality per model group and task type"),
      el(
        "p",
        { class: "muted" },
        "From recorded outcomes (POST /v1/feedback, task validation); the mean is a Beta posterior " +
          "that starts at the price-tier prior, with its 90% interval.",
      ),
      table(
        [
          { label: "Model group", cell: (r) => r.model_group },
          { label: "Task type", cell: (r) => r.task_type },
          { label: "Outcomes", num: true, cell: (r) => fmtInt(r.n) },
          { label: "Acceptable", num: true, cell: (r) => (r.n ? fmtPct(r.successes / r.n) : "—") },
          { label: "Estimate", num: true, cell: (r) => r.mean.toFixed(2) },
          {
            label: "90% interval",
            cell: (r) => `${r.interval[0].toFixed(2)} – ${r.interval[1].toFixed(2)}`,
          },
          { label: "Prior", num: true, cell: (r) => r.prior.toFixed(2) },
        ],
        rows,
        {
          caption: "Quality per model group and task type",
          empty:
            "No outcomes recorded yet. Send POST /v1/feedback for calls, or run agent tasks whose validator judges them.",
        },
      ),
    ];
  });
}
loadQuality();
