// The Prefect logs of an execution's flow run, a page at a time. Prefect receives them in
// batches, after the run may have ended: until the API says the page is complete, the
// panel says more may arrive (and the execution page keeps reloading it).

import { api } from "./api.js";
import { alertBox, el, when } from "./dom.js";

const LOG_PAGE = 50;

// A LogLine of the API (orchestrator/api/schemas.py).
function logLine(entry) {
  return el(
    "tr",
    { class: `log-${entry.level_name.toLowerCase()}` },
    el("td", { class: "nowrap", text: when(entry.timestamp) }),
    el("td", { text: entry.level_name }),
    el("td", { class: "nowrap", text: entry.logger }),
    el("td", { class: "log-message", text: entry.message }),
  );
}

export class LogPanel {
  constructor(executionId) {
    this.id = executionId;
    this.offset = 0;
    this.loaded = false;
    this.complete = false;
    this.pager = el("div", { class: "pager" });
    this.body = el("div", { class: "logs" });
    this.node = el("div", {}, this.pager, this.body);
  }

  async load(offset = this.offset) {
    let data;
    try {
      data = await api.logs(this.id, offset, LOG_PAGE);
    } catch (err) {
      this.body.replaceChildren(alertBox(err.message));
      return;
    }
    this.loaded = true;
    this.offset = offset;
    this.complete = data.complete === true;
    const entries = data.items;
    // A LogPage has no total (Prefect counts none): a full page may have a next one.
    const hasNext = entries.length === LOG_PAGE;
    const last = offset + entries.length;
    this.pager.replaceChildren(
      el("button", { type: "button", text: "← previous", disabled: offset === 0, onclick: () => this.load(Math.max(0, offset - LOG_PAGE)) }),
      el("span", { class: "muted", text: entries.length ? ` lines ${offset + 1}–${last} ` : " no lines " }),
      el("button", { type: "button", text: "next →", disabled: !hasNext, onclick: () => this.load(offset + LOG_PAGE) }),
      el("button", { type: "button", text: "reload", onclick: () => this.load(this.offset) }),
    );
    this.body.replaceChildren(
      ...(this.complete ? [] : [el("p", { class: "note", "data-more": "", text: "More lines may arrive: Prefect is still receiving this run's logs." })]),
      entries.length
        ? el(
            "div",
            { class: "scroll" },
            el(
              "table",
              { class: "log-table" },
              el("thead", {}, el("tr", {}, ["time", "level", "logger", "message"].map((c) => el("th", { scope: "col", text: c })))),
              el("tbody", {}, entries.map(logLine)),
            ),
          )
        : el("p", { class: "muted", text: "No log lines yet." }),
    );
  }
}
