// Ledger explorer: filter and page through calls (newest first), open one call's detail with its
// attempts, export CSV. New calls matching the filters appear live on the first page.
import {
  api,
  app,
  badge,
  currentRange,
  download,
  el,
  emptyBox,
  errorBox,
  fmtInt,
  fmtMs,
  fmtTime,
  fmtCallCost,
  fmtUsd,
  liveIndicator,
  RANGES,
  servedBy,
  subscribe,
  table,
} from "../common.js";

const PAGE = 50;
const FILTERS = [
  ["model_group", "Model group"],
  ["deployment", "Deployment"],
  ["status", "Status"],
  ["project", "Project"],
  ["feature", "Feature"],
  ["key_id", "Key id"],
  ["cache", "Cache"],
  ["endpoint", "API"],
];
const params = new URLSearchParams(location.search);
let offset = Number(params.get("offset") || 0) || 0;
let rows = [];

const form = el("form", { class: "toolbar", id: "filters", role: "search", "aria-label": "Filter calls" });
const rangeSel = el(
  "select",
  { id: "f-range", name: "range" },
  RANGES.map(([k, label]) => el("option", { value: k, selected: k === currentRange("24h").key }, label)),
);
form.append(el("div", {}, el("label", { for: "f-range" }, "Time range"), rangeSel));
for (const [name, label] of FILTERS) {
  const input =
    name === "status"
      ? el(
          "select",
          { id: `f-${name}`, name },
          ["", "ok", "error"].map((v) =>
            el("option", { value: v, selected: params.get(name) === v }, v || "any"),
          ),
        )
      : el("input", { id: `f-${name}`, name, value: params.get(name) || "", size: 12 });
  form.append(el("div", {}, el("label", { for: `f-${name}` }, label), input));
}
form.append(
  el("div", {}, el("button", { type: "submit" }, "Apply")),
  el(
    "div",
    {},
    el("button", { type: "button", class: "secondary", id: "export", onclick: exportCsv }, "Export CSV"),
  ),
);
form.addEventListener("submit", (e) => {
  e.preventDefault();
  offset = 0;
  syncUrl();
  load();
});

const status = el("div", { id: "ledger-status" });
const results = el("div", { id: "ledger-results" });
const pager = el("nav", { class: "pager", "aria-label": "Pages" });
const dialog = el("dialog", { id: "call-detail", "aria-labelledby": "detail-h" });
app().replaceChildren(
  form,
  el("p", {}, liveIndicator()),
  status,
  el("section", { class: "card", "aria-label": "Calls" }, results, pager),
  dialog,
);

function filters() {
  const fd = new FormData(form);
  const out = {};
  for (const [name] of FILTERS) {
    const v = String(fd.get(name) || "").trim();
    if (v) out[name] = v;
  }
  return out;
}
function query(extra = {}) {
  const secs = (RANGES.find((r) => r[0] === rangeSel.value) || RANGES[3])[2];
  const now = Date.now() / 1000;
  return new URLSearchParams({ since: String(now - secs), ...filters(), ...extra }).toString();
}
function syncUrl() {
  const p = new URLSearchParams({ range: rangeSel.value, ...filters() });
  if (offset) p.set("offset", String(offset));
  history.replaceState(null, "", `${location.pathname}?${p}`);
}

const columns = [
  { label: "Time", cell: (c) => fmtTime(c.ts, true) },
  {
    label: "Request id",
    cell: (c) =>
      el(
        "button",
        {
          type: "button",
          class: "secondary",
          "data-id": c.request_id,
          onclick: () => openDetail(c.request_id),
        },
        c.request_id,
      ),
  },
  { label: "Model", cell: (c) => c.model },
  { label: "API", cell: (c) => c.endpoint },
  { label: "Deployment", cell: servedBy },
  { label: "Status", cell: (c) => badge(c.status, c.status) },
  { label: "HTTP", num: true, cell: (c) => c.http_status },
  { label: "Total", num: true, cell: (c) => fmtMs(c.total_ms) },
  { label: "TTFT", num: true, cell: (c) => fmtMs(c.ttft_ms) },
  {
    label: "Tokens in/out",
    num: true,
    cell: (c) => `${fmtInt(c.prompt_tokens)} / ${fmtInt(c.completion_tokens)}`,
  },
  { label: "Cost", num: true, cell: fmtCallCost },
  { label: "Cache", cell: (c) => c.cache || "—" },
];

