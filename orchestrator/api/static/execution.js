// The execution page: steps with counts, table versions, warnings and errors, the quality
// report, the balance sheet, the quarantine and gold previews (each at the table version
// this execution committed), and the Prefect logs (paginated).

import { api, itemsOf } from "./api.js";
import { LogPanel } from "./logs.js";
import { LAYERS, alertBox, badge, count, dataTable, el, isActive, seconds, when } from "./dom.js";

const PREVIEW_ROWS = 10;
const PROFILE = "profile"; // the gold service's built-in model (services/gold/profile.py)

function section(title, ...children) {
  const id = `sec-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return el("section", { class: "panel", "aria-labelledby": id }, el("h3", { id, text: title }), ...children);
}

function stepsTable(execution) {
  const rows = (execution.steps || []).slice().sort((a, b) => LAYERS.indexOf(a.layer) - LAYERS.indexOf(b.layer));
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      { class: "steps-table" },
      el("thead", {}, el("tr", {}, ["layer", "status", "rows in", "rows out", "rejected", "tries", "duration", "table versions", "warnings and errors"].map((c) => el("th", { scope: "col", text: c })))),
      el(
        "tbody",
        {},
        rows.map((s) =>
          el(
            "tr",
            { "data-layer": s.layer, "data-status": s.status },
            el("th", { scope: "row", text: s.layer }),
            el("td", {}, badge(s.status)),
            el("td", { class: "num", text: count(s.rows_in) }),
            el("td", { class: "num", text: count(s.rows_out) }),
            el("td", { class: "num", text: count(s.rows_rejected) }),
            el("td", { class: "num", text: s.attempts ? String(s.attempts) : "—" }),
            el("td", { class: "num", text: seconds(s.started_at, s.finished_at) }),
            el("td", { class: "versions" }, versionsList(s.tables)),
            el(
              "td",
              { class: "notes" },
              s.error ? el("p", { class: "error-inline", text: s.error }) : null,
              (s.warnings || []).length
                ? el("ul", { class: "warnings" }, s.warnings.map((w) => el("li", { text: w })))
                : null,
            ),
          ),
        ),
      ),
    ),
  );
}

// The Delta table versions a step committed ("silver/w/j v4") and read ("read bronze/w/j v7").
function versionsList(tables) {
  if (!(tables || []).length) return "—";
  return el(
    "ul",
    { class: "versions" },
    tables.map((t) =>
      el("li", { "data-role": t.role }, t.role === "input" ? "read " : "", el("code", { text: t.table }), ` v${t.version}`),
    ),
  );
}

function qualityView(execution) {
  const parts = [];
  for (const step of execution.steps || []) {
    const q = step.quality || {};
    const reasons = Object.entries(q.rejected_by_reason || {}).sort((a, b) => b[1] - a[1]);
    const label = step.layer === "bronze" ? "rejected" : "quarantined";
    const facts = [];
    for (const [reason, n] of reasons) facts.push({ what: `${label}: ${reason}`, rows: n });
    if (q.duplicates_removed) facts.push({ what: "duplicates removed", rows: q.duplicates_removed });
    const drift = q.drift || {};
    for (const kind of ["added", "removed", "retyped"]) {
      if ((drift[kind] || []).length) facts.push({ what: `schema drift: ${kind}`, rows: drift[kind].join(", ") });
    }
    const rules = q.rules || [];
    const files = q.files || [];
    if (!facts.length && !rules.length && !files.length) continue;
    parts.push(
      el(
        "div",
        { class: "quality-step", "data-layer": step.layer },
        el("h4", { text: step.layer }),
        facts.length ? dataTable(facts, { columns: ["what", "rows"], numeric: ["rows"] }) : null,
        rules.length
          ? dataTable(rules, { caption: "rules", columns: ["rule_id", "rule", "column", "action", "checked", "passed", "failed"] })
          : null,
        files.length
          ? dataTable(files, { caption: "files", columns: ["key", "status", "rows", "rows_rejected", "delimiter", "encoding"] })
          : null,
      ),
    );
  }
  return parts.length ? el("div", { class: "quality" }, parts) : el("p", { class: "muted", text: "No quality report yet." });
}

function balanceView(balance) {
  if (!balance) return el("p", { class: "muted", text: "No balance sheet yet." });
  const figures = Object.entries(balance.figures || {}).map(([name, rows]) => ({ figure: name.replaceAll("_", " "), rows: count(rows) }));
  return el(
    "div",
    { class: "balance" },
    el("p", {}, balance.balanced ? el("span", { class: "badge s-completed", text: "balanced" }) : el("span", { class: "badge s-failed", text: "GAP" })),
    dataTable(figures, { columns: ["figure", "rows"], numeric: ["rows"] }),
    el(
      "ul",
      { class: "checks" },
      (balance.checks || []).map((c) =>
        el("li", { class: c.ok ? "ok" : "gap" }, el("strong", { text: c.ok ? "ok " : "GAP " }), `${c.name}: ${count(c.left)} = ${count(c.right)}`),
      ),
    ),
  );
}

// Preview.preview is a list of rows; a step's own report keeps them as JSON text
// (quality.models[].preview_json), read when the previews endpoint fails.
function previewRows(data) {
  if (typeof data === "string") return JSON.parse(data || "[]");
  return Array.isArray(data) ? data : [];
}

function replaced(runId) {
  return el("p", { class: "note", text: `A later run (${runId}) has replaced this execution's output: shown is the job's current one.` });
}

// Which version of which table a preview is, and whether the table has changed since.
function versionNote(item) {
  if (item.version === null || item.version === undefined) return null;
  const text = item.current
    ? `${item.table} version ${item.version}: this execution's, still the current data.`
    : `${item.table} version ${item.version}: this execution's; the table has changed since (latest version ${item.latest_version}).`;
  return el("p", { class: item.current ? "version" : "note", "data-version": String(item.version), text });
}

