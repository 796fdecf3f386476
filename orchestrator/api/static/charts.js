// SVG charts drawn here, nothing fetched: line, bar (grouped or stacked) and sparkline.
// Each chart is a <figure>: an SVG with <title>/<desc> (role="img"), a legend whose series
// differ by shape, dash or pattern as well as colour, and its data as a table in a
// <details> (the text alternative). No inline styles (the CSP allows none): attributes
// and the classes in app.css only.

import { el } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
// Colour-blind safe (Okabe-Ito), each with its own marker, dash and fill pattern.
const SERIES = [
  { colour: "#0072B2", marker: "circle", dash: null, pattern: "solid" },
  { colour: "#D55E00", marker: "square", dash: "6 3", pattern: "hatch" },
  { colour: "#009E73", marker: "triangle", dash: "2 3", pattern: "dots" },
  { colour: "#CC79A7", marker: "diamond", dash: "10 3 2 3", pattern: "cross" },
  { colour: "#8a6d00", marker: "cross", dash: "1 2", pattern: "vertical" },
];
let chartCount = 0;

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const styleOf = (i) => SERIES[i % SERIES.length];

// A round step for axis ticks: 1, 2 or 5 times a power of ten.
function niceStep(span, ticks) {
  const raw = span / Math.max(1, ticks);
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || power;
}

export function shortNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(a < 10 ? 2 : 1)}`;
}

function defs(id) {
  // One fill pattern per series for bars: the pattern, not the colour, tells them apart.
  return svg(
    "defs",
    {},
    SERIES.map((s, i) => {
      const p = svg("pattern", { id: `${id}-p${i}`, width: 6, height: 6, patternUnits: "userSpaceOnUse" });
      p.append(svg("rect", { width: 6, height: 6, fill: s.colour }));
      const ink = { stroke: "#fff", "stroke-width": 1.3 };
      if (s.pattern === "hatch") p.append(svg("path", { d: "M0,6 L6,0", ...ink }));
      if (s.pattern === "dots") p.append(svg("circle", { cx: 3, cy: 3, r: 1.2, fill: "#fff" }));
      if (s.pattern === "cross") p.append(svg("path", { d: "M0,0 L6,6 M6,0 L0,6", ...ink }));
      if (s.pattern === "vertical") p.append(svg("path", { d: "M3,0 L3,6", ...ink }));
      return p;
    }),
  );
}

export function marker(kind, x, y, colour, size = 4) {
  const common = { fill: colour, stroke: "#fff", "stroke-width": 1 };
  if (kind === "square") return svg("rect", { x: x - size, y: y - size, width: 2 * size, height: 2 * size, ...common });
  if (kind === "triangle") return svg("path", { d: `M${x},${y - size - 1} L${x + size + 1},${y + size} L${x - size - 1},${y + size} Z`, ...common });
  if (kind === "diamond") return svg("path", { d: `M${x},${y - size - 1} L${x + size + 1},${y} L${x},${y + size + 1} L${x - size - 1},${y} Z`, ...common });
  if (kind === "cross") return svg("path", { d: `M${x - size},${y - size} L${x + size},${y + size} M${x + size},${y - size} L${x - size},${y + size}`, stroke: colour, "stroke-width": 2.5 });
  return svg("circle", { cx: x, cy: y, r: size, ...common });
}

function legendSwatch(i, kind) {
  const s = styleOf(i);
  const box = svg("svg", { width: 30, height: 14, viewBox: "0 0 30 14", "aria-hidden": "true", class: "swatch" });
  if (kind === "bar") {
    box.append(defs(`lg${i}-${++chartCount}`));
    box.append(svg("rect", { x: 4, y: 1, width: 22, height: 12, fill: `url(#lg${i}-${chartCount}-p${i})`, stroke: s.colour }));
  } else {
    box.append(svg("line", { x1: 1, y1: 7, x2: 29, y2: 7, stroke: s.colour, "stroke-width": 2, "stroke-dasharray": s.dash }));
    box.append(marker(s.marker, 15, 7, s.colour));
  }
  return box;
}

function legend(series, kind) {
  return el(
    "ul",
    { class: "legend" },
    series.map((s, i) => el("li", { "data-series": s.name }, legendSwatch(i, kind), s.name)),
  );
}

