// The HTTP API as the UI uses it: every request carries the bearer token from localStorage,
// every non-2xx answer becomes an ApiError with the API's own message.

const TOKEN_KEY = "flowforge.token";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The API answers every error as {"error": {status, code, message}}; anything else (a
// proxy's page) is shown as text.
function messageOf(status, body) {
  if (body && typeof body === "object" && typeof body.error?.message === "string") return body.error.message;
  if (typeof body === "string" && body) return body.slice(0, 300);
  return `HTTP ${status}`;
}

export async function request(path, { method = "GET", json, form, query } = {}) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser sets the multipart boundary
  }
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, `The API cannot be reached (${err.message}).`);
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    const prefix = response.status === 401 ? "Unauthorized: set the API token above. " : "";
    throw new ApiError(response.status, prefix + messageOf(response.status, data));
  }
  return data;
}

// The items of a page ({items: [...], ...}: executions, logs, previews).
export function itemsOf(data) {
  return data && Array.isArray(data.items) ? data.items : [];
}

const enc = encodeURIComponent;

export const api = {
  workflows: () => request("/api/workflows"),
  jobs: () => request("/api/jobs"),
  execution: (id) => request(`/api/executions/${enc(id)}`),
  executions: (query) => request("/api/executions", { query }),
  trigger: (workflowId, jobId, fromLayer, fullRefresh) =>
    request(`/api/workflows/${enc(workflowId)}/jobs/${enc(jobId)}/executions`, {
      method: "POST",
      json: { from_layer: fromLayer, full_refresh: fullRefresh },
    }),
  cancel: (id) => request(`/api/executions/${enc(id)}/cancel`, { method: "POST" }),
  runWorkflow: (workflowId) => request(`/api/workflows/${enc(workflowId)}/executions`, { method: "POST", json: {} }),
  workflowRuns: (workflowId, limit) => request(`/api/workflows/${enc(workflowId)}/executions`, { query: { limit } }),
  workflowRun: (id) => request(`/api/workflow-executions/${enc(id)}`),
  cancelWorkflowRun: (id) => request(`/api/workflow-executions/${enc(id)}/cancel`, { method: "POST" }),
  workflowModelPreview: (id, model, limit) =>
    request(`/api/workflow-executions/${enc(id)}/models/${enc(model)}/preview`, { query: { limit } }),
  upload: (workflowId, jobId, files) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    return request(`/api/workflows/${enc(workflowId)}/jobs/${enc(jobId)}/files`, {
      method: "POST",
      form,
    });
  },
  job: (workflowId, jobId) => request(`/api/workflows/${enc(workflowId)}/jobs/${enc(jobId)}`),
  // {cron, timezone, paused, next_run_at, registered, error}: the job's schedule after it.
  workflow: (workflowId) => request(`/api/workflows/${enc(workflowId)}`),
  pauseWorkflowSchedule: (workflowId, paused) =>
    request(`/api/workflows/${enc(workflowId)}/schedule/${paused ? "pause" : "resume"}`, { method: "POST" }),
  pauseSchedule: (workflowId, jobId, paused) =>
    request(`/api/workflows/${enc(workflowId)}/jobs/${enc(jobId)}/schedule/${paused ? "pause" : "resume"}`, { method: "POST" }),
  landingFiles: (workflowId, jobId) => request(`/api/workflows/${enc(workflowId)}/jobs/${enc(jobId)}/files`),
  deleteLandingFile: (workflowId, jobId, name) =>
    request(`/api/workflows/${enc(workflowId)}/jobs/${enc(jobId)}/files/${enc(name)}`, { method: "DELETE" }),
  deleteWorkflow: (workflowId, data) => request(`/api/workflows/${enc(workflowId)}`, { method: "DELETE", query: { data } }),
  dimensions: () => request("/api/dimensions"),
  deleteDimension: (name) => request(`/api/dimensions/${enc(name)}`, { method: "DELETE" }),
  logs: (id, offset, limit) =>
    request(`/api/executions/${enc(id)}/logs`, { query: { offset, limit } }),
  // {items: [{name, key, rows, columns, preview: [row, ...]}], current}: the job's committed
  // gold models, or the rows a step set aside (silver quarantine, bronze rejects).
  goldPreviews: (id, limit) => request(`/api/executions/${enc(id)}/gold`, { query: { limit } }),
  quarantine: (id, layer, limit) =>
    request(`/api/executions/${enc(id)}/quarantine`, { query: { layer, limit } }),
};

// Live updates: Server-Sent Events when they work, polling when they do not.
// onChange(event) is called for each event (or each poll tick, with null).
export function subscribe(onChange, { pollMs = 2000 } = {}) {
  let source = null;
  let timer = null;
  let closed = false;
  const poll = () => {
    if (timer || closed) return;
    timer = setInterval(() => onChange(null), pollMs);
  };
  if (typeof EventSource === "function") {
    const token = getToken();
    // EventSource cannot send headers: the API takes the token as ?access_token= here.
    const url = token ? `/api/events?access_token=${enc(token)}` : "/api/events";
    source = new EventSource(url);
    const handle = (message) => {
      let data = null;
      try {
        data = JSON.parse(message.data);
      } catch {
        data = null;
      }
      onChange(data);
    };
    // The two events the stream sends (orchestrator/api/events.py); it sends no unnamed ones.
    for (const name of ["execution", "step"]) source.addEventListener(name, handle);
    source.onerror = () => {
      // The browser retries on its own while the stream is reachable; a stream that is
      // refused (401, 404) closes: from then on, poll.
      if (source.readyState === EventSource.CLOSED) poll();
    };
  } else {
    poll();
  }
  return {
    get live() {
      return source !== null && source.readyState === EventSource.OPEN;
    },
    close() {
      closed = true;
      if (source) source.close();
      if (timer) clearInterval(timer);
    },
  };
}
