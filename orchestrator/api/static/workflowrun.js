// A workflow run (#/workflow-executions/{id}): a graph of jobs -> silver tables -> workflow
// models, each node with its state, rows and time, live; a model's node opens its preview
// and lineage. The graph is SVG drawn here; every node also says its state in words.

import { api } from "./api.js";
import { alertBox, badge, count, dataTable, el, isActive, seconds } from "./dom.js";
import { previewChart, previewWithChart } from "./previews.js";

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 214;
const NODE_H = 58;
const GAP_X = 60;
const GAP_Y = 18;
const PAD = 12;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

function cut(text, n = 25) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

// Columns: jobs, their silver tables, then the models by depth (a model after what it reads).
export function layout(run) {
  const jobs = run.executions.map((e) => e.job_id);
  const graph = run.graph.length ? run.graph : run.models.map((m) => ({ name: m.name, jobs: [], models: m.depends_on, dimensions: [] }));
  const depth = {};
  for (const m of graph) depth[m.name] = 1 + Math.max(-1, ...m.models.map((d) => depth[d] ?? 0));
  const allJobs = [...new Set([...jobs, ...graph.flatMap((m) => m.jobs)])];
  const columns = [allJobs.map((j) => ({ id: `job:${j}`, kind: "job", name: j })), allJobs.map((j) => ({ id: `silver:${j}`, kind: "silver", name: j }))];
  for (const m of graph) {
    const col = 2 + depth[m.name];
    while (columns.length <= col) columns.push([]);
    columns[col].push({ id: `model:${m.name}`, kind: "model", name: m.name });
  }
  const edges = [
    ...allJobs.map((j) => [`job:${j}`, `silver:${j}`]),
    ...graph.flatMap((m) => [...m.jobs.map((j) => [`silver:${j}`, `model:${m.name}`]), ...m.models.map((d) => [`model:${d}`, `model:${m.name}`])]),
  ];
  const nodes = {};
  columns.forEach((col, x) =>
    col.forEach((node, y) => {
      nodes[node.id] = { ...node, x: PAD + x * (NODE_W + GAP_X), y: PAD + y * (NODE_H + GAP_Y) };
    }),
  );
  const width = PAD * 2 + columns.length * NODE_W + (columns.length - 1) * GAP_X;
  const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (NODE_H + GAP_Y) - GAP_Y;
  return { nodes, edges, width, height };
}

// What a node shows: its state and its figures, from the run.
function stateOf(run, node) {
  const execution = run.executions.find((e) => e.job_id === node.name);
  if (node.kind === "job") {
    if (!execution) return { status: "REUSED", line: "not run: silver reused" };
    const bronze = execution.steps.find((s) => s.layer === "bronze");
    return { status: execution.status, line: `${count(bronze?.rows_out)} rows · ${seconds(execution.started_at, execution.finished_at)}` };
  }
  if (node.kind === "silver") {
    if (!execution) return { status: "REUSED", line: "committed silver" };
    const silver = execution.steps.find((s) => s.layer === "silver");
    return { status: silver?.status || "PENDING", line: `${count(silver?.rows_out)} rows · ${seconds(silver?.started_at, silver?.finished_at)}` };
  }
  const model = run.models.find((m) => m.name === node.name);
  if (!model) return { status: isActive(run) ? "PENDING" : run.status === "COMPLETED" ? "PENDING" : "NOT BUILT", line: "" };
  if (model.status !== "BUILT") return { status: model.status, line: cut(model.reason, 30) };
  return { status: "BUILT", line: `${count(model.rows)} rows · ${model.seconds.toFixed(2)} s` };
}

export function graphView(run, onPick) {
  const { nodes, edges, width, height } = layout(run);
  const title = svg("title");
  title.textContent = `Workflow run ${run.id}: jobs, their silver tables and the workflow models`;
  const paths = edges
    .filter(([a, b]) => nodes[a] && nodes[b])
    .map(([a, b]) => {
      const [from, to] = [nodes[a], nodes[b]];
      const [x1, y1, x2, y2] = [from.x + NODE_W, from.y + NODE_H / 2, to.x, to.y + NODE_H / 2];
      const mid = (x1 + x2) / 2;
      return svg("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, class: "edge", "marker-end": "url(#arrow)" });
    });
  const boxes = Object.values(nodes).map((node) => {
    const state = stateOf(run, node);
    const label = node.kind === "job" ? `job ${node.name}` : node.kind === "silver" ? `silver.${node.name}` : `gold.${node.name}`;
    const text = svg("text", { x: node.x + 10, y: node.y + 22, class: "node-name" });
    text.textContent = cut(label);
    const status = svg("text", { x: node.x + 10, y: node.y + 40, class: "node-line" });
    status.textContent = `${state.status}${state.line ? ` · ${state.line}` : ""}`;
    const group = svg(
      "g",
      { class: `node n-${node.kind} s-${state.status.toLowerCase().replace(/\s+/g, "-")}`, "data-node": node.id, "data-status": state.status },
      svg("rect", { x: node.x, y: node.y, width: NODE_W, height: NODE_H, rx: 6 }),
      text,
      status,
    );
    const description = svg("title");
    description.textContent = `${label}: ${state.status}${state.line ? `, ${state.line}` : ""}`;
    group.append(description);
    if (node.kind === "model") {
      group.setAttribute("tabindex", "0");
      group.setAttribute("role", "button");
      group.setAttribute("aria-label", `${label}: ${state.status}. Show its preview and lineage`);
      group.addEventListener("click", () => onPick(node.name));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          onPick(node.name);
        }
      });
    }
    return group;
  });
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "edge-head" }));
  return el(
    "div",
    { class: "scroll graph" },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": "graph-title", class: "workflow-graph" }, Object.assign(title, { id: "graph-title" }), svg("defs", {}, marker), paths, boxes),
  );
}

