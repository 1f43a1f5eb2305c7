// Shared helpers of the dashboard pages: API access, DOM building, formatting, the live event
// stream and small SVG charts. Plain ES modules, no build step, no third-party code.

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") || "";
export const CSRF = meta("csrf-token");
export const IS_ADMIN = meta("principal-admin") === "true";

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

function authHeaders(extra = {}) {
  return { Authorization: `Session ${CSRF}`, ...extra };
}

async function errorFrom(res, method, path) {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body?.error?.message) message = body.error.message;
    else if (body?.detail)
      message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    /* not JSON */
  }
  if (res.status === 404 && /^Not Found$/i.test(message)) {
    message = `${method} /api/v1${path.split("?")[0]} is not available on this server yet`;
  }
  return new ApiError(res.status, message, path);
}

// Set once the user logs out: a request still in flight then gets a 401, which must not send the
// browser back to the login page with `next` in place of the logout's own redirect.
let loggingOut = false;
document.addEventListener("submit", (e) => {
  if (e.target instanceof HTMLFormElement && e.target.action.endsWith("/ui/logout")) loggingOut = true;
});

/** Call the REST API under /api/v1 with the session; returns parsed JSON or throws ApiError. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = authHeaders(body === undefined ? {} : { "Content-Type": "application/json" });
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, `cannot reach the server (${e.message})`, path);
  }
  if (res.status === 401) {
    if (!loggingOut) {
      location.assign(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    throw new ApiError(401, "session expired", path);
  }
  if (!res.ok) throw await errorFrom(res, method, path);
  return res.json();
}

/** GET an API resource as text (e.g. a Markdown report). */
export async function apiText(path) {
  let res;
  try {
    res = await fetch(`/api/v1${path}`, { headers: authHeaders(), credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, `cannot reach the server (${e.message})`, path);
  }
  if (!res.ok) throw await errorFrom(res, "GET", path);
  return res.text();
}

/** Download an API resource (e.g. a CSV export) as a file. */
export async function download(path, filename) {
  const res = await fetch(`/api/v1${path}`, { headers: authHeaders(), credentials: "same-origin" });
  if (!res.ok) throw await errorFrom(res, "GET", path);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

/** Build an element: el("td", {class: "num"}, "text", child, ...). */
export function el(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "line", "path", "rect", "text", "title", "polyline", "circle"].includes(tag);
  const node = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const app = () => document.getElementById("app");

export function errorBox(err, what) {
  const msg = err instanceof ApiError ? err.message : String(err?.message || err);
  return el("p", { class: "error", role: "alert" }, `${what ? what + ": " : ""}${msg}`);
}
export const emptyBox = (...text) => el("p", { class: "empty" }, ...text);

/** Render into a container: an element (or array) from `fn`, or a plain error box if it throws. */
export async function section(container, what, fn) {
  try {
    const out = await fn();
    container.replaceChildren(...[out].flat().filter(Boolean));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    container.replaceChildren(errorBox(e, what));
  }
}

// -- formatting ----------------------------------------------------------------------------------
export const fmtInt = (n) => (n === null || n === undefined ? "—" : Math.round(n).toLocaleString("en-US"));
export const fmtMs = (n) =>
  n === null || n === undefined ? "—" : n >= 10000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
export const fmtPct = (x, digits = 1) =>
  x === null || x === undefined ? "—" : `${(x * 100).toFixed(digits)}%`;
export function fmtUsd(n) {
  if (n === null || n === undefined) return "—";
  const a = Math.abs(n);
  return `$${a === 0 ? "0.00" : a < 0.01 ? n.toFixed(5) : a < 100 ? n.toFixed(2) : Math.round(n).toLocaleString("en-US")}`;
}
/** A call's cost: "unknown" when its deployment's price is unknown (never $0.00 for such a call). */
export const fmtCallCost = (c) => (c.cost_source === "unknown" ? "unknown" : fmtUsd(c.cost_usd));
/** A total cost over `requests` calls, `unpriced` of them of unknown price: "unknown" when all are. */
export const fmtTotalCost = (usd, requests, unpriced) =>
  unpriced && unpriced >= requests ? "unknown" : fmtUsd(usd);
/** What a total cost leaves out ("" when nothing). */
export const unpricedNote = (unpriced) =>
  unpriced ? `leaves out ${fmtInt(unpriced)} call${unpriced === 1 ? "" : "s"} of unknown price` : "";
export function fmtTime(ts, withDate = false) {
  if (!ts) return "—";
  const d = new Date(ts * 1000);
  return withDate
    ? d.toLocaleString("en-GB", { hour12: false })
    : d.toLocaleTimeString("en-GB", { hour12: false });
}
export function fmtAgo(ts) {
  if (!ts) return "—";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${(s / 86400).toFixed(1)} d ago`;
}
/** Who answered a ledger call: its deployment, "cache" for a cache hit, "—" when nothing did. */
export const servedBy = (c) => (String(c.cache || "").startsWith("hit") ? "cache" : c.deployment || "—");
export const badge = (text, cls) => el("span", { class: `badge ${cls || text}` }, text);

export function table(columns, rows, { caption, empty } = {}) {
  if (!rows.length && empty) return emptyBox(empty);
  const head = el(
    "tr",
    {},
    columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : null }, c.label)),
  );
  const body = rows.map((r) =>
    el(
      "tr",
      {},
      columns.map((c) => el("td", { class: c.num ? "num" : null }, c.cell(r))),
    ),
  );
  return el(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption || "Table" },
    el(
      "table",
      {},
      caption ? el("caption", { class: "visually-hidden" }, caption) : null,
      el("thead", {}, head),
      el("tbody", {}, body),
    ),
  );
}

export function bar(fraction, label) {
  const f = Math.max(0, Math.min(1, fraction || 0));
  const span = el("span");
  span.style.width = `${(f * 100).toFixed(1)}%`;
  return el("div", { class: `bar${f >= 0.9 ? " high" : ""}`, role: "img", "aria-label": label }, span);
}

// -- time ranges -------------------------------------------------------------------------------------
export const RANGES = [
  ["15m", "Last 15 minutes", 900],
  ["1h", "Last hour", 3600],
  ["6h", "Last 6 hours", 21600],
  ["24h", "Last 24 hours", 86400],
  ["7d", "Last 7 days", 604800],
  ["30d", "Last 30 days", 2592000],
];
export function currentRange(defaultKey = "1h") {
  const key = new URLSearchParams(location.search).get("range") || defaultKey;
  const r = RANGES.find((x) => x[0] === key) || RANGES.find((x) => x[0] === defaultKey);
  return { key: r[0], label: r[1], seconds: r[2] };
}
export function rangeSelect(onChange, defaultKey = "1h") {
  const cur = currentRange(defaultKey);
  const select = el(
    "select",
    { id: "range" },
    RANGES.map(([k, label]) => el("option", { value: k, selected: k === cur.key }, label)),
  );
  select.addEventListener("change", () => {
    const params = new URLSearchParams(location.search);
    params.set("range", select.value);
    history.replaceState(null, "", `${location.pathname}?${params}`);
    onChange(currentRange(defaultKey));
  });
  return el("div", {}, el("label", { for: "range" }, "Time range"), select);
}
export const startOfDay = () => {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime() / 1000;
};
export const startOfMonth = () => {
  const d = new Date();
  d.setDate(1);
  d.setHours(0, 0, 0, 0);
  return d.getTime() / 1000;
};

// -- live events (SSE over fetch, so the session header can be sent) ----------------------------------
export function liveIndicator() {
  return el(
    "span",
    { class: "live", role: "status", id: "live" },
    el("span", { class: "dot", "aria-hidden": "true" }),
    "connecting…",
  );
}
function setLive(state) {
  const node = document.getElementById("live");
  if (!node) return;
  node.classList.toggle("on", state === "live");
  node.lastChild.textContent = state === "live" ? "live" : state;
}

/**
 * Subscribe to /api/v1/events (topics "call,task") or another SSE path of the API ("/tasks/events?…");
 * calls onEvent(topic, data) for each event; reconnects with backoff.
 */
export function subscribe(topics, onEvent) {
  const path = topics.startsWith("/") ? topics : `/events?topics=${encodeURIComponent(topics)}`;
  let stopped = false;
  let ctrl = null;
  const run = async () => {
    let delay = 500;
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const res = await fetch(`/api/v1${path}`, {
          headers: authHeaders({ Accept: "text/event-stream" }),
          credentials: "same-origin",
          signal: ctrl.signal,
        });
        if (!res.ok) throw await errorFrom(res, "GET", path);
        setLive("live");
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n/g, "\n");
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let topic = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) topic = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
            }
            if (!data.length) continue;
            try {
              onEvent(topic, JSON.parse(data.join("\n")));
            } catch (e) {
              console.warn("bad event", e);
            }
          }
        }
      } catch (e) {
        if (stopped || e.name === "AbortError") return;
        if (e instanceof ApiError && e.status === 401) return;
      }
      setLive("reconnecting…");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  };
  addEventListener("pagehide", () => {
    stopped = true;
    ctrl?.abort();
  });
  run();
  return () => {
    stopped = true;
    ctrl?.abort();
  };
}

// -- charts ------------------------------------------------------------------------------------------
export const COLORS = ["#0b5cad", "#b42318", "#6f42c1", "#1a7f37", "#8a5a00", "#0e7490"];

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  const m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/**
 * A line (or stacked-area) chart. series: [{name, values: [[t, v|null], ...]}].
 * options: {title, yFormat, stacked}. Returns a figure with an SVG and an HTML legend.
 */
export function lineChart(series, { title, yFormat = (v) => String(v), stacked = false, height = 180 } = {}) {
  const W = 600,
    H = height,
    L = 56,
    R = 10,
    T = 10,
    B = 24;
  const all = series.flatMap((s) => s.values.map((p) => p[0]));
  const fig = el("figure", { class: "chart", style: null });
  fig.style.margin = "0";
  const caption = el("figcaption", {}, el("strong", {}, title));
  if (!all.length) {
    fig.append(
      caption,
      emptyBox("No data in this time range yet. Send a request through the gateway to see it here."),
    );
    return fig;
  }
  const t0 = Math.min(...all),
    t1 = Math.max(...all, t0 + 1);
  let tops = series.flatMap((s) => s.values.map((p) => p[1] || 0));
  if (stacked) {
    const sums = new Map();
    for (const s of series) for (const [t, v] of s.values) sums.set(t, (sums.get(t) || 0) + (v || 0));
    tops = [...sums.values()];
  }
  const ymax = niceMax(Math.max(0, ...tops));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / ymax) * (H - T - B);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title} chart` });
  const grid = el("g", { class: "grid" });
  const axis = el("g", { class: "axis" });
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    grid.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    axis.append(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, yFormat(v)));
  }
  for (const t of [t0, (t0 + t1) / 2, t1]) {
    axis.append(
      el(
        "text",
        { x: x(t), y: H - 6, "text-anchor": t === t0 ? "start" : t === t1 ? "end" : "middle" },
        fmtTime(t),
      ),
    );
  }
  svg.append(grid, axis);
  const base = new Map();
  series.forEach((s, i) => {
    const color = s.color || COLORS[i % COLORS.length];
    const pts = s.values.filter((p) => p[1] !== null && p[1] !== undefined);
    if (!pts.length) return;
    if (stacked) {
      const upper = pts.map(([t, v]) => [t, (base.get(t) || 0) + v]);
      const lower = pts.map(([t]) => [t, base.get(t) || 0]).reverse();
      const d =
        [...upper, ...lower]
          .map(([t, v], j) => `${j ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`)
          .join("") + "Z";
      svg.append(
        el("path", { d, fill: color, "fill-opacity": "0.55", stroke: color }, el("title", {}, s.name)),
      );
      for (const [t, v] of upper) base.set(t, v);
    } else {
      const d = pts.map(([t, v], j) => `${j ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      svg.append(el("path", { d, fill: "none", stroke: color, "stroke-width": 2 }, el("title", {}, s.name)));
      if (pts.length === 1)
        svg.append(el("circle", { cx: x(pts[0][0]), cy: y(pts[0][1]), r: 3, fill: color }));
    }
  });
  // The legend's figures come from one point in time: the latest at which every series has a value;
  // when there is none, each series shows its own latest value and says when it was.
  const known = series.map(
    (s) => new Map(s.values.filter((p) => p[1] !== null && p[1] !== undefined).map((p) => [p[0], p[1]])),
  );
  const common = [...new Set(all)].sort((a, b) => b - a).find((t) => known.every((m) => m.has(t)));
  const legend = el(
    "div",
    { class: "legend-html" },
    series.map((s, i) => {
      const sw = el("span", { class: "swatch", "aria-hidden": "true" });
      sw.style.background = s.color || COLORS[i % COLORS.length];
      if (common !== undefined) return el("span", {}, sw, `${s.name}: ${yFormat(known[i].get(common))}`);
      const last = Math.max(...known[i].keys());
      return el(
        "span",
        {},
        sw,
        known[i].size ? `${s.name}: ${yFormat(known[i].get(last))} (at ${fmtTime(last)})` : s.name,
      );
    }),
    common !== undefined ? el("span", { class: "muted" }, `(latest, at ${fmtTime(common)})`) : null,
  );
  fig.append(caption, svg, legend);
  return fig;
}

/** Horizontal bars: items [{label, value}], for costs or counts per model. */
export function barChart(items, { title, format = (v) => String(v) } = {}) {
  const fig = el("figure", { class: "chart" });
  fig.style.margin = "0";
  fig.append(el("figcaption", {}, el("strong", {}, title)));
  if (!items.length) {
    fig.append(emptyBox("Nothing recorded in this time range."));
    return fig;
  }
  const max = Math.max(...items.map((i) => i.value), 0) || 1;
  fig.append(
    table(
      [
        { label: "Name", cell: (i) => i.label },
        { label: "Share", cell: (i) => bar(i.value / max, `${i.label}: ${format(i.value)}`) },
        { label: "Value", num: true, cell: (i) => format(i.value) },
      ],
      items,
      { caption: title },
    ),
  );
  return fig;
}
