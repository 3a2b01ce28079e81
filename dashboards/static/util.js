// tracebaton dashboard: DOM and data helpers shared by the pages.
//
// Everything shown comes from spans, which are untrusted: pages build DOM nodes and set text
// with textContent (h() and s() below), never innerHTML, so a span named "<img onerror=…>" is
// text. The server's Content-Security-Policy forbids inline script as a second guard.

// ---- DOM helpers -------------------------------------------------------------------------

/** An element; string and number children become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, same rules as h(). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") {
      // Through the CSSOM, which the Content-Security-Policy allows (a style attribute it blocks).
      for (const rule of String(value).split(";")) {
        const at = rule.indexOf(":");
        if (at > 0) el.style.setProperty(rule.slice(0, at).trim(), rule.slice(at + 1).trim());
      }
    }
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// ---- data helpers --------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export async function api(path) {
  const response = await fetch(path, { headers: { accept: "application/json" }, credentials: "same-origin" });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) throw new ApiError(response.status, (body && body.detail) || response.statusText);
  return body;
}

/** Nanoseconds arrive as decimal strings (they exceed 2^53): differences as Numbers. */
export function nsBetween(later, earlier) {
  return Number(BigInt(later) - BigInt(earlier));
}

export function formatDuration(ns) {
  if (ns === null || ns === undefined || Number.isNaN(ns)) return "–";
  const abs = Math.abs(ns);
  if (abs >= 1e9) return `${(ns / 1e9).toPrecision(3)} s`;
  if (abs >= 1e6) return `${(ns / 1e6).toPrecision(3)} ms`;
  if (abs >= 1e3) return `${(ns / 1e3).toPrecision(3)} µs`;
  return `${ns} ns`;
}

export function formatWhen(unixNano) {
  if (!unixNano) return "–";
  const ms = Number(BigInt(unixNano) / 1000000n);
  const date = new Date(ms);
  const ago = Date.now() - ms;
  let relative;
  if (ago < 60e3) relative = `${Math.max(0, Math.round(ago / 1e3))} s ago`;
  else if (ago < 3600e3) relative = `${Math.round(ago / 60e3)} min ago`;
  else if (ago < 86400e3) relative = `${Math.round(ago / 3600e3)} h ago`;
  else relative = date.toLocaleDateString();
  return relative;
}

export function isoTime(unixNano) {
  if (!unixNano) return "";
  return new Date(Number(BigInt(unixNano) / 1000000n)).toISOString();
}

/** A stable colour per service name. */
export function serviceColor(name) {
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360}, 55%, 48%)`;
}

export function verdictBadge(passed, pending = false) {
  if (pending) return h("span", { class: "badge pending" }, "pending");
  return passed ? h("span", { class: "badge pass" }, "passed") : h("span", { class: "badge fail" }, "FAILED");
}

export function globToRegExp(glob) {
  const escaped = String(glob).replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${escaped}$`);
}

export function showError(root, error) {
  root.replaceChildren(h("div", { class: "error-box", role: "alert" },
    error instanceof ApiError ? `${error.status}: ${error.message}` : `The page failed: ${error}`));
}

/** Go to a dashboard path without a reload; app.js draws the page. */
export function navigate(target) {
  history.pushState(null, "", target);
  window.dispatchEvent(new Event("tb:navigate"));
  window.scrollTo(0, 0);
}
