// Keys & budgets: spend against each budget, rpm/tpm limits and their use in the last minute,
// create and revoke keys (admin only; the secret of a new key is shown once).
import {
  api,
  app,
  badge,
  bar,
  el,
  errorBox,
  fmtInt,
  fmtPct,
  fmtTime,
  fmtUsd,
  IS_ADMIN,
  section,
  table,
} from "../common.js";

const root = app();
const created = el("div", { id: "created", "aria-live": "polite" });
const keysBox = el("div", { id: "keys" });
const budgetsBox = el("div", { id: "budgets" });
const msg = el("div", { id: "keys-msg", "aria-live": "assertive" });

function field(id, label, input, hint) {
  input.id = id;
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  return el(
    "div",
    { class: "field" },
    el("label", { for: id }, label),
    input,
    hint ? el("div", { id: `${id}-hint`, class: "muted" }, hint) : null,
  );
}

function createForm() {
  const form = el(
    "form",
    { class: "toolbar", id: "create-key", "aria-labelledby": "create-h" },
    field("k-name", "Name", el("input", { name: "name", required: true, maxlength: 200 })),
    field(
      "k-budget",
      "Budget (USD)",
      el("input", { name: "budget_usd", type: "number", min: "0", step: "0.01" }),
    ),
    field(
      "k-period",
      "Budget period",
      el(
        "select",
        { name: "budget_period" },
        ["month", "day", "total"].map((p) => el("option", { value: p }, p)),
      ),
    ),
    field("k-rpm", "Requests/min", el("input", { name: "rpm", type: "number", min: "1", step: "1" })),
    field("k-tpm", "Tokens/min", el("input", { name: "tpm", type: "number", min: "1", step: "1" })),
    field(
      "k-models",
      "Models",
      el("input", { name: "models", placeholder: "all" }),
      "comma-separated groups",
    ),
    field(
      "k-tags",
      "Tags",
      el("input", { name: "tags", placeholder: "project=alpha" }),
      "key=value, comma-separated",
    ),
    el("div", {}, el("button", { type: "submit" }, "Create key")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const body = { name: String(fd.get("name")).trim(), budget_period: fd.get("budget_period") };
    for (const k of ["budget_usd", "rpm", "tpm"]) if (fd.get(k)) body[k] = Number(fd.get(k));
    const models = String(fd.get("models") || "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (models.length) body.models = models;
    const tags = String(fd.get("tags") || "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (tags.length) {
      const bad = tags.find((t) => !t.includes("="));
      if (bad) {
        msg.replaceChildren(errorBox(`"${bad}" is not key=value`, "Tags"));
        return;
      }
      body.tags = Object.fromEntries(
        tags.map((t) => [t.split("=")[0].trim(), t.split("=").slice(1).join("=").trim()]),
      );
    }
    try {
      const res = await api("/keys", { method: "POST", body });
      msg.replaceChildren();
      created.replaceChildren(
        el(
          "div",
          { class: "notice" },
          el("p", {}, `Key "${res.name}" created. Copy the secret now: it is shown only this once.`),
          el("p", { class: "secret", id: "new-secret" }, res.key),
        ),
      );
      form.reset();
      loadKeys();
      loadBudgets();
    } catch (err) {
      msg.replaceChildren(errorBox(err, "Create key"));
    }
  });
  return form;
}

async function revoke(k, button) {
  if (button.dataset.confirm !== "yes") {
    button.dataset.confirm = "yes";
    button.textContent = `Confirm revoking ${k.name}`;
    return;
  }
  button.disabled = true;
  try {
    await api(`/keys/${encodeURIComponent(k.id)}/revoke`, { method: "POST" });
    msg.replaceChildren(el("p", { class: "notice", role: "status" }, `Key "${k.name}" revoked.`));
    loadKeys();
  } catch (err) {
    msg.replaceChildren(errorBox(err, "Revoke"));
    button.disabled = false;
  }
}

async function usageLastMinute() {
  // requests and tokens per key over the last minute, from the metrics rollups (if offered)
  try {
    const now = Date.now() / 1000;
    const s = await api(`/metrics/summary?since=${now - 60}&until=${now}&group_by=key_id`);
    return new Map((s.rows || []).map((r) => [r.key_id, r]));
  } catch {
    return null;
  }
}

const budgetCell = (list) =>
  (list || []).length
    ? el(
        "div",
        {},
        list.map((b) =>
          el(
            "div",
            {},
            `${b.period}: ${fmtUsd(b.spent_usd)} / ${fmtUsd(b.limit_usd)}`,
            bar(
              b.limit_usd ? b.spent_usd / b.limit_usd : 0,
              `${b.period} budget ${fmtPct(b.limit_usd ? b.spent_usd / b.limit_usd : 0, 0)} used`,
            ),
          ),
        ),
      )
    : "none";

async function loadKeys() {
  await section(keysBox, "Keys", async () => {
    const [{ keys = [] }, usage] = await Promise.all([api("/keys"), usageLastMinute()]);
    const use = (k, lim, f) => {
      const u = usage?.get(k.id);
      const now = u ? f(u) : null;
      return `${now === null ? "—" : fmtInt(now)} / ${lim ? fmtInt(lim) : "∞"}`;
    };
    return table(
      [
        {
          label: "Name",
          cell: (k) => el("span", {}, el("strong", {}, k.name), el("br"), el("code", {}, `${k.prefix}…`)),
        },
        {
          label: "State",
          cell: (k) =>
            k.revoked
              ? badge("revoked", "error")
              : k.expired
                ? badge("expired", "warn")
                : badge("active", "ok"),
        },
        { label: "Created", cell: (k) => fmtTime(k.created_at, true) },
        { label: "Expires", cell: (k) => (k.expires_at ? fmtTime(k.expires_at, true) : "never") },
        { label: "Req/min used / limit", num: true, cell: (k) => use(k, k.rpm, (u) => u.requests) },
        {
          label: "Tokens/min used / limit",
          num: true,
          cell: (k) => use(k, k.tpm, (u) => (u.prompt_tokens || 0) + (u.completion_tokens || 0)),
        },
        { label: "Models", cell: (k) => (k.models?.length ? k.models.join(", ") : "all") },
        {
          label: "Tags",
          cell: (k) =>
            Object.entries(k.tags || {})
              .map(([a, b]) => `${a}=${b}`)
              .join(", ") || "—",
        },
        { label: "Budgets", cell: (k) => budgetCell(k.budgets) },
        ...(IS_ADMIN
          ? [
              {
                label: "Actions",
                cell: (k) =>
                  k.revoked
                    ? "—"
                    : el(
                        "button",
                        {
                          type: "button",
                          class: "danger",
                          "aria-label": `Revoke ${k.name}`,
                          onclick: (e) => revoke(k, e.currentTarget),
                        },
                        "Revoke",
                      ),
              },
            ]
          : []),
      ],
      keys,
      {
        caption: "Virtual keys",
        empty: IS_ADMIN
          ? "No virtual keys yet. Create one above; give each team or project its own."
          : "No key visible.",
      },
    );
  });
}

async function loadBudgets() {
  await section(budgetsBox, "Budgets", async () => {
    const { budgets = [] } = await api("/budgets");
    return table(
      [
        { label: "Scope", cell: (b) => b.scope },
        { label: "Target", cell: (b) => b.target || "—" },
        { label: "Period", cell: (b) => b.period },
        {
          label: "Spent / limit",
          cell: (b) =>
            el(
              "div",
              {},
              `${fmtUsd(b.spent_usd)} / ${fmtUsd(b.limit_usd)}`,
              bar(
                b.limit_usd ? b.spent_usd / b.limit_usd : 0,
                `${fmtPct(b.limit_usd ? b.spent_usd / b.limit_usd : 0, 0)} of the budget used`,
              ),
            ),
        },
        { label: "Reserved", num: true, cell: (b) => fmtUsd(b.reserved_usd) },
        { label: "Remaining", num: true, cell: (b) => fmtUsd(b.remaining_usd) },
      ],
      budgets,
      {
        caption: "Budgets",
        empty:
          "No budgets. Give a key a budget when creating it (here or with `architect keys create --budget-usd`); set a project's or feature's budget with POST /api/v1/budgets (admin key).",
      },
    );
  });
}

root.replaceChildren(
  IS_ADMIN
    ? el("section", { class: "card" }, el("h2", { id: "create-h" }, "Create a key"), createForm(), created)
    : el(
        "p",
        { class: "notice" },
        "Only the admin can create or revoke keys; you see your own key and budgets.",
      ),
  msg,
  el("section", { class: "card", "aria-labelledby": "keys-h" }, el("h2", { id: "keys-h" }, "Keys"), keysBox),
  el(
    "section",
    { class: "card", "aria-labelledby": "budgets-h" },
    el("h2", { id: "budgets-h" }, "Budgets"),
    budgetsBox,
  ),
);
loadKeys();
loadBudgets();