// Previews read from tables say per item which version they are; older ones say it once.
function staleNote(data) {
  const tabled = itemsOf(data).some((i) => i.version !== null && i.version !== undefined);
  return data.current === false && !tabled ? replaced(data.run_id) : null;
}

export class ExecutionPage {
  constructor(root, executionId) {
    this.root = root;
    this.id = executionId;
    this.loadedPreviews = false;
    this.head = el("div", { class: "page-head" });
    this.error = el("div", { "aria-live": "polite" });
    this.steps = section("Steps");
    this.quality = section("Quality report");
    this.balance = section("Balance sheet");
    this.quarantine = section("Quarantine preview");
    this.gold = section("Gold previews");
    this.logs = new LogPanel(executionId);
    root.replaceChildren(
      el("p", {}, el("a", { href: "#/jobs", text: "← all jobs" })),
      this.head,
      this.error,
      this.steps,
      el("div", { class: "two" }, this.quality, this.balance),
      this.gold,
      this.quarantine,
      section("Logs", this.logs.node),
    );
  }

  // Prefect ships log lines in batches: keep refreshing until the logs are complete.
  get anyActive() {
    return isActive(this.execution) || !this.logs.complete;
  }

  async refresh() {
    let execution;
    try {
      execution = await api.execution(this.id);
      this.error.replaceChildren();
    } catch (err) {
      this.error.replaceChildren(alertBox(err.message));
      return;
    }
    const wasActive = isActive(this.execution);
    this.execution = execution;
    this.renderHead(execution);
    this.steps.replaceChildren(this.steps.firstChild, stepsTable(execution));
    this.quality.replaceChildren(this.quality.firstChild, qualityView(execution));
    this.balance.replaceChildren(this.balance.firstChild, balanceView(execution.balance));
    // Previews and the first page of logs: once the run has ended (and again if it ends now).
    if (!isActive(execution) && (!this.loadedPreviews || wasActive)) {
      this.loadedPreviews = true;
      this.loadPreviews(execution);
    }
    if (isActive(execution) || wasActive || !this.logs.loaded || !this.logs.complete) this.logs.load();
  }

