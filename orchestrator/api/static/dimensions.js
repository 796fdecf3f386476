// The dimensions page (#/dimensions): every dimension table with its latest version, rows and
// columns, and a Delete button that asks first (the API refuses one a workflow still lists).

import { api } from "./api.js";
import { alertBox, count, el, when } from "./dom.js";
import { confirmDelete } from "./manage.js";

export class DimensionsPage {
  constructor(root) {
    this.root = root;
    this.message = el("div", { class: "message", "aria-live": "polite" });
    this.list = el("div", {}, el("p", { class: "muted", text: "Loading…" }));
    root.replaceChildren(
      el(
        "div",
        { class: "page-head" },
        el("h2", { text: "Dimensions" }),
        el("p", { class: "muted", text: "Reference tables the workflows join (flowforge dimensions upload, or PUT /api/dimensions/{name})." }),
      ),
      this.message,
      this.list,
    );
  }

  get anyActive() {
    return false;
  }

  async refresh() {
    let dimensions;
    try {
      dimensions = await api.dimensions();
    } catch (err) {
      this.message.replaceChildren(alertBox(err.message));
      return;
    }
    const seen = JSON.stringify(dimensions);
    if (seen === this.seen) return;
    this.seen = seen;
    if (!dimensions.length) {
      this.list.replaceChildren(el("p", { class: "muted", text: "No dimensions yet." }));
      return;
    }
    const head = ["dimension", "version", "rows", "columns", "uploaded", "source", ""];
    this.list.replaceChildren(
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          { class: "dimensions stack-table" },
          el("thead", {}, el("tr", {}, head.map((c) => el("th", { scope: "col", text: c })))),
          el(
            "tbody",
            {},
            dimensions.map((d) =>
              el(
                "tr",
                { "data-dimension": d.name },
                el("th", { scope: "row" }, el("code", { text: d.name })),
                el("td", { class: "num", "data-label": "version", text: String(d.version) }),
                el("td", { class: "num", "data-label": "rows", text: count(d.rows) }),
                el("td", { class: "columns-cell", "data-label": "columns", text: d.columns.map(([name, type]) => `${name} ${type}`).join(", ") }),
                el("td", { class: "nowrap", "data-label": "uploaded", text: when(d.created_at) }),
                el("td", { "data-label": "source", text: d.source }),
                el("td", { "data-label": "" }, el("button", { type: "button", class: "danger delete-dimension", text: "Delete", "aria-label": `Delete dimension ${d.name}`, onclick: () => this.remove(d.name) })),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async remove(name) {
    const answer = await confirmDelete({
      title: `Delete dimension ${name}?`,
      consequence: `Every version of ${name} is deleted. A workflow that still lists it refuses the delete: remove it from the workflow's dimensions first.`,
    });
    if (!answer) return;
    try {
      await api.deleteDimension(name);
      this.message.replaceChildren(el("p", { class: "ok", text: `Deleted dimension ${name}.` }));
    } catch (err) {
      this.message.replaceChildren(alertBox(err.message));
    }
    await this.refresh();
  }
}
