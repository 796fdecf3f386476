// A gold model's preview as a chart when its shape fits one: a date (or month) column and
// numeric columns -> a line per numeric column over time; one text column and numeric
// columns -> bars per category. Anything else stays a table only.

import { barChart, lineChart } from "./charts.js";
import { el } from "./dom.js";

const MAX_SERIES = 4;
const DATE = /^\d{4}-\d{2}(-\d{2})?([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?)?$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/; // decimals and 64-bit integers come as text

function kindOf(values) {
  const present = values.filter((v) => v !== null && v !== undefined && v !== "");
  if (!present.length) return "empty";
  if (present.every((v) => typeof v === "number" || (typeof v === "string" && NUMBER.test(v)))) return "number";
  if (present.every((v) => typeof v === "string" && DATE.test(v))) return "date";
  return "text";
}

// {kind: "line" | "bar", x: column, numbers: [columns]} or null when no chart fits.
export function chartShape(columns, rows) {
  if (!rows.length) return null;
  const kinds = Object.fromEntries(columns.map((c) => [c, kindOf(rows.map((r) => r[c]))]));
  const of = (kind) => columns.filter((c) => kinds[c] === kind);
  const [dates, numbers, texts] = [of("date"), of("number"), of("text")];
  if (!numbers.length) return null;
  if (dates.length === 1 && !texts.length) return { kind: "line", x: dates[0], numbers };
  if (texts.length === 1 && !dates.length) return { kind: "bar", x: texts[0], numbers };
  return null;
}

const asNumber = (v) => (v === null || v === undefined || v === "" ? null : Number(v));

export function previewChart(name, columns, rows, totalRows, width) {
  const shape = chartShape(columns, rows);
  if (!shape) return null;
  const ordered = shape.kind === "line" ? rows.slice().sort((a, b) => String(a[shape.x]).localeCompare(String(b[shape.x]))) : rows;
  const shown = shape.numbers.slice(0, MAX_SERIES);
  const series = shown.map((c) => ({ name: c, values: ordered.map((r) => asNumber(r[c])) }));
  const part = rows.length < totalRows ? `the first ${rows.length} of ${totalRows} rows` : `all ${rows.length} rows`;
  const more = shape.numbers.length > shown.length ? ` (the first ${shown.length} of ${shape.numbers.length} numeric columns)` : "";
  const spec = {
    title: `${name}: ${shown.join(", ")} by ${shape.x}`,
    desc: `${shape.kind === "line" ? "Line" : "Bar"} chart of ${part} of ${name}: ${shown.join(", ")}${more} for each ${shape.x}.`,
    x: ordered.map((r) => (r[shape.x] === null || r[shape.x] === undefined ? "(empty)" : String(r[shape.x]).slice(0, 24))),
    xLabel: shape.x,
    series,
    legend: true,
    width,
  };
  return shape.kind === "line" ? lineChart(spec) : barChart(spec);
}

// The table and, beside it, the chart when one fits, with a button that hides or shows it.
export function previewWithChart(name, table, chart) {
  if (!chart) return table;
  const id = `chart-of-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  chart.id = id;
  const toggle = el("button", { type: "button", class: "chart-toggle", "aria-controls": id, "aria-pressed": "true", text: "Chart: shown" });
  toggle.addEventListener("click", () => {
    const showing = toggle.getAttribute("aria-pressed") === "true";
    toggle.setAttribute("aria-pressed", showing ? "false" : "true");
    toggle.textContent = showing ? "Chart: hidden" : "Chart: shown";
    chart.hidden = showing;
  });
  return el("div", { class: "with-chart" }, el("div", { class: "toggle-row" }, toggle), el("div", { class: "preview-body" }, table, chart));
}