function draw(newId) {
  const t = table(columns, rows, { caption: "Calls, newest first" });
  if (!rows.length) {
    results.replaceChildren(
      emptyBox(
        offset
          ? "No more calls on this page. Go back to the previous page."
          : "No calls match these filters in this time range. Widen the range or clear a filter; new calls appear here live.",
      ),
    );
  } else {
    if (newId) t.querySelector("tbody tr")?.classList.add("new");
    results.replaceChildren(t);
  }
  const prev = el(
    "button",
    {
      type: "button",
      class: "secondary",
      disabled: offset === 0,
      onclick: () => {
        offset = Math.max(0, offset - PAGE);
        syncUrl();
        load();
      },
    },
    "Previous",
  );
  const next = el(
    "button",
    {
      type: "button",
      class: "secondary",
      disabled: rows.length < PAGE,
      onclick: () => {
        offset += PAGE;
        syncUrl();
        load();
      },
    },
    "Next",
  );
  pager.replaceChildren(
    prev,
    el("span", {}, rows.length ? `Calls ${offset + 1}–${offset + rows.length}` : ""),
    next,
  );
}

async function load() {
  try {
    const data = await api(`/calls?${query({ limit: String(PAGE), offset: String(offset) })}`);
    rows = data.calls || [];
    status.replaceChildren();
    draw();
  } catch (e) {
    status.replaceChildren(errorBox(e, "Calls"));
  }
}

function matches(c) {
  const f = filters();
  return Object.entries(f).every(([k, v]) => String(c[k] ?? "") === v || !(k in c));
}

async function exportCsv() {
  try {
    await download(`/export/calls.csv?${query()}`, "calls.csv");
  } catch (e) {
    status.replaceChildren(errorBox(e, "CSV export"));
  }
}

const kv = (pairs) =>
  el(
    "dl",
    { class: "kv" },
    pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "—")]),
  );

/** The auto route's decision (P(acceptable) per candidate, the chosen one first marked) and the
 * call's outcome, when it has either. */
function routeSection(c, outcome) {
  if (!c.routed_by && !outcome) return [];
  const scores = c.route_scores && typeof c.route_scores === "object" ? Object.entries(c.route_scores) : [];
  const prediction = scores.length
    ? scores.map(([g, p]) => `${g === c.model_group ? "▶ " : ""}${g} ${Number(p).toFixed(2)}`).join(" · ")
    : null;
  const judged = outcome
    ? `${Number(outcome.outcome).toFixed(2)} (${outcome.source}${outcome.comment ? `: ${outcome.comment}` : ""})`
    : "none yet";
  return [
    el("h3", {}, "Auto route and outcome"),
    kv([
      ["Routed by", c.routed_by],
      ["Chosen", c.routed_by ? c.model_group : null],
      ["Task type", c.task_type],
      ["Prediction P(acceptable)", prediction],
      ["Reason", c.routed_by ? c.route_reason : null],
      ["Explored", c.routed_by ? (c.explored ? "yes (exploration)" : "no") : null],
      ["Outcome", judged],
    ]),
  ];
}

