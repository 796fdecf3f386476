// The jobs page: every job of every workflow, its latest execution as bronze -> silver ->
// gold, its schedule (Pause/Resume) and upload trigger, a Run button and a CSV upload per
// job, Run workflow and Delete workflow per workflow; rows update in place so controls keep
// state.

import { api } from "./api.js";
import { LAYERS, alertBox, badge, count, el, isActive, seconds, stepsByLayer } from "./dom.js";
import { AutomationView, confirmDelete, scheduleView } from "./manage.js";
import { progressView } from "./progress.js";

const keyOf = (workflowId, jobId) => `${workflowId}/${jobId}`;
export const jobHref = (workflowId, jobId) => `#/jobs/${encodeURIComponent(workflowId)}/${encodeURIComponent(jobId)}`;

function stepCell(layer, step, executionStatus) {
  const status = step ? step.status : null;
  return el(
    "div",
    { class: "step", "data-layer": layer, "data-status": status || "" },
    el("div", { class: "step-head" }, el("span", { class: "layer", text: layer }), badge(status)),
    el(
      "dl",
      { class: "counts" },
      el("dt", { text: "in" }),
      el("dd", { text: count(step?.rows_in) }),
      el("dt", { text: "out" }),
      el("dd", { text: count(step?.rows_out) }),
      el("dt", { text: "rejected" }),
      el("dd", { text: count(step?.rows_rejected) }),
      el("dt", { text: "time" }),
      el("dd", { text: step ? seconds(step.started_at, step.finished_at) : "—" }),
    ),
    progressView(step, executionStatus),
  );
}

function stepsView(execution) {
  const steps = stepsByLayer(execution);
  const cells = [];
  LAYERS.forEach((layer, i) => {
    if (i) cells.push(el("span", { class: "arrow", "aria-hidden": "true", text: "→" }));
    cells.push(stepCell(layer, steps[layer], execution?.status));
  });
  return el("div", { class: "steps" }, cells);
}

function executionLine(execution) {
  if (!execution) return el("p", { class: "muted", text: "Never run." });
  return el(
    "p",
    { class: "latest" },
    badge(execution.status),
    " ",
    el("a", { href: `#/executions/${encodeURIComponent(execution.id)}`, text: `execution ${execution.id}` }),
    execution.error ? el("span", { class: "error-inline", text: ` — ${execution.error}` }) : null,
  );
}

// "Run workflow" (every job, then the workflow's own models) and a link to its latest run;
// "Delete workflow" (asking first, its data too when ticked); onDeleted() after a delete.
function workflowRunControls(workflowId, onDeleted) {
  const latest = el("span", { class: "workflow-latest" });
  const message = el("span", { "aria-live": "polite" });
  const button = el("button", {
    type: "button",
    class: "primary run-workflow",
    text: "Run workflow",
    "aria-label": `Run workflow ${workflowId}: every job, then its models`,
    onclick: async () => {
      button.disabled = true;
      try {
        const run = await api.runWorkflow(workflowId);
        location.hash = `#/workflow-executions/${encodeURIComponent(run.id)}`;
      } catch (err) {
        message.replaceChildren(alertBox(err.message));
        button.disabled = false;
      }
    },
  });
  api.workflowRuns(workflowId, 1).then(
    (page) => {
      const run = page.items[0];
      if (run) latest.replaceChildren(badge(run.status), " ", el("a", { href: `#/workflow-executions/${encodeURIComponent(run.id)}`, text: `latest workflow run ${run.id}` }));
    },
    () => {},
  );
  const remove = el("button", {
    type: "button",
    class: "danger delete-workflow",
    text: "Delete workflow",
    "aria-label": `Delete workflow ${workflowId}`,
    onclick: async () => {
      const answer = await confirmDelete({
        title: `Delete workflow ${workflowId}?`,
        consequence: "Its jobs, their executions and schedules are deleted; a running execution refuses it. Unless ticked below, its landing files and tables stay in S3.",
        option: "Also delete its data: landing files and every bronze, silver and gold table",
      });
      if (!answer) return;
      remove.disabled = true;
      try {
        await api.deleteWorkflow(workflowId, answer.checked);
        onDeleted(workflowId);
      } catch (err) {
        message.replaceChildren(alertBox(err.message));
        remove.disabled = false;
      }
    },
  });
  const schedule = el("div", { class: "workflow-schedule" });
  const drawSchedule = (shown) => schedule.replaceChildren(scheduleView(workflowId, null, shown, drawSchedule));
  api.workflow(workflowId).then(
    (detail) => {
      if (detail.schedule) drawSchedule(detail.schedule);
    },
    () => {},
  );
  return el("div", { class: "workflow-actions" }, button, remove, latest, message, schedule);
}

