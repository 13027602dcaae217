// Small DOM helpers. Text always goes in as text (textContent), never as markup: agent
// answers, topics and error details are untrusted.

/** h("div", {class: "x", onclick: fn}, "text", child, [more]) -> element */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (presentation attributes, not inline styles). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function badge(text, kind = text) {
  return h("span", { class: `badge ${kind}` }, text);
}

let ids = 0;
/** A unique id for label/control pairs. */
export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** <label for=…>Text</label><control id=…>: the control is named by its label alone. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = uid("field");
  const box = h("div", { class: "field" }, h("label", { for: control.id }, labelText), control);
  if (hint) {
    const id = uid("hint");
    control.setAttribute("aria-describedby", id);
    box.append(h("p", { class: "hint", id }, hint));
  }
  return box;
}

/** A time as the reader's locale shows it: ISO text, or Unix seconds. */
export function when(iso) {
  if (!iso) return "";
  const date = new Date(typeof iso === "number" ? iso * 1000 : iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function money(usd) {
  const value = Number(usd || 0);
  return `$${value.toFixed(value >= 1 ? 2 : 6)}`;
}

export function pct(share) {
  return share === null || share === undefined ? "–" : `${Math.round(Number(share) * 100)}%`;
}

/** A table from rows of objects: columns [{label, value: row => text|Node}]. */
export function table(columns, rows, caption) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.value(row))))),
      ),
    ),
  );
}

/** Copy text to the clipboard; falls back to selecting it for Ctrl-C. */
export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    if (button) flash(button, "Copied");
  } catch {
    if (button) flash(button, "Press Ctrl-C");
  }
}

function flash(button, text) {
  const before = button.textContent;
  button.textContent = text;
  setTimeout(() => {
    button.textContent = before;
  }, 1500);
}

/** A code block with a Copy button. */
export function codeBox(text, label) {
  const button = h("button", { type: "button", "aria-label": `Copy ${label}` }, "Copy");
  button.addEventListener("click", () => copyText(text, button));
  return h("div", { class: "codebox" }, button, h("pre", {}, h("code", {}, text)));
}
