// Managing jobs from the UI: a job's schedule (next run, Pause/Resume) and upload trigger in
// words, its landing files with Delete, and the confirmation every delete asks first.

import { api } from "./api.js";
import { alertBox, count, el, when } from "./dom.js";

let dialogs = 0;

// A modal <dialog> asking before something is deleted: the consequence spelled out, Cancel
// focused, Escape cancels. Resolves to null (cancelled) or {checked} (the option's box).
export function confirmDelete({ title, consequence, confirmLabel = "Delete", option = null }) {
  const opener = document.activeElement;
  const n = ++dialogs;
  const titleId = `confirm-title-${n}`;
  const textId = `confirm-text-${n}`;
  const box = option ? el("input", { type: "checkbox", id: `confirm-option-${n}`, name: "option" }) : null;
  const cancel = el("button", { type: "button", class: "cancel", text: "Cancel", autofocus: true });
  const confirm = el("button", { type: "button", class: "danger confirm", text: confirmLabel });
  const dialog = el(
    "dialog",
    { class: "confirm-dialog", "aria-labelledby": titleId, "aria-describedby": textId },
    el("h2", { id: titleId, text: title }),
    el("p", { id: textId, text: consequence }),
    option ? el("p", { class: "option" }, el("label", { class: "check", for: box.id }, box, option)) : null,
    el("div", { class: "dialog-actions" }, cancel, confirm),
  );
  return new Promise((resolve) => {
    cancel.addEventListener("click", () => dialog.close("cancel"));
    confirm.addEventListener("click", () => dialog.close("confirm"));
    // Escape fires "cancel" and closes the dialog with an empty returnValue.
    dialog.addEventListener("close", () => {
      const confirmed = dialog.returnValue === "confirm";
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(confirmed ? { checked: box ? box.checked : false } : null);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

const pad = (n) => String(n).padStart(2, "0");

// "YYYY-MM-DD HH:MM" of an instant in a time zone (the schedule's own).
export function zonedMinute(value, timeZone) {
  const date = new Date(value);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

const clock = (value) => {
  const d = new Date(value);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
};

// The schedule in words (cron, zone, next run or paused, whether Prefect has it) and a
// Pause/Resume button. onChange(schedule) gets the API's answer. jobId null: the
// workflow's own schedule (whole workflow runs).
export function scheduleView(workflowId, jobId, schedule, onChange) {
  const owner = jobId === null ? `workflow ${workflowId}` : jobId;
  const message = el("span", { class: "schedule-message", "aria-live": "polite" });
  const state = schedule.paused
    ? el("strong", { class: "schedule-state paused", text: "paused" })
    : schedule.next_run_at
      ? el("span", { class: "schedule-state" }, "next run ", el("time", { datetime: schedule.next_run_at, title: when(schedule.next_run_at), text: zonedMinute(schedule.next_run_at, schedule.timezone) }), ` (${schedule.timezone})`)
      : el("span", { class: "schedule-state", text: "no next run" });
  const button = el("button", {
    type: "button",
    class: "schedule-toggle",
    text: schedule.paused ? "Resume" : "Pause",
    "aria-label": `${schedule.paused ? "Resume" : "Pause"} the schedule of ${owner}`,
    onclick: async () => {
      button.disabled = true;
      try {
        const paused = !schedule.paused;
        onChange(await (jobId === null ? api.pauseWorkflowSchedule(workflowId, paused) : api.pauseSchedule(workflowId, jobId, paused)));
      } catch (err) {
        message.replaceChildren(alertBox(err.message));
        button.disabled = false;
      }
    },
  });
  const notes = [];
  if (schedule.error) notes.push(el("span", { class: "error-inline", text: ` Not in Prefect: ${schedule.error}` }));
  else if (!schedule.registered) notes.push(el("span", { class: "muted", text: " (not yet registered in Prefect)" }));
  return el(
    "div",
    { class: "schedule", "data-paused": String(schedule.paused) },
    el("p", {}, el("span", { class: "label", text: jobId === null ? "Workflow schedule " : "Schedule " }), el("code", { text: schedule.cron }), " · ", state, ...notes, " ", button),
    message,
  );
}

// The upload trigger in one line: what it waits for, when it starts.
export function triggerText(trigger) {
  const files = `${trigger.files} file(s)`;
  if (trigger.pending && trigger.waiting_for) return `Upload trigger: waits for execution ${trigger.waiting_for} (${files} since)`;
  if (trigger.pending && trigger.due_at) return `Upload trigger: starts at ${clock(trigger.due_at)} after ${files}`;
  if (trigger.pending) return `Upload trigger: a run is pending (${files})`;
  if (trigger.on_upload) return `Starts on upload, ${count(trigger.debounce_seconds)} s after the last file`;
  return "No upload trigger";
}

export function triggerView(trigger) {
  return el("p", { class: "trigger", "data-pending": String(trigger.pending), text: triggerText(trigger) });
}

// A job's automation (schedule, trigger) redrawn in place from the job's summary.
export class AutomationView {
  constructor(workflowId, jobId, onChanged = () => {}) {
    this.workflowId = workflowId;
    this.jobId = jobId;
    this.onChanged = onChanged;
    this.node = el("div", { class: "automation" });
  }

  // An upload trigger waiting to start a run: the page keeps polling to see it start.
  get pending() {
    return Boolean(this.trigger?.pending);
  }

  update(job) {
    this.trigger = job.trigger;
    const seen = JSON.stringify([job.schedule, job.trigger]);
    if (seen === this.seen) return;
    this.seen = seen;
    const focused = this.node.contains(document.activeElement);
    const parts = [];
    if (job.schedule) parts.push(scheduleView(this.workflowId, this.jobId, job.schedule, (schedule) => this.changed({ ...job, schedule })));
    if (job.trigger) parts.push(triggerView(job.trigger));
    this.node.replaceChildren(...parts);
    if (focused) this.node.querySelector("button.schedule-toggle")?.focus();
  }

  // After Pause or Resume: the new state drawn, the (new) button keeps the focus.
  changed(job) {
    this.update(job);
    this.node.querySelector("button.schedule-toggle")?.focus();
    this.onChanged();
  }
}

// The job's landing files with a Delete button each (asking first).
export class LandingFilesView {
  constructor(workflowId, jobId) {
    this.workflowId = workflowId;
    this.jobId = jobId;
    this.message = el("div", { class: "message", "aria-live": "polite" });
    this.list = el("div", {}, el("p", { class: "muted", text: "Loading…" }));
    this.node = el("div", { class: "landing" }, this.message, this.list);
  }

  async refresh() {
    let answer;
    try {
      answer = await api.landingFiles(this.workflowId, this.jobId);
    } catch (err) {
      this.message.replaceChildren(alertBox(err.message));
      return;
    }
    const seen = JSON.stringify(answer.files);
    if (seen === this.seen) return;
    this.seen = seen;
    if (!answer.files.length) {
      this.list.replaceChildren(el("p", { class: "muted", text: "No landing files: the next bronze run has nothing new to read." }));
      return;
    }
    this.list.replaceChildren(
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          { class: "landing-files stack-table" },
          el("thead", {}, el("tr", {}, ["file", "size", "last modified", ""].map((c) => el("th", { scope: "col", text: c })))),
          el(
            "tbody",
            {},
            answer.files.map((f) =>
              el(
                "tr",
                { "data-file": f.name },
                el("th", { scope: "row" }, el("code", { text: f.name })),
                el("td", { class: "num", "data-label": "size", text: `${count(f.size_bytes)} bytes` }),
                el("td", { class: "nowrap", "data-label": "last modified", text: when(f.last_modified) }),
                el("td", { "data-label": "" }, el("button", { type: "button", class: "danger delete-file", text: "Delete", "aria-label": `Delete landing file ${f.name}`, onclick: () => this.remove(f.name) })),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async remove(name) {
    const answer = await confirmDelete({
      title: `Delete landing file ${name}?`,
      consequence: `Its rows stay in bronze until a run with --forget ${name} or a full refresh.`,
    });
    if (!answer) return;
    try {
      await api.deleteLandingFile(this.workflowId, this.jobId, name);
      this.message.replaceChildren(el("p", { class: "ok", text: `Deleted landing file ${name}.` }));
    } catch (err) {
      this.message.replaceChildren(alertBox(err.message));
    }
    await this.refresh();
  }
}