// The chart's numbers as a table: the text alternative, folded under the chart.
function dataTable(spec) {
  const head = [spec.xLabel || "", ...spec.series.map((s) => s.name)];
  const body = (spec.xTable || spec.x).map((x, i) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, spec.xLink ? el("a", { href: spec.xLink(i), text: x }) : x),
      spec.series.map((s) => el("td", { class: "num", text: s.values[i] === null || s.values[i] === undefined ? "—" : (spec.format || String)(s.values[i]) })),
    ),
  );
  return el(
    "details",
    { class: "chart-data" },
    el("summary", { text: "Data as a table" }),
    el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, body))),
  );
}

function frame(spec, width, height) {
  const id = `chart-${++chartCount}`;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": `${id}-t ${id}-d`,
    class: "chart-svg",
    "data-chart": spec.kind,
  });
  root.append(svg("title", { id: `${id}-t` }, spec.title), svg("desc", { id: `${id}-d` }, spec.desc || ""), defs(id));
  return { root, id };
}

// The value axis: gridlines and labels from 0 (or the lowest value) to the highest.
function yAxis(root, values, box, format) {
  const finite = values.filter((v) => Number.isFinite(v));
  let lo = Math.min(0, ...finite);
  let hi = Math.max(0, ...finite);
  if (hi === lo) hi = lo + 1;
  const step = niceStep(hi - lo, box.h < 150 ? 3 : 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const y = (v) => box.y + box.h - ((v - lo) / (hi - lo)) * box.h;
  for (let v = lo; v <= hi + step / 2; v += step) {
    root.append(svg("line", { x1: box.x, x2: box.x + box.w, y1: y(v), y2: y(v), class: v === 0 ? "axis" : "grid" }));
    root.append(svg("text", { x: box.x - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, (format || shortNumber)(v)));
  }
  return y;
}

// The run or category labels under the axis: as many as fit without overlapping (always
// the last), each kept inside the chart.
function xLabels(root, labels, xOf, box, spacing, width) {
  const widthOf = (t) => String(t).length * 7 + 12; // 11 px system font, at most
  const widest = Math.max(...labels.map(widthOf));
  const every = Math.max(1, Math.ceil(widest / Math.max(1, spacing)));
  const last = labels.length - 1;
  const shown = labels.map((_, i) => i).filter((i) => i % every === 0);
  if (shown[shown.length - 1] !== last) {
    if (shown.length && xOf(last) - xOf(shown[shown.length - 1]) < widest) shown.pop();
    shown.push(last);
  }
  for (const i of shown) {
    const w = widthOf(labels[i]);
    const left = Math.min(Math.max(2, xOf(i) - w / 2), width - w - 2);
    root.append(svg("text", { x: (left + 5).toFixed(1), y: box.y + box.h + 16, class: "tick" }, labels[i]));
  }
}

// Marks on the x axis (e.g. schema drift): a dashed rule and a labelled triangle.
function xMarks(root, marks, xOf, box) {
  for (const m of marks || []) {
    const x = xOf(m.index);
    root.append(svg("line", { x1: x, x2: x, y1: box.y, y2: box.y + box.h, class: "mark-line" }));
    const flag = svg("g", { class: "mark", "data-mark": m.index }, svg("title", {}, m.text), svg("path", { d: `M${x - 5},${box.y - 9} L${x + 5},${box.y - 9} L${x},${box.y - 1} Z` }), svg("text", { x: x + 7, y: box.y - 2, class: "mark-text" }, m.label));
    root.append(flag);
  }
}

function sized(spec) {
  const width = Math.max(300, Math.min(760, Math.round(spec.width || 640)));
  const height = spec.height || (width < 480 ? 220 : 260);
  const box = { x: 52, y: 18, w: width - 52 - 14, h: height - 18 - 30 };
  return { width, height, box };
}

// spec: {title, desc, x: [labels], series: [{name, values}], format, xLabel, marks, width;
// xTable: longer labels for the data table, xLink(i): a link for its row}
export function lineChart(spec) {
  const { width, height, box } = sized(spec);
  const { root } = frame({ ...spec, kind: "line" }, width, height);
  const y = yAxis(root, spec.series.flatMap((s) => s.values), box, spec.format);
  const n = spec.x.length;
  const xOf = (i) => box.x + (n <= 1 ? box.w / 2 : (i / (n - 1)) * box.w);
  xMarks(root, spec.marks, xOf, box);
  spec.series.forEach((s, k) => {
    const st = styleOf(k);
    const group = svg("g", { class: "series", "data-series": s.name });
    let path = "";
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      path += `${path && Number.isFinite(s.values[i - 1]) ? "L" : "M"}${xOf(i).toFixed(1)},${y(v).toFixed(1)} `;
    });
    group.append(svg("path", { d: path.trim(), fill: "none", stroke: st.colour, "stroke-width": 2, "stroke-dasharray": st.dash }));
    s.values.forEach((v, i) => {
      if (Number.isFinite(v)) group.append(svg("g", { class: "point" }, svg("title", {}, `${s.name}, ${spec.x[i]}: ${(spec.format || String)(v)}`), marker(st.marker, xOf(i), y(v), st.colour, n > 40 ? 2.5 : 3.5)));
    });
    root.append(group);
  });
  xLabels(root, spec.x, xOf, box, n <= 1 ? box.w : box.w / (n - 1), width);
  return figure(spec, root, "line");
}