  renderHead(e) {
    const cancel = isActive(e)
      ? el("button", { type: "button", class: "danger", text: "Cancel", onclick: () => this.cancel() })
      : null;
    this.head.replaceChildren(
      ...[
      el("h2", {}, "Execution ", el("code", { text: e.id }), " ", badge(e.status)),
      el(
        "dl",
        { class: "facts" },
        el("dt", { text: "job" }),
        el("dd", { text: `${e.workflow_id}/${e.job_id}` }),
        el("dt", { text: "layers" }),
        el("dd", { text: (e.layers || []).join(" → ") + (e.full_refresh ? " (full refresh)" : "") }),
        el("dt", { text: "created" }),
        el("dd", { text: when(e.created_at) }),
        el("dt", { text: "duration" }),
        el("dd", { text: seconds(e.started_at, e.finished_at) }),
        e.flow_run_id ? el("dt", { text: "Prefect flow run" }) : null,
        e.flow_run_id ? el("dd", {}, el("code", { text: e.flow_run_id })) : null,
      ),
      e.error ? alertBox(e.error) : null,
      cancel,
      ].filter(Boolean),
    );
  }

  async cancel() {
    try {
      await api.cancel(this.id);
    } catch (err) {
      this.error.replaceChildren(alertBox(err.message));
    }
    this.refresh();
  }

  async loadPreviews(execution) {
    const steps = Object.fromEntries((execution.steps || []).map((s) => [s.layer, s]));
    const gold = [];
    if (steps.gold && steps.gold.status === "COMPLETED") {
      let items;
      try {
        const data = await api.goldPreviews(this.id, PREVIEW_ROWS);
        const stale = staleNote(data);
        if (stale) gold.push(stale);
        items = itemsOf(data);
      } catch (err) {
        // The step's own report carries a few rows of each model.
        gold.push(alertBox(`gold previews: ${err.message}`));
        items = (steps.gold.quality?.models || []).map((m) => ({ ...m, preview: previewRows(m.preview_json) }));
      }
      // The built-in profile (one row per silver column) is a committed model too: shown
      // last and folded, as it describes the data rather than being a result.
      const ordered = [...items.filter((m) => m.name !== PROFILE), ...items.filter((m) => m.name === PROFILE)];
      for (const item of ordered) {
        const rows = previewRows(item.preview).slice(0, PREVIEW_ROWS);
        const caption = `${item.name} · ${count(item.rows)} rows, first ${rows.length}`;
        gold.push(
          item.name === PROFILE
            ? el("details", { class: "preview", "data-model": item.name }, el("summary", { text: caption }), versionNote(item), dataTable(rows, { columns: item.columns }))
            : el("div", { class: "preview", "data-model": item.name }, versionNote(item), dataTable(rows, { columns: item.columns, caption })),
        );
      }
    }
    this.gold.replaceChildren(
      this.gold.firstChild,
      gold.length ? el("div", { class: "previews" }, gold) : el("p", { class: "muted", text: "No gold output in this execution." }),
    );
    const quarantine = [];
    for (const layer of ["bronze", "silver"]) {
      const step = steps[layer];
      if (!step || !step.rows_rejected) continue;
      const label = layer === "bronze" ? "rejects" : "quarantine";
      try {
        const data = await api.quarantine(this.id, layer, PREVIEW_ROWS);
        const stale = staleNote(data);
        if (stale) quarantine.push(stale);
        for (const item of itemsOf(data)) {
          const rows = previewRows(item.preview);
          quarantine.push(
            el(
              "div",
              { class: "preview", "data-layer": layer },
              versionNote(item),
              dataTable(rows, { columns: item.columns, caption: `${layer} ${label} · ${count(item.rows)} rows, first ${rows.length}` }),
            ),
          );
        }
      } catch (err) {
        quarantine.push(alertBox(`${layer} ${label}: ${err.message}`));
      }
    }
    this.quarantine.replaceChildren(
      this.quarantine.firstChild,
      quarantine.length ? el("div", { class: "quarantine" }, quarantine) : el("p", { class: "muted", text: "Nothing was quarantined." }),
    );
  }
}