async function openDetail(id, retries = 3) {
  const body = el(
    "div",
    { class: "dialog-body", tabindex: "0", role: "region", "aria-label": "Call detail" },
    el("p", { class: "muted" }, "Loading…"),
  );
  const close = el(
    "button",
    { type: "button", class: "secondary", id: "close-detail", onclick: () => dialog.close() },
    "Close",
  );
  dialog.replaceChildren(el("header", {}, el("h2", { id: "detail-h" }, `Call ${id}`), close), body);
  if (!dialog.open) dialog.showModal();
  close.focus();
  let data;
  for (let i = 0; ; i++) {
    try {
      data = await api(`/calls/${encodeURIComponent(id)}`);
      break;
    } catch (e) {
      if (e.status === 404 && i < retries) {
        await new Promise((r) => setTimeout(r, 400));
        continue;
      } // still being written
      body.replaceChildren(errorBox(e, "Call detail"));
      return;
    }
  }
  const c = data.call;
  const tags =
    c.tags && typeof c.tags === "object"
      ? Object.entries(c.tags)
          .map(([k, v]) => `${k}=${v}`)
          .join(", ")
      : c.tags;
  body.replaceChildren(
    el("h3", {}, "Summary"),
    kv([
      ["Time", fmtTime(c.ts, true)],
      ["Status", badge(c.status, c.status)],
      ["HTTP status", String(c.http_status)],
      ["Error", c.error_kind ? `${c.error_kind}: ${c.error_message || ""}` : null],
      ["Model asked", c.model],
      ["Model group", c.model_group],
      ["Deployment", servedBy(c)],
      ["Provider", c.provider],
      ["Simulated", c.simulated ? "yes" : "no"],
      ["Route", c.route_reason],
      ["Stream", c.stream ? "yes" : "no"],
      ["Attempts / fallbacks", `${c.attempts} / ${c.fallbacks}`],
    ]),
    ...routeSection(c, data.outcome),
    el("h3", {}, "Timings and tokens"),
    kv([
      ["Time to first token", fmtMs(c.ttft_ms)],
      ["Total time", fmtMs(c.total_ms)],
      ["Prompt tokens", fmtInt(c.prompt_tokens)],
      ["Completion tokens", fmtInt(c.completion_tokens)],
      ["Cached tokens", fmtInt(c.cached_tokens)],
      ["Tokens estimated", c.tokens_estimated ? "yes" : "no"],
    ]),
    el("h3", {}, "Cost and cache"),
    kv([
      ["Cost", fmtCallCost(c)],
      ["Cost from", c.cost_source || "—"],
      ["Baseline cost", fmtUsd(c.baseline_cost_usd)],
      ["Cache", c.cache || "none"],
      ["Saved cost", fmtUsd(c.saved_cost_usd)],
      ["Saved time", fmtMs(c.saved_ms)],
      ["Key", c.key_id],
      ["Tags", tags || null],
    ]),
    el("h3", {}, `Attempts (${data.attempts.length})`),
    table(
      [
        { label: "#", num: true, cell: (a) => a.attempt },
        { label: "Deployment", cell: (a) => a.deployment },
        { label: "Provider", cell: (a) => a.provider },
        { label: "Status", cell: (a) => badge(a.status, a.status) },
        { label: "HTTP", num: true, cell: (a) => a.http_status ?? "—" },
        { label: "Error", cell: (a) => a.error_kind || "—" },
        { label: "TTFT", num: true, cell: (a) => fmtMs(a.ttft_ms) },
        { label: "Total", num: true, cell: (a) => fmtMs(a.total_ms) },
        {
          label: "Tokens in/out",
          num: true,
          cell: (a) => `${fmtInt(a.prompt_tokens)} / ${fmtInt(a.completion_tokens)}`,
        },
        {
          label: "Cost",
          num: true,
          cell: (a) => (a.status === "ok" && c.cost_source === "unknown" ? "unknown" : fmtUsd(a.cost_usd)),
        },
      ],
      data.attempts,
      {
        caption: "Attempts",
        empty: "No upstream attempt: the call was served from the cache or refused before routing.",
      },
    ),
  );
}

subscribe("call", (topic, c) => {
  if (topic !== "call" || offset !== 0 || !matches(c)) return;
  rows = [c, ...rows.filter((r) => r.request_id !== c.request_id)].slice(0, PAGE);
  draw(c.request_id);
});
load();
if (params.get("call")) openDetail(params.get("call"));