class JobRow {
  constructor(workflowId, jobId, onChanged) {
    this.workflowId = workflowId;
    this.jobId = jobId;
    this.onChanged = onChanged;
    const id = `${workflowId}--${jobId}`.replace(/[^A-Za-z0-9_-]/g, "_");
    this.status = el("div", { class: "status" });
    this.title = el("p", { class: "job-title muted" });
    this.message = el("div", { class: "message", "aria-live": "polite" });
    this.automation = new AutomationView(workflowId, jobId, onChanged);
    this.fromLayer = el(
      "select",
      { id: `from-${id}`, name: "from_layer" },
      LAYERS.map((l) => el("option", { value: l, text: l })),
    );
    this.fullRefresh = el("input", { type: "checkbox", id: `full-${id}`, name: "full_refresh" });
    this.runButton = el("button", { type: "button", class: "primary run", text: "Run", "aria-label": `Run ${jobId}`, onclick: () => this.run() });
    this.files = el("input", { type: "file", id: `files-${id}`, accept: ".csv,text/csv", multiple: true });
    this.uploadButton = el("button", { type: "button", class: "upload", text: "Upload", "aria-label": `Upload files to ${jobId}`, onclick: () => this.upload() });
    this.node = el(
      "article",
      { class: "job", "data-job": jobId, "data-workflow": workflowId, "aria-label": `job ${jobId}` },
      el(
        "div",
        { class: "job-name" },
        el("h3", {}, el("a", { href: jobHref(workflowId, jobId), text: jobId, title: `History of ${jobId}: charts of its last runs` })),
        this.title,
        this.status,
        this.automation.node,
      ),
      el("div", { class: "job-steps" }),
      el(
        "div",
        { class: "job-actions" },
        el(
          "div",
          { class: "row" },
          this.runButton,
          el("label", { for: `from-${id}`, text: "from" }),
          this.fromLayer,
          el("label", { class: "check", for: `full-${id}` }, this.fullRefresh, "full refresh"),
        ),
        el("div", { class: "row" }, el("label", { class: "visually-hidden", for: `files-${id}`, text: `CSV files for ${jobId}` }), this.files, this.uploadButton),
        this.message,
      ),
    );
  }

  update(job) {
    const execution = job.latest_execution;
    this.execution = execution;
    if (job.name && job.name !== this.jobId) this.title.textContent = job.name;
    this.node.querySelector(".job-steps").replaceChildren(stepsView(execution));
    this.status.replaceChildren(executionLine(execution));
    if ("schedule" in job) this.automation.update(job);
    this.runButton.disabled = isActive(execution);
    this.runButton.title = isActive(execution) ? "A run of this job is in progress" : "";
  }

  say(node) {
    this.message.replaceChildren(node);
  }

  async run() {
    this.runButton.disabled = true;
    try {
      const execution = await api.trigger(this.workflowId, this.jobId, this.fromLayer.value, this.fullRefresh.checked);
      this.say(el("p", { class: "ok" }, "Started ", el("a", { href: `#/executions/${encodeURIComponent(execution.id)}`, text: execution.id }), "."));
      this.update({ latest_execution: execution });
    } catch (err) {
      this.say(alertBox(err.message));
      this.runButton.disabled = isActive(this.execution);
    }
    this.onChanged();
  }

