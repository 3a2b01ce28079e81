// "open in Jaeger" beside a trace link, when the server names a Jaeger UI (serve
// --jaeger-ui-url): a link to URL/trace/<trace id>, its slot drawn at once and filled once
// the setting is known, so no page waits on it.

import { api } from "./util.js";

let settings = null;

function dashboardSettings() {
  if (!settings) settings = api("/api/dashboard-settings").catch(() => ({ jaeger_ui_url: null }));
  return settings;
}

/** A slot that holds the link once the setting is known, and stays empty without one. */
export function jaegerLink(traceId) {
  const slot = document.createElement("span");
  slot.className = "jaeger-slot";
  dashboardSettings().then(({ jaeger_ui_url: base }) => {
    if (!base || !traceId) return;
    const link = document.createElement("a");
    link.className = "jaeger-link";
    link.textContent = "open in Jaeger";
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.href = `${base}/trace/${encodeURIComponent(traceId)}`;
    slot.append(link);
  });
  return slot;
}
