// Small DOM helpers: element creation, tables, status messages and number formats.

/**
 * Creates an element. `attrs` keys: `class`, `text`, `on<event>` handlers,
 * boolean attributes (true/false), `dataset`, anything else as an attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A panel: a labelled region with a heading. */
export function panel(id, title, ...children) {
  const headingId = `${id}-title`;
  return h(
    "section",
    { class: "panel", id, "aria-labelledby": headingId },
    h("h2", { id: headingId, text: title }),
    ...children,
  );
}

/** A table with a caption and a header row; returns {table, body}. */
export function table(caption, columns, { hideCaption = true } = {}) {
  const body = h("tbody");
  const table = h(
    "table",
    {},
    h("caption", { class: hideCaption ? "visually-hidden" : "", text: caption }),
    h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col", text: name })))),
    body,
  );
  return { table, body };
}

/** A row saying the table is empty (or why it has nothing). */
export function emptyRow(columns, text) {
  return h("tr", { class: "empty" }, h("td", { colspan: columns, text }));
}

/** A labelled form control: <label> wrapping its text and the control. */
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { text: label }), control, hint ?? null);
}

export function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([optionValue, text]) =>
      h("option", { value: optionValue, text, selected: optionValue === value }),
    ),
  );
}

/** A message line (role=status) whose text and tone can change. */
export function statusLine(initial = "") {
  const node = h("p", { class: "status-line", role: "status", text: initial });
  return {
    node,
    set(text, tone = "info") {
      node.textContent = text;
      node.dataset.tone = tone;
    },
  };
}

const PRICE_FORMATS = new Map();

/** A price with decimals that suit its size (4 significant decimals under 1). */
export function formatPrice(value) {
  if (value === null || value === undefined || value === "") return "—";
  const number = Number(value);
  if (!Number.isFinite(number)) return String(value);
  const magnitude = Math.abs(number);
  const digits = magnitude >= 1000 ? 2 : magnitude >= 1 ? 4 : 6;
  if (!PRICE_FORMATS.has(digits)) {
    PRICE_FORMATS.set(
      digits,
      new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: digits }),
    );
  }
  return PRICE_FORMATS.get(digits).format(number);
}

const MONEY = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Money (a decimal string from the API) with two decimals and thousands separators. */
export function formatMoney(value) {
  if (value === null || value === undefined || value === "") return "—";
  const number = Number(value);
  return Number.isFinite(number) ? MONEY.format(number) : String(value);
}

/** A decimal string without trailing zeros ("0.0100" -> "0.01"). */
export function formatQty(value) {
  if (value === null || value === undefined || value === "") return "—";
  const text = String(value);
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

/** Positive/negative tone for P&L cells. */
export function signTone(value) {
  const number = Number(value);
  if (!Number.isFinite(number) || number === 0) return "";
  return number > 0 ? "up" : "down";
}

/** Local time of day from an ISO 8601 time (UTC on the wire). */
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleTimeString([], { hour12: false });
}

export function formatDateTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}
