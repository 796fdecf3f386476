// The Prefect logs of an execution's flow run, a page at a time.

import { api, itemsOf } from "./api.js";
import { alertBox, el, when } from "./dom.js";

const LOG_PAGE = 50;
const LEVELS = { 10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL" };

function logLine(entry) {
  const level = entry.level_name ?? LEVELS[entry.level] ?? entry.level ?? "";
  return el(
    "tr",
    { class: `log-${String(level).toLowerCase()}` },
    el("td", { class: "nowrap", text: when(entry.timestamp ?? entry.time) }),
    el("td", { text: String(level) }),
    el("td", { class: "nowrap", text: entry.logger ?? entry.name ?? "" }),
    el("td", { class: "log-message", text: entry.message ?? entry.msg ?? "" }),
  );
}

export class LogPanel {
  constructor(executionId) {
    this.id = executionId;
    this.offset = 0;
    this.loaded = false;
    this.partial = true;
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
    const entries = itemsOf(data, "logs");
    this.partial = entries.length < LOG_PAGE;
    const total = data && typeof data.total === "number" ? data.total : null;
    const hasNext = total !== null ? offset + entries.length < total : entries.length === LOG_PAGE;
    const last = offset + entries.length;
    this.pager.replaceChildren(
      el("button", { type: "button", text: "← previous", disabled: offset === 0, onclick: () => this.load(Math.max(0, offset - LOG_PAGE)) }),
      el("span", { class: "muted", text: entries.length ? ` lines ${offset + 1}–${last}${total !== null ? ` of ${total}` : ""} ` : " no lines " }),
      el("button", { type: "button", text: "next →", disabled: !hasNext, onclick: () => this.load(offset + LOG_PAGE) }),
      el("button", { type: "button", text: "reload", onclick: () => this.load(this.offset) }),
    );
    this.body.replaceChildren(
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
