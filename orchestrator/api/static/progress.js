// A step's progress bar: percent, rows and time left as the layer last reported them
// (Step.progress in the API). A run that was cancelled or failed keeps its bar where it
// stopped, greyed, with the state in words.

import { count, el } from "./dom.js";

const ENDED = new Set(["CANCELLED", "FAILED", "CRASHED"]);

function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return null;
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function megabytes(n) {
  return `${(n / 1e6).toLocaleString("en-US", { maximumFractionDigits: 1 })} MB`;
}

function of(done, total, noun) {
  if (!Number.isFinite(done)) return null;
  return Number.isFinite(total) ? `${count(done)} of ${count(total)} ${noun}` : `${count(done)} ${noun}`;
}

// The words beside the bar, each part only when the layer reported it.
export function progressText(p, percent) {
  return [
    percent === null ? null : `${percent} %`,
    Number.isFinite(p.rows) ? `${count(p.rows)} rows` : null,
    Number.isFinite(p.bytes_read) ? (Number.isFinite(p.bytes_total) ? `${megabytes(p.bytes_read)} of ${megabytes(p.bytes_total)}` : megabytes(p.bytes_read)) : null,
    of(p.files_done, p.files_total, "files"),
    of(p.models_done, p.models_total, "models"),
  ].filter(Boolean);
}

// null when there is nothing to draw: no report, or the step completed (its counts tell).
export function progressView(step, executionStatus) {
  const p = step && step.progress;
  if (!p || step.status === "COMPLETED" || step.status === "SKIPPED") return null;
  const stoppedAs = ENDED.has(executionStatus) ? executionStatus : step.status === "FAILED" ? "FAILED" : null;
  const fraction = Number.isFinite(p.fraction) ? Math.min(1, Math.max(0, p.fraction)) : null;
  const percent = fraction === null ? null : Math.floor(fraction * 100);
  let words;
  if (stoppedAs) {
    const counts = progressText(p, null);
    words = `${stoppedAs.toLowerCase()}${percent === null ? "" : ` at ${percent} %`}`;
    if (counts.length) words += ` (${counts.join(" · ")})`;
  } else {
    const parts = progressText(p, percent);
    const left = duration(p.eta_seconds);
    if (left) parts.push(`about ${left} left`);
    words = `${p.phase || "working"}${parts.length ? ": " : ""}${parts.join(" · ")}`;
  }
  const bar = el("progress", {
    max: 100,
    // A stopped bar of unknown extent shows empty, not the moving "working" stripe.
    value: percent === null ? (stoppedAs ? 0 : undefined) : percent,
    "aria-label": `${step.layer} progress`,
    "aria-valuetext": words,
  });
  return el(
    "div",
    { class: `progress ${stoppedAs ? "stopped" : "moving"}`, "data-progress": stoppedAs ? "stopped" : "running", "data-layer": step.layer },
    bar,
    el("span", { class: "progress-text", text: words }),
  );
}
