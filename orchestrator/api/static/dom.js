// Small DOM builders shared by the pages. Text always goes through textContent.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const LAYERS = ["bronze", "silver", "gold"];

export function badge(status) {
  const text = status || "—";
  return el("span", { class: `badge s-${text.toLowerCase()}`, text, "data-status": text });
}

export function count(value) {
  return value === undefined || value === null ? "—" : Number(value).toLocaleString("en-US");
}

export function seconds(started, finished) {
  if (!started) return "—";
  const end = finished ? Date.parse(finished) : Date.now();
  const s = Math.max(0, (end - Date.parse(started)) / 1000);
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function alertBox(message) {
  return el("p", { class: "error", role: "alert", text: message });
}

// A table of plain rows (objects): columns from the first row unless given.
export function dataTable(rows, { columns, caption, numeric = [] } = {}) {
  const cols = columns || (rows.length ? Object.keys(rows[0]) : []);
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      {},
      caption ? el("caption", { text: caption }) : null,
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col", text: c })))),
      el(
        "tbody",
        {},
        rows.map((row) =>
          el(
            "tr",
            {},
            cols.map((c) => {
              const v = row[c];
              const text = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
              const isNum = numeric.includes(c) || typeof v === "number";
              return el("td", { class: isNum ? "num" : null, text });
            }),
          ),
        ),
      ),
    ),
  );
}

// Steps of an execution by layer, whatever order or shape the API sends them in.
export function stepsByLayer(execution) {
  const steps = {};
  const list = execution ? execution.steps || [] : [];
  for (const step of list) steps[step.layer] = step;
  return steps;
}

export const ACTIVE = new Set(["PENDING", "RUNNING"]); // the execution statuses still going

export function isActive(execution) {
  return Boolean(execution) && ACTIVE.has(execution.status);
}
