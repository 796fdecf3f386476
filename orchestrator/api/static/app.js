// FlowForge web UI: hash routing (#/jobs, #/jobs/{workflow}/{job}, #/executions/{id},
// #/workflow-executions/{id}, #/dimensions), the
// token field, live updates.

import { getToken, setToken, subscribe } from "./api.js";
import { DimensionsPage } from "./dimensions.js";
import { ExecutionPage } from "./execution.js";
import { JobPage } from "./jobpage.js";
import { JobsPage } from "./jobs.js";
import { WorkflowRunPage } from "./workflowrun.js";

const root = document.getElementById("app");
const live = document.getElementById("live");
let page = null;
let events = null;
let pending = null;
let lastRefresh = 0;

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [name, ...rest] = hash.split("/");
  if (name === "executions" && rest[0]) {
    const id = decodeURIComponent(rest[0]);
    return { title: `Execution ${id}`, make: () => new ExecutionPage(root, id) };
  }
  if (name === "workflow-executions" && rest[0]) {
    const id = decodeURIComponent(rest[0]);
    return { title: `Workflow run ${id}`, make: () => new WorkflowRunPage(root, id) };
  }
  if (name === "jobs" && rest[0] && rest[1]) {
    const [workflowId, jobId] = rest.map(decodeURIComponent);
    return { title: `Job ${workflowId}/${jobId}`, make: () => new JobPage(root, workflowId, jobId) };
  }
  if (name === "dimensions") return { title: "Dimensions", make: () => new DimensionsPage(root) };
  return { title: "Jobs", make: () => new JobsPage(root) };
}

// Many events arrive during a run: refresh at most every 300 ms.
function refreshSoon() {
  if (pending) return;
  const wait = Math.max(0, 300 - (Date.now() - lastRefresh));
  pending = setTimeout(async () => {
    pending = null;
    lastRefresh = Date.now();
    if (page) await page.refresh();
  }, wait);
}

function connect() {
  if (events) events.close();
  events = subscribe(() => refreshSoon());
}

function show() {
  const target = route();
  document.title = `${target.title} · FlowForge`;
  page = target.make();
  document.querySelectorAll("[data-nav]").forEach((a) => {
    a.toggleAttribute("aria-current", location.hash.startsWith(`#/${a.dataset.nav}`) || (!location.hash && a.dataset.nav === "jobs"));
  });
  page.refresh();
}

// Events may be lost (proxy, restart) or refused: while a run is active, poll as well.
setInterval(() => {
  live.textContent = events && events.live ? "live" : "polling";
  live.className = `live ${events && events.live ? "on" : "off"}`;
  if (page && (page.anyActive || !(events && events.live))) refreshSoon();
}, 2000);

const tokenForm = document.getElementById("token-form");
const tokenInput = document.getElementById("token");
tokenInput.value = getToken();
tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  setToken(tokenInput.value.trim());
  connect();
  show();
});

window.addEventListener("hashchange", show);
connect();
show();
