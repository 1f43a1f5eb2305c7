// Feature report: the orchestrator's status report (Markdown from the API) rendered safely as DOM,
// with Markdown and JSON export.
import { api, apiText, app, download, el, emptyBox, errorBox } from "../common.js";

const root = app();
const params = new URLSearchParams(location.search);
const picker = el("div", { class: "toolbar" });
const msg = el("div", { "aria-live": "assertive" });
const body = el("article", { class: "card markdown", id: "report", "aria-label": "Status report" });
root.replaceChildren(picker, msg, body);

/** Inline Markdown: **bold**, `code`, _em_ (text nodes only; nothing is parsed as HTML). As in
 * CommonMark, an underscore inside a word (`validation_failed`) starts no emphasis. */
function inline(text) {
  const out = [];
  const re = /(\*\*[^*]+\*\*|`[^`]+`|(?<!\w)_[^_]+_(?!\w))/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const t = m[0];
    out.push(
      t.startsWith("**")
        ? el("strong", {}, t.slice(2, -2))
        : t.startsWith("`")
          ? el("code", {}, t.slice(1, -1))
          : el("em", {}, t.slice(1, -1)),
    );
    last = m.index + t.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
/** A table row's cells; `\|` is a pipe inside a cell (a title may hold one). */
const cells = (line) =>
  line
    .trim()
    .replace(/^\||(?<!\\)\|$/g, "")
    .split(/(?<!\\)\|/)
    .map((c) => c.trim().replace(/\\\|/g, "|"));

/** The subset of Markdown the report uses: headings, lists, tables, paragraphs. */
export function renderMarkdown(md) {
  const out = [];
  const lines = md.split("\n");
  for (let i = 0; i < lines.length;) {
    const line = lines[i];
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      out.push(el(`h${Math.min(6, h[1].length + 1)}`, {}, inline(h[2])));
      i++;
    } else if (/^\s*[-*]\s+/.test(line)) {
      const ul = el("ul");
      while (i < lines.length && /^\s*[-*]\s+/.test(lines[i]))
        ul.append(el("li", {}, inline(lines[i++].replace(/^\s*[-*]\s+/, ""))));
      out.push(ul);
    } else if (line.trim().startsWith("|") && /^\s*\|?\s*-{3}/.test(lines[i + 1] || "")) {
      const head = cells(line);
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].trim().startsWith("|")) rows.push(cells(lines[i++]));
      out.push(
        el(
          "div",
          { class: "table-wrap", tabindex: "0", role: "region", "aria-label": head.join(", ") },
          el(
            "table",
            {},
            el(
              "thead",
              {},
              el(
                "tr",
                {},
                head.map((c) => el("th", { scope: "col" }, inline(c))),
              ),
            ),
            el(
              "tbody",
              {},
              rows.map((r) =>
                el(
                  "tr",
                  {},
                  r.map((c) => el("td", {}, inline(c))),
                ),
              ),
            ),
          ),
        ),
      );
    } else if (!line.trim()) {
      i++;
    } else {
      const para = [];
      while (i < lines.length && lines[i].trim() && !/^(#|\s*[-*]\s|\s*\|)/.test(lines[i]))
        para.push(lines[i++]);
      if (!para.length) para.push(lines[i++]);
      out.push(el("p", {}, inline(para.join(" "))));
    }
  }
  return out;
}

async function init() {
  let features;
  try {
    features = await api("/features");
    features = Array.isArray(features) ? features : features.features || [];
  } catch (e) {
    picker.replaceChildren(errorBox(e, "Features"));
    body.replaceChildren(emptyBox("The report needs the orchestrator API."));
    return;
  }
  if (!features.length) {
    body.replaceChildren(
      emptyBox("No features yet. Import a plan (architect plan import plan.md) to get a status report."),
    );
    picker.replaceChildren();
    return;
  }
  const wanted = params.get("feature");
  let feature = features.find((f) => f.slug === wanted || String(f.id) === wanted) || features[0];
  const select = el(
    "select",
    { id: "feature" },
    features.map((f) =>
      el("option", { value: f.slug, selected: f.slug === feature.slug }, `${f.project} / ${f.title}`),
    ),
  );
  select.addEventListener("change", () => {
    feature = features.find((f) => f.slug === select.value);
    history.replaceState(null, "", `?feature=${encodeURIComponent(feature.slug)}`);
    load(feature);
  });
  const exp = (format, ext) => async () => {
    try {
      await download(
        `/features/${encodeURIComponent(feature.slug)}/report?format=${format}`,
        `${feature.slug}-report.${ext}`,
      );
    } catch (e) {
      msg.replaceChildren(errorBox(e, "Export"));
    }
  };
  picker.replaceChildren(
    el("div", {}, el("label", { for: "feature" }, "Feature"), select),
    el(
      "div",
      {},
      el("button", { type: "button", id: "export-md", onclick: exp("md", "md") }, "Export Markdown"),
    ),
    el(
      "div",
      {},
      el(
        "button",
        { type: "button", class: "secondary", id: "export-json", onclick: exp("json", "json") },
        "Export JSON",
      ),
    ),
    el(
      "div",
      {},
      el("button", { type: "button", class: "secondary", onclick: () => load(feature) }, "Refresh"),
    ),
  );
  load(feature);
}

async function load(feature) {
  try {
    const md = await apiText(`/features/${encodeURIComponent(feature.slug)}/report?format=md`);
    body.replaceChildren(...renderMarkdown(md));
  } catch (e) {
    body.replaceChildren(errorBox(e, "Report"));
  }
}

init();
