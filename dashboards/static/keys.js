// Keyboard navigation: j/k or the arrow keys move a selection, Enter opens it, Esc closes,
// ? lists the keys. One listener for the document; each page says what its keys do with
// setPageKeys, and the router clears it when the page goes.

import { h, navigate } from "./util.js";

let pageKeys = null;

/** `keys`: { help: [[keys, what], …], handle(event) -> true when it took the key }. */
export function setPageKeys(keys) {
  pageKeys = keys;
}

const GLOBAL_HELP = [["?", "show or hide these keys"], ["g f / g t / g m", "go to Flows, Traces, Map"]];
let pendingG = false;

function typing(event) {
  const target = event.target;
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName));
}

function helpDialog() {
  let dialog = document.getElementById("keys-help");
  if (!dialog) {
    dialog = h("dialog", { id: "keys-help", "aria-labelledby": "keys-help-title" });
    document.body.append(dialog);
  }
  const rows = [...(pageKeys ? pageKeys.help : []), ...GLOBAL_HELP];
  dialog.replaceChildren(
    h("h2", { id: "keys-help-title" }, "Keyboard"),
    h("table", { class: "kv" }, h("tbody", {}, rows.map(([keys, what]) => h("tr", {}, h("td", {}, h("kbd", {}, keys)), h("td", {}, what))))),
    h("form", { method: "dialog" }, h("button", { type: "submit" }, "Close (Esc)")));
  return dialog;
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
  const open = document.getElementById("keys-help");
  if (open && open.open) return;  // the dialog takes its own keys (Esc closes it)
  if (event.key === "?") {
    event.preventDefault();
    helpDialog().showModal();
    return;
  }
  if (pendingG) {
    pendingG = false;
    const target = { f: "/flows", t: "/traces", m: "/map" }[event.key];
    if (target) { event.preventDefault(); navigate(target); return; }
  }
  if (event.key === "g") { pendingG = true; return; }
  if (pageKeys && pageKeys.handle(event)) event.preventDefault();
});

const DOWN = new Set(["j", "ArrowDown"]);
const UP = new Set(["k", "ArrowUp"]);

/** The selection of a table's rows: j/k/arrows move it, Enter opens the row's first link. */
export function listKeys(body, what) {
  let current = null;
  function mark(row) {
    for (const other of body.querySelectorAll("tr.kb-selected")) {
      other.classList.remove("kb-selected");
      other.removeAttribute("aria-selected");
    }
    current = row;
    if (!row) return;
    row.classList.add("kb-selected");
    row.setAttribute("aria-selected", "true");
    row.tabIndex = -1;
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }
  return {
    help: [["j / ↓", `next ${what}`], ["k / ↑", `previous ${what}`], ["Enter", `open the selected ${what}`], ["Esc", "clear the selection"]],
    handle(event) {
      const rows = [...body.children];
      if (!rows.length) return false;
      const at = current && current.isConnected ? rows.indexOf(current) : -1;
      if (DOWN.has(event.key)) { mark(rows[Math.min(rows.length - 1, at + 1)]); return true; }
      if (UP.has(event.key)) { mark(rows[Math.max(0, at - 1)]); return true; }
      if (event.key === "Escape" && current) { mark(null); return true; }
      if (event.key === "Enter" && current && current.isConnected) {
        const link = current.querySelector("a[href]");
        if (link) { navigate(link.getAttribute("href")); return true; }
      }
      return false;
    },
  };
}

/** The Flow page: j/k/arrows through the waterfall's spans, n/p through the hops, Esc closes
 * the details. `model` is the page's: rows (span id -> row), hopEls (hop -> group),
 * select(spanId), highlightHop(hop), closeDetails(). */
export function flowKeys(model) {
  let hopAt = -1;
  function step(list, at, by) {
    return list.length ? Math.max(0, Math.min(list.length - 1, at + by)) : -1;
  }
  return {
    help: [["j / ↓", "next span"], ["k / ↑", "previous span"], ["n / →", "next hop"], ["p / ←", "previous hop"],
      ["Esc", "close the span's details"]],
    handle(event) {
      const spans = [...model.rows.entries()].filter(([, row]) => row.isConnected).map(([id]) => id);
      const hops = [...model.hopEls.keys()].filter((hop) => hop.caller_span_id || hop.callee_span_id);
      const spanAt = spans.indexOf(model.selected);
      let by = 0;
      if (DOWN.has(event.key)) by = 1;
      else if (UP.has(event.key)) by = -1;
      if (by) {
        const next = step(spans, spanAt, by);
        if (next < 0) return false;
        model.select(spans[next]);
        model.rows.get(spans[next]).focus({ preventScroll: true });
        return true;
      }
      if (event.key === "n" || event.key === "ArrowRight") by = 1;
      else if (event.key === "p" || event.key === "ArrowLeft") by = -1;
      if (by) {
        const known = hops.findIndex((hop) => model.hopEls.get(hop).classList.contains("selected"));
        hopAt = step(hops, known >= 0 ? known : hopAt, by);
        if (hopAt < 0) return false;
        model.highlightHop(hops[hopAt]);
        model.hopEls.get(hops[hopAt]).focus({ preventScroll: true });
        return true;
      }
      if (event.key === "Escape" && model.selected) { model.closeDetails(); return true; }
      return false;
    },
  };
}
