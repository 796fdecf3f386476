// A job's page (#/jobs/{workflow}/{job}): its last executions as charts (duration per layer,
// rows in and out, reject and quarantine rates, schema drift marked), a quality scorecard
// (each silver rule's failure rate across those runs, the worst first) and the list; above
// them its schedule (Pause/Resume) and upload trigger, and its landing files (Delete).

import { api, itemsOf } from "./api.js";
import { barChart, lineChart, sparkline } from "./charts.js";
import { LAYERS, alertBox, badge, count, el, isActive, seconds, stepsByLayer, when } from "./dom.js";
import { AutomationView, LandingFilesView } from "./manage.js";

const RUNS = 50; // the last executions drawn

const percent = (v) => `${v.toFixed(2)} %`;
const execHref = (id) => `#/executions/${encodeURIComponent(id)}`;

function rate(part, whole) {
  return Number.isFinite(part) && Number.isFinite(whole) && whole > 0 ? (100 * part) / whole : null;
}

// When each run was created: "MM-DD HH:MM:SS" in the table; under the chart the time
// alone when all runs are of one day, else the day and the minute.
function times(runs) {
  const pad = (n) => String(n).padStart(2, "0");
  const dates = runs.map((r) => new Date(r.created_at));
  const day = (d) => `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const clock = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const full = dates.map((d) => `${day(d)} ${clock(d)}:${pad(d.getSeconds())}`);
  const oneDay = new Set(dates.map(day)).size === 1;
  return { full, short: oneDay ? dates.map((d) => `${clock(d)}:${pad(d.getSeconds())}`) : dates.map((d) => `${day(d)} ${clock(d)}`) };
}

// Columns added, removed or retyped in a run, in words; null when the schema held.
export function driftOf(execution) {
  const parts = [];
  for (const step of execution.steps || []) {
    const drift = step.quality?.drift || {};
    for (const kind of ["added", "removed", "retyped"]) {
      if ((drift[kind] || []).length) parts.push(`${step.layer} ${kind} ${drift[kind].join(", ")}`);
    }
  }
  return parts.length ? parts.join("; ") : null;
}

// Each silver rule across the runs: its failure rate per run and over all of them.
export function scorecard(runs) {
  const rules = new Map();
  runs.forEach((run, i) => {
    for (const r of stepsByLayer(run).silver?.quality?.rules || []) {
      if (!rules.has(r.rule_id)) rules.set(r.rule_id, { ...r, rates: runs.map(() => null), failed: 0, checked: 0, failing: 0, last: null });
      const rule = rules.get(r.rule_id);
      rule.rates[i] = rate(r.failed, r.checked) ?? (r.checked === 0 ? 0 : null);
      rule.failed += r.failed || 0;
      rule.checked += r.checked || 0;
      if (r.failed) rule.failing += 1;
      rule.last = rule.rates[i];
    }
  });
  const list = [...rules.values()].map((r) => ({ ...r, overall: rate(r.failed, r.checked) ?? 0 }));
  return list.sort((a, b) => b.overall - a.overall || (b.last ?? 0) - (a.last ?? 0) || a.rule_id.localeCompare(b.rule_id));
}

function section(title, note, ...children) {
  const id = `sec-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return el("section", { class: "panel", "aria-labelledby": id }, el("h3", { id, text: title }), note ? el("p", { class: "muted note-line", text: note }) : null, ...children);
}

export class JobPage {
  constructor(root, workflowId, jobId) {
    this.root = root;
    this.workflowId = workflowId;
    this.jobId = jobId;
    this.executions = [];
    this.head = el("div", { class: "page-head" }, el("h2", {}, "Job ", el("code", { text: `${workflowId}/${jobId}` })));
    this.error = el("div", { "aria-live": "polite" });
    this.body = el("div", { class: "job-history" }, el("p", { class: "muted", text: "Loading…" }));
    this.automation = new AutomationView(workflowId, jobId);
    this.automationEmpty = el("p", { class: "muted" });
    this.landing = new LandingFilesView(workflowId, jobId);
    const manage = el(
      "div",
      { class: "job-manage" },
      section("Automation", null, this.automation.node, this.automationEmpty),
      section("Landing files", "What the next bronze run reads.", this.landing.node),
    );
    root.replaceChildren(el("p", {}, el("a", { href: "#/jobs", text: "← all jobs" })), this.head, this.error, manage, this.body);
  }