function lineage(model) {
  const rows = model.inputs.map((i) => ({
    reads: i.job_id ? `silver.${i.job_id}` : i.dimension ? `dim_${i.dimension}` : i.table,
    table: i.table,
    version: i.version,
    "committed by execution": i.run_id,
  }));
  return dataTable(rows, { caption: `What ${model.name} read (lineage)` });
}

export class WorkflowRunPage {
  constructor(root, id) {
    this.id = id;
    this.run = null;
    this.picked = null;
    this.error = el("div", { "aria-live": "polite" });
    this.head = el("div", { class: "summary" });
    this.graph = el("div", { class: "graph-box" });
    this.detail = el("div", { class: "model-detail", "aria-live": "polite" });
    this.cancelButton = el("button", { type: "button", class: "danger", text: "Cancel run", onclick: () => this.cancel() });
    root.replaceChildren(
      el("div", { class: "page-head" }, el("h2", {}, "Workflow run ", el("code", { text: id })), this.cancelButton),
      this.error,
      this.head,
      this.graph,
      this.detail,
    );
  }

  get anyActive() {
    return isActive(this.run);
  }

  async refresh() {
    try {
      this.run = await api.workflowRun(this.id);
      this.error.replaceChildren();
    } catch (err) {
      this.error.replaceChildren(alertBox(err.message));
      return;
    }
    const run = this.run;
    this.cancelButton.hidden = !isActive(run);
    this.head.replaceChildren(
      el(
        "p",
        {},
        badge(run.status),
        ` workflow ${run.workflow_id} · ${run.jobs.length} job(s) run · ${seconds(run.started_at, run.finished_at)}`,
        run.error ? el("span", { class: "error-inline", text: ` — ${run.error}` }) : null,
      ),
      el("ul", { class: "job-links" }, run.executions.map((e) => el("li", {}, el("a", { href: `#/executions/${encodeURIComponent(e.id)}`, text: `${e.job_id}: execution ${e.id}` }), " ", badge(e.status)))),
    );
    this.graph.replaceChildren(graphView(run, (name) => this.pick(name)));
    if (this.picked && !this.detail.childElementCount) this.pick(this.picked);
  }

  async pick(name) {
    this.picked = name;
    const model = this.run?.models.find((m) => m.name === name);
    if (!model) {
      this.detail.replaceChildren(el("h3", { text: `gold.${name}` }), el("p", { class: "muted", text: "Not built in this run yet." }));
      return;
    }
    if (model.status !== "BUILT") {
      this.detail.replaceChildren(el("h3", { text: `gold.${name}` }), badge(model.status), el("p", { text: model.reason }));
      return;
    }
    this.detail.replaceChildren(el("h3", { text: `gold.${name}` }), el("p", { class: "muted", text: "Loading its preview…" }));
    try {
      const shown = await api.workflowModelPreview(this.id, name, 20);
      const table = dataTable(shown.preview, { columns: shown.columns.map((c) => c.name ?? c), caption: `${name}: version ${shown.version}, ${count(shown.rows)} rows (first ${shown.preview.length})` });
      this.detail.replaceChildren(
        el("h3", { text: `gold.${name}` }),
        el("div", { class: "preview", "data-model": name }, previewWithChart(name, table, previewChart(name, shown.columns.map((c) => c.name ?? c), shown.preview, shown.rows, 560))),
        lineage(model),
      );
    } catch (err) {
      this.detail.replaceChildren(el("h3", { text: `gold.${name}` }), alertBox(err.message), lineage(model));
    }
  }

  async cancel() {
    this.cancelButton.disabled = true;
    try {
      await api.cancelWorkflowRun(this.id);
    } catch (err) {
      this.error.replaceChildren(alertBox(err.message));
    } finally {
      this.cancelButton.disabled = false;
    }
    this.refresh();
  }
}
