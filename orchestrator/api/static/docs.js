// Swagger UI for the API's OpenAPI document (/docs). Every request it makes, the document
// itself and "Try it out", carries the bearer token the web UI saved (see api.js); with no
// token saved, requests go out as they are.
import { getToken } from "./api.js";

function withToken(request) {
  const token = getToken();
  request.headers = request.headers || {};
  if (token && !request.headers.Authorization) {
    request.headers.Authorization = `Bearer ${token}`;
  }
  return request;
}

// Module scripts run after the deferred swagger-ui-bundle.js (document order).
window.ui = window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  presets: [window.SwaggerUIBundle.presets.apis],
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null, // the default validator is a remote service
  requestInterceptor: withToken,
});