  get anyActive() {
    return this.executions.some(isActive) || this.automation.pending;
  }

  async refresh() {
    await Promise.all([this.refreshHistory(), this.refreshJob(), this.landing.refresh()]);
  }

  async refreshJob() {
    let job;
    try {
      job = await api.job(this.workflowId, this.jobId);
    } catch (err) {
      this.automationEmpty.replaceChildren(alertBox(err.message));
      return;
    }
    this.automation.update(job);
    this.automationEmpty.textContent = job.schedule || job.trigger ? "" : "No schedule and no upload trigger: it runs when started (Run, the API or the CLI).";
  }

  async refreshHistory() {
    let page;
    try {
      page = await api.executions({ workflow_id: this.workflowId, job_id: this.jobId, limit: RUNS });
      this.error.replaceChildren();
    } catch (err) {
      this.error.replaceChildren(alertBox(err.message));
      return;
    }
    // Redrawn only when something changed, the data tables the reader opened kept open.
    const seen = JSON.stringify(page);
    if (seen === this.seen) return;
    this.seen = seen;
    this.executions = itemsOf(page);
    const open = new Set([...this.body.querySelectorAll("figure.chart")].filter((f) => f.querySelector("details[open]")).map((f) => f.dataset.chart));
    this.render(this.executions.slice().reverse(), page.total);
    this.body.querySelectorAll("figure.chart").forEach((f) => {
      if (open.has(f.dataset.chart)) f.querySelector("details").open = true;
    });
  }

  render(runs, total) {
    const latest = runs[runs.length - 1];
    this.head.replaceChildren(
      el("h2", {}, "Job ", el("code", { text: `${this.workflowId}/${this.jobId}` }), " ", latest ? badge(latest.status) : null),
      el("p", { class: "muted", text: runs.length ? `The last ${runs.length} of ${count(total)} executions, oldest first in the charts.` : "" }),
    );
    if (!runs.length) {
      this.body.replaceChildren(el("p", { class: "muted", text: "This job has never run." }));
      return;
    }
    const width = Math.min(760, Math.max(300, (this.root.clientWidth > 1100 ? this.root.clientWidth / 2 : this.root.clientWidth) - 48));
    const { full, short } = times(runs);
    const xLink = (i) => execHref(runs[i].id);
    const steps = runs.map(stepsByLayer);
    const drifts = runs.map(driftOf);
    const marks = drifts.flatMap((d, i) => (d ? [{ index: i, label: "drift", text: `schema drift in ${runs[i].id}: ${d}` }] : []));
    const driftNote = marks.length ? ` Schema drift (a flag marked "drift") in ${marks.length} run(s).` : "";
    const common = { x: short, xTable: full, xLink, xLabel: "run (created)", width };

    const durations = LAYERS.map((layer) => ({ name: layer, values: steps.map((s) => s[layer]?.duration_seconds ?? null) }));
    const totals = runs.map((_, i) => durations.reduce((t, s) => t + (s.values[i] ?? 0), 0));
    const slowest = totals.indexOf(Math.max(...totals));
    const durationChart = barChart({
      ...common,
      title: "Duration per layer",
      desc: `Seconds each layer took in each of the last ${runs.length} runs, stacked bronze, silver, gold. The slowest run took ${totals[slowest].toFixed(1)} s (${runs[slowest].id}).`,
      series: durations,
      stacked: true,
      format: (v) => `${v.toFixed(2)} s`,
    });

    const rows = [
      { name: "rows in (bronze)", values: steps.map((s) => s.bronze?.rows_in ?? null) },
      { name: "rows out (bronze)", values: steps.map((s) => s.bronze?.rows_out ?? null) },
      { name: "rows out (silver)", values: steps.map((s) => s.silver?.rows_out ?? null) },
    ];
    const rowsChart = lineChart({
      ...common,
      title: "Rows in and out",
      desc: `Rows read by bronze, and kept by bronze and silver, in each run.${driftNote}`,
      series: rows,
      marks,
      format: (v) => count(Math.round(v)),
    });

    const rates = [
      { name: "rejected by bronze", values: steps.map((s) => rate(s.bronze?.rows_rejected, s.bronze?.rows_in)) },
      { name: "quarantined by silver", values: steps.map((s) => rate(s.silver?.rows_rejected, s.silver?.rows_in)) },
    ];
    const lastRates = rates.map((r) => `${r.name} ${r.values[r.values.length - 1] === null ? "—" : percent(r.values[r.values.length - 1])}`);
    const ratesChart = lineChart({
      ...common,
      title: "Quarantine and reject rate",
      desc: `Percent of rows each layer set aside in each run; in the latest: ${lastRates.join(", ")}.${driftNote}`,
      series: rates,
      marks,
      format: percent,
    });

    this.body.replaceChildren(
      el("div", { class: "charts" }, section("Duration per layer", null, durationChart), section("Rows in and out", null, rowsChart), section("Quarantine and reject rate", null, ratesChart), this.driftView(runs, drifts)),
      this.scorecardView(runs),
      this.listView(runs.slice().reverse()),
    );
  }