  async upload() {
    const files = [...this.files.files];
    if (!files.length) {
      this.say(alertBox("Choose one or more .csv files first."));
      return;
    }
    const wrong = files.filter((f) => !f.name.toLowerCase().endsWith(".csv"));
    if (wrong.length) {
      this.say(alertBox(`Only .csv files can be uploaded: ${wrong.map((f) => f.name).join(", ")}`));
      return;
    }
    this.uploadButton.disabled = true;
    this.say(el("p", { class: "muted", text: `Uploading ${files.length} file(s)…` }));
    try {
      const result = await api.upload(this.workflowId, this.jobId, files);
      this.say(el("p", { class: "ok", text: `Uploaded ${result.files.map((f) => f.name).join(", ")}.` }));
      this.files.value = "";
      this.onChanged(); // an upload trigger is pending now
    } catch (err) {
      this.say(alertBox(err.message));
    } finally {
      this.uploadButton.disabled = false;
    }
  }
}

export class JobsPage {
  constructor(root) {
    this.root = root;
    this.rows = new Map();
    this.sections = new Map();
    this.error = el("div", { "aria-live": "polite" });
    this.notice = el("div", { "aria-live": "polite" });
    this.list = el("div", { class: "workflows" });
    root.replaceChildren(
      el("div", { class: "page-head" }, el("h2", { text: "Jobs" }), el("p", { class: "muted", text: "Latest execution of every job, live." })),
      this.error,
      this.notice,
      this.list,
    );
  }

  get anyActive() {
    return [...this.rows.values()].some((row) => isActive(row.execution) || row.automation.pending);
  }

  async refresh() {
    let jobs;
    try {
      jobs = await api.jobs();
      this.error.replaceChildren();
    } catch (err) {
      this.error.replaceChildren(alertBox(err.message));
      return;
    }
    // Workflows and jobs deleted meanwhile (here, by the CLI or the API) leave the page.
    const present = new Set(jobs.map((job) => keyOf(job.workflow_id, job.job_id)));
    for (const [key, row] of this.rows) {
      if (!present.has(key)) {
        row.node.remove();
        this.rows.delete(key);
      }
    }
    const workflows = new Set(jobs.map((job) => job.workflow_id));
    for (const workflowId of [...this.sections.keys()]) {
      if (!workflows.has(workflowId)) this.dropWorkflow(workflowId);
    }
    if (!jobs.length) {
      this.list.replaceChildren(el("p", { class: "muted", text: "No workflows yet: apply one (flowforge seed, or flowforge workflows apply FILE)." }));
      return;
    }
    for (const job of jobs) {
      const workflowId = job.workflow_id;
      const jobId = job.job_id;
      const key = keyOf(workflowId, jobId);
      if (!this.sections.has(workflowId)) {
        const body = el("div", { class: "jobs" });
        const section = el(
          "section",
          { class: "workflow", "data-workflow": workflowId, "aria-label": `workflow ${workflowId}` },
          el("div", { class: "workflow-head" }, el("h2", { class: "workflow-title" }, "Workflow ", el("code", { text: workflowId })), workflowRunControls(workflowId, (id) => this.deleted(id))),
          body,
        );
        if (!this.sections.size) this.list.replaceChildren();
        this.list.append(section);
        this.sections.set(workflowId, body);
      }
      if (!this.rows.has(key)) {
        const row = new JobRow(workflowId, jobId, () => this.refresh());
        this.rows.set(key, row);
        this.sections.get(workflowId).append(row.node);
      }
      this.rows.get(key).update(job);
    }
  }

  dropWorkflow(workflowId) {
    this.sections.get(workflowId)?.closest("section").remove();
    this.sections.delete(workflowId);
    for (const [key, row] of this.rows) {
      if (row.workflowId === workflowId) this.rows.delete(key);
    }
  }

  deleted(workflowId) {
    this.dropWorkflow(workflowId);
    this.notice.replaceChildren(el("p", { class: "ok", text: `Deleted workflow ${workflowId}.` }));
    this.refresh();
  }
}
