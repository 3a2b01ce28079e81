// "open in Jaeger" beside a trace link, when the server names a Jaeger UI (serve
// --jaeger-ui-url): a link to URL/trace/<trace id>, drawn at once and shown once the
// setting is known, so no page waits on it.

import { api } from "./util.js";

let settings = null;

function dashboardSettings() {
  if (!settings) settings = api("/api/dashboard-settings").catch(() => ({ jaeger_ui_url: null }));
  return settings;
}

export function jaegerLink(traceId) {
  const link = document.createElement("a");
  link.className = "jaeger-link";
  link.hidden = true;
  link.textContent = "open in Jaeger";
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  dashboardSettings().then(({ jaeger_ui_url: base }) => {
    if (!base || !traceId) return;
    link.href = `${base}/trace/${encodeURIComponent(traceId)}`;
    link.hidden = false;
  });
  return link;
}