  scorecardView(runs) {
    const rules = scorecard(runs);
    if (!rules.length) return section("Quality scorecard", "No silver rules ran in these executions.");
    const table = el(
      "table",
      { class: "scorecard stack-table" },
      el("caption", { text: `Each silver rule's failure rate across the last ${runs.length} runs, the worst first` }),
      el("thead", {}, el("tr", {}, ["rule", "column", "action", "failure rate", "latest run", "runs failing", "trend (oldest → newest)"].map((c) => el("th", { scope: "col", text: c })))),
      el(
        "tbody",
        {},
        rules.map((r) =>
          el(
            "tr",
            { "data-rule": r.rule_id },
            el("th", { scope: "row" }, el("code", { text: r.rule_id }), el("span", { class: "muted", text: ` ${r.rule}` })),
            el("td", { "data-label": "column", text: r.column }),
            el("td", { "data-label": "action", text: r.action }),
            el("td", { class: "num", "data-label": "failure rate", text: `${percent(r.overall)} (${count(r.failed)} of ${count(r.checked)})` }),
            el("td", { class: "num", "data-label": "latest run", text: r.last === null ? "—" : percent(r.last) }),
            el("td", { class: "num", "data-label": "runs failing", text: `${r.failing} of ${runs.length}` }),
            el("td", { "data-label": "trend" }, sparkline(r.rates, `${r.rule_id} failure rate per run, oldest to newest: ${r.rates.map((v) => (v === null ? "not checked" : percent(v))).join(", ")}`)),
          ),
        ),
      ),
    );
    return section("Quality scorecard", null, el("div", { class: "scroll" }, table));
  }

  driftView(runs, drifts) {
    const events = runs.map((run, i) => ({ run, drift: drifts[i] })).filter((e) => e.drift).reverse();
    if (!events.length) return section("Schema drift", "No schema drift in these executions.");
    return section(
      "Schema drift",
      null,
      el(
        "ul",
        { class: "drift-events" },
        events.map((e) => el("li", { "data-execution": e.run.id }, el("a", { href: execHref(e.run.id), text: e.run.id }), ` ${when(e.run.created_at)}: `, e.drift)),
      ),
    );
  }

  listView(newestFirst) {
    const head = ["execution", "status", "created", "duration", "rows in", "rows out (silver)", "set aside"];
    return section(
      "Last executions",
      null,
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          { class: "runs-table stack-table" },
          el("thead", {}, el("tr", {}, head.map((c) => el("th", { scope: "col", text: c })))),
          el(
            "tbody",
            {},
            newestFirst.map((e) => {
              const s = stepsByLayer(e);
              const aside = (s.bronze?.rows_rejected ?? 0) + (s.silver?.rows_rejected ?? 0);
              return el(
                "tr",
                { "data-execution": e.id },
                el("th", { scope: "row" }, el("a", { href: execHref(e.id), text: e.id })),
                el("td", { "data-label": "status" }, badge(e.status)),
                el("td", { class: "nowrap", "data-label": "created", text: when(e.created_at) }),
                el("td", { class: "num", "data-label": "duration", text: seconds(e.started_at, e.finished_at) }),
                el("td", { class: "num", "data-label": "rows in", text: count(s.bronze?.rows_in) }),
                el("td", { class: "num", "data-label": "rows out (silver)", text: count(s.silver?.rows_out) }),
                el("td", { class: "num", "data-label": "set aside", text: count(aside) }),
              );
            }),
          ),
        ),
      ),
    );
  }
}
