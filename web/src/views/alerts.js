// Price alerts: create, list and delete them, and watch them fire on the `alerts` channel.

import {
  emptyRow,
  field,
  formatDateTime,
  formatPrice,
  formatTime,
  h,
  panel,
  select,
  statusLine,
  table,
} from "../dom.js";

const COLUMNS = ["Name", "Symbol", "Rule", "Mode", "Active", "Fired", "Last fired", ""];
const CONDITIONS = [
  ["above", "Price at or above"],
  ["below", "Price at or below"],
  ["crossing", "Price crossing"],
  ["percent_move", "Percent move within a window"],
];
const FEED_LENGTH = 30;
const RELOAD_AFTER_FIRING_MS = 1_500;

function ruleText(alert) {
  if (alert.condition === "percent_move") {
    return `moves ${alert.percent}% within ${alert.window_seconds} s`;
  }
  return `${alert.condition} ${formatPrice(alert.level)}`;
}

export function alertsView(ctx) {
  const symbol = select("alert_symbol", ctx.symbols.map((s) => [s.ticker, s.ticker]), ctx.symbols[0]?.ticker);
  const condition = select("condition", CONDITIONS, "above");
  const level = h("input", { name: "level", type: "text", inputmode: "decimal", autocomplete: "off" });
  const percent = h("input", { name: "percent", type: "text", inputmode: "decimal", value: "1" });
  const windowSeconds = h("input", { name: "window_seconds", type: "text", inputmode: "numeric", value: "300" });
  const mode = select("mode", [
    ["once", "Once"],
    ["repeating", "Repeating"],
  ]);
  const cooldown = h("input", { name: "cooldown_seconds", type: "text", inputmode: "numeric", value: "0" });
  const name = h("input", { name: "alert_name", type: "text", maxlength: 100 });
  const create = h("button", { type: "submit", class: "primary", text: "Create alert" });
  const status = statusLine("");
  const levelField = field("Level", level, h("small", { class: "hint", text: "" }));
  const percentField = field("Percent", percent);
  const windowField = field("Window (seconds)", windowSeconds);
  const cooldownField = field("Cooldown (seconds)", cooldown);
  const { table: listTable, body: listBody } = table("Alerts", COLUMNS);
  const feed = h("ol", { class: "feed", "aria-label": "Alert feed", "aria-live": "polite" });
  const seen = new Set();
  let alerts = [];
  const canWrite = ctx.can("trader");

  function showFields() {
    const isMove = condition.value === "percent_move";
    levelField.hidden = isMove;
    percentField.hidden = windowField.hidden = !isMove;
    cooldownField.hidden = mode.value !== "repeating";
  }

  function showLastPrice() {
    const price = ctx.prices.get(symbol.value);
    levelField.querySelector(".hint").textContent = price ? `last ${formatPrice(price)}` : "";
    level.placeholder = price ? String(price) : "";
  }

  function request() {
    const body = { symbol: symbol.value, condition: condition.value, mode: mode.value, name: name.value.trim() };
    if (condition.value === "percent_move") {
      body.percent = Number(percent.value);
      body.window_seconds = Number(windowSeconds.value);
    } else {
      body.level = Number(level.value);
    }
    if (mode.value === "repeating") body.cooldown_seconds = Number(cooldown.value || 0);
    return body;
  }

  async function remove(alert) {
    try {
      await ctx.api.delete(`/api/v1/alerts/${alert.id}`);
      status.set(`Alert ${alert.name || alert.id} deleted.`, "ok");
      load();
    } catch (error) {
      status.set(`Could not delete the alert: ${error.message}`, "error");
    }
  }

  function row(alert) {
    const label = alert.name || `${alert.symbol} ${ruleText(alert)}`;
    return h(
      "tr",
      { dataset: { alertId: alert.id } },
      h("th", { scope: "row", text: label }),
      h("td", { text: alert.symbol }),
      h("td", { text: ruleText(alert) }),
      h("td", { text: alert.mode }),
      h("td", { text: alert.active ? "yes" : "no" }),
      h("td", { class: "num", text: String(alert.trigger_count) }),
      h("td", { class: "time", text: formatDateTime(alert.last_triggered_at) }),
      h(
        "td",
        {},
        canWrite
          ? h("button", { type: "button", class: "small", text: "Delete", "aria-label": `Delete alert ${label}`, onclick: () => remove(alert) })
          : "",
      ),
    );
  }

  function render() {
    listBody.replaceChildren(...(alerts.length ? alerts.map(row) : [emptyRow(COLUMNS.length, "No alerts.")]));
  }

  async function load() {
    try {
      alerts = await ctx.api.get("/api/v1/alerts");
      render();
    } catch (error) {
      listBody.replaceChildren(emptyRow(COLUMNS.length, `Could not load alerts: ${error.message}`));
    }
  }

  function addToFeed(event, fresh) {
    if (seen.has(event.id)) return;
    seen.add(event.id);
    const item = h(
      "li",
      { class: fresh ? "fresh" : "" },
      h("time", { datetime: event.time, text: formatTime(event.time) }),
      " ",
      h("strong", { text: event.symbol }),
      " ",
      event.message,
    );
    if (fresh) feed.prepend(item);
    else feed.append(item);
    while (feed.children.length > FEED_LENGTH) feed.lastElementChild.remove();
    feedEmpty.hidden = feed.children.length > 0;
  }

  async function loadHistory() {
    try {
      const history = await ctx.api.get(`/api/v1/alerts/history?limit=${FEED_LENGTH}`);
      for (const event of history) {
        addToFeed({ id: event.id, time: event.fired_at, symbol: event.symbol, message: event.message }, false);
      }
    } catch (error) {
      feedEmpty.textContent = `Could not load the alert history: ${error.message}`;
    }
  }

  const form = h(
    "form",
    {
      class: "form-grid",
      "aria-label": "New alert",
      onsubmit: async (event) => {
        event.preventDefault();
        create.disabled = true;
        try {
          const alert = await ctx.api.post("/api/v1/alerts", request());
          status.set(`Alert on ${alert.symbol} created: ${ruleText(alert)}.`, "ok");
          load();
        } catch (error) {
          status.set(`Alert refused: ${error.message}`, "error");
        } finally {
          create.disabled = !canWrite;
        }
      },
    },
    field("Alert symbol", symbol),
    field("Condition", condition),
    levelField,
    percentField,
    windowField,
    field("Mode", mode),
    cooldownField,
    field("Alert name", name),
    h("div", { class: "actions" }, create),
  );
  const feedEmpty = h("p", { class: "muted", text: "No alert has fired yet." });
  condition.addEventListener("change", showFields);
  mode.addEventListener("change", showFields);
  symbol.addEventListener("change", showLastPrice);
  level.addEventListener("focus", showLastPrice);
  showFields();
  create.disabled = !canWrite;
  if (!canWrite) status.set("Your role is viewer: creating alerts needs the trader role.");

  ctx.onSymbol((selected) => {
    symbol.value = selected;
    showLastPrice();
  });
  ctx.every(2_000, showLastPrice);
  // The firing is shown at once; the stored counts follow it shortly after.
  function onFired(fired) {
    addToFeed({ id: fired.event_id, time: fired.time, symbol: fired.symbol, message: fired.message }, true);
    const alert = alerts.find((candidate) => candidate.id === fired.alert_id);
    if (alert) {
      alert.trigger_count += 1;
      alert.last_triggered_at = fired.time;
      if (fired.mode === "once") alert.active = false;
      render();
    }
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, RELOAD_AFTER_FIRING_MS);
  }
  let reloadTimer = null;
  ctx.live.on("alerts", onFired);
  ctx.live.onResync(load);
  load();
  loadHistory();
  return panel(
    "alerts",
    "Alerts",
    form,
    status.node,
    h("div", { class: "scroll short" }, listTable),
    h("h3", { text: "Alert feed" }),
    feedEmpty,
    feed,
  );
}