// spec as lineChart's, plus stacked: true to stack the series on one bar per x.
export function barChart(spec) {
  const { width, height, box } = sized(spec);
  const { root, id } = frame({ ...spec, kind: "bar" }, width, height);
  const totals = spec.x.map((_, i) => spec.series.reduce((t, s) => t + (Number.isFinite(s.values[i]) ? s.values[i] : 0), 0));
  const y = yAxis(root, spec.stacked ? totals : spec.series.flatMap((s) => s.values), box, spec.format);
  const n = spec.x.length;
  const slot = box.w / Math.max(1, n);
  const groups = spec.stacked ? 1 : spec.series.length;
  const barW = Math.max(2, (slot * 0.75) / groups);
  const xOf = (i) => box.x + slot * (i + 0.5);
  xMarks(root, spec.marks, xOf, box);
  spec.series.forEach((s, k) => {
    const group = svg("g", { class: "series", "data-series": s.name });
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      const below = spec.stacked ? spec.series.slice(0, k).reduce((t, o) => t + (Number.isFinite(o.values[i]) ? o.values[i] : 0), 0) : 0;
      const left = spec.stacked ? xOf(i) - barW / 2 : xOf(i) - (slot * 0.75) / 2 + k * barW;
      const top = y(below + Math.max(0, v));
      const bottom = y(below + Math.min(0, v));
      group.append(svg("rect", { x: left.toFixed(1), y: top.toFixed(1), width: Math.max(1, barW - 1).toFixed(1), height: Math.max(0.5, bottom - top).toFixed(1), fill: `url(#${id}-p${k % SERIES.length})`, stroke: styleOf(k).colour }, svg("title", {}, `${s.name}, ${spec.x[i]}: ${(spec.format || String)(v)}`)));
    });
    root.append(group);
  });
  xLabels(root, spec.x, xOf, box, slot, width);
  return figure(spec, root, "bar");
}

function figure(spec, root, kind) {
  return el(
    "figure",
    { class: "chart", "data-chart": spec.title },
    el("figcaption", { text: spec.title }),
    root,
    spec.series.length > 1 || spec.legend ? legend(spec.series, kind) : null,
    dataTable(spec),
  );
}

// A small trend line (one series): an aria-label says what it shows in words.
export function sparkline(values, label, { width = 120, height = 28, max } = {}) {
  const finite = values.filter((v) => Number.isFinite(v));
  const top = max ?? Math.max(...finite, 0);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label, class: "sparkline" });
  root.append(svg("title", {}, label));
  const n = values.length;
  const xOf = (i) => 3 + (n <= 1 ? (width - 6) / 2 : (i / (n - 1)) * (width - 6));
  const yOf = (v) => height - 3 - (top ? (v / top) * (height - 6) : 0);
  root.append(svg("line", { x1: 0, x2: width, y1: height - 3, y2: height - 3, class: "axis" }));
  let path = "";
  values.forEach((v, i) => {
    if (Number.isFinite(v)) path += `${path ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)} `;
  });
  root.append(svg("path", { d: path.trim(), fill: "none", stroke: SERIES[0].colour, "stroke-width": 1.5 }));
  const last = values.length - 1;
  if (Number.isFinite(values[last])) root.append(marker("circle", xOf(last), yOf(values[last]), SERIES[1].colour, 2.5));
  return root;
}
