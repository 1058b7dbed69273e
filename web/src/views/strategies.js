// Strategies: the stored strategy instances, start/stop, each one's own performance,
// and the live `strategies` events. Says so plainly when the server has no strategies API.

import { emptyRow, formatMoney, formatTime, h, panel, signTone, statusLine, table } from "../dom.js";

const BASE = "/api/v1/strategies";
const COLUMNS = ["Name", "Class", "Symbols", "Interval", "Mode", "State", "Return", "Total P&L", "Trades", "Win rate", "Max drawdown", ""];
const REFRESH_MS = 5_000;
const EVENTS_SHOWN = 20;

function percent(fraction, digits = 1) {
  if (fraction === null || fraction === undefined) return "—";
  const number = Number(fraction) * 100;
  return Number.isFinite(number) ? `${number.toFixed(digits)}%` : "—";
}

const TRADING_KINDS = new Set(["signal", "order"]);

function eventText(event) {
  const parts = [event.kind, event.name ?? event.strategy_id];
  if (TRADING_KINDS.has(event.kind)) {
    parts.push([event.side, event.qty, event.symbol, event.status].filter(Boolean).join(" "));
  }
  if (event.kind === "started" && event.symbols) parts.push(`${event.symbols.join(", ")} on ${event.interval} bars`);
  parts.push(event.error ?? event.reason ?? event.message);
  return parts.filter(Boolean).join(" · ");
}

export function strategiesView(ctx) {
  const { table: node, body } = table("Strategies", COLUMNS);
  const status = statusLine("");
  const unavailable = h("p", { class: "notice", hidden: true, role: "note" });
  const events = h("ol", { class: "feed", "aria-label": "Strategy events" });
  const content = h("div", {}, h("div", { class: "scroll" }, node), h("h3", { text: "Strategy events" }), events);
  const canControl = ctx.can("trader");
  let available = true;
  let loading = null;

  async function toggle(strategy, action) {
    status.set(`${action === "stop" ? "Stopping" : "Starting"} ${strategy.name}…`);
    try {
      await ctx.api.post(`${BASE}/${strategy.id}/${action}`);
      status.set(`Strategy ${strategy.name} ${action === "stop" ? "stopped" : "started"}.`, "ok");
    } catch (error) {
      status.set(`Could not ${action} ${strategy.name}: ${error.message}`, "error");
    }
    load();
  }

  function row(strategy, performance) {
    const running = strategy.state === "running";
    const action = running ? "stop" : "start";
    const button = canControl
      ? h("button", {
          type: "button",
          class: running ? "small danger" : "small",
          text: running ? "Stop" : "Start",
          "aria-label": `${running ? "Stop" : "Start"} strategy ${strategy.name}`,
          onclick: () => toggle(strategy, action),
        })
      : "";
    const perf = performance ?? {};
    return h(
      "tr",
      { dataset: { strategyId: strategy.id, state: strategy.state } },
      h("th", { scope: "row", text: strategy.name, title: strategy.last_error ?? "" }),
      h("td", { text: strategy.strategy_class }),
      h("td", { text: (strategy.symbols || []).join(", ") }),
      h("td", { text: strategy.interval }),
      h("td", { text: strategy.mode }),
      h("td", {}, h("span", { class: `badge ${strategy.state}`, text: strategy.state })),
      h("td", { class: "num", dataset: { tone: signTone(perf.return_pct) }, text: perf.return_pct === undefined ? "—" : `${Number(perf.return_pct).toFixed(2)}%` }),
      h("td", { class: "num", dataset: { tone: signTone(perf.total_pnl) }, text: formatMoney(perf.total_pnl) }),
      h("td", { class: "num", text: perf.trades ?? "—" }),
      h("td", { class: "num", text: percent(perf.win_rate) }),
      h("td", { class: "num", text: percent(perf.max_drawdown) }),
      h("td", {}, button),
    );
  }

  function showUnavailable(message) {
    available = false;
    unavailable.textContent = message;
    unavailable.hidden = false;
    content.hidden = true;
  }

  async function performanceOf(strategy) {
    try {
      return await ctx.api.get(`${BASE}/${strategy.id}/performance`);
    } catch {
      return null;
    }
  }

  async function loadOnce() {
    let strategies;
    try {
      strategies = await ctx.api.get(BASE);
    } catch (error) {
      if (error.status === 404) {
        showUnavailable("Strategies are not available on this server: the strategies API answered 404.");
      } else {
        status.set(`Could not load strategies: ${error.message}`, "error");
      }
      return;
    }
    const performances = await Promise.all(strategies.map(performanceOf));
    body.replaceChildren(
      ...(strategies.length
        ? strategies.map((strategy, i) => row(strategy, performances[i]))
        : [emptyRow(COLUMNS.length, "No strategies yet.")]),
    );
  }

  function load() {
    if (!available) return null;
    loading ??= loadOnce().finally(() => {
      loading = null;
    });
    return loading;
  }

  function onEvent(event) {
    events.prepend(
      h("li", {}, h("time", { text: formatTime(event.time ?? new Date().toISOString()) }), " ", eventText(event)),
    );
    while (events.children.length > EVENTS_SHOWN) events.lastElementChild.remove();
    if (!TRADING_KINDS.has(event.kind)) load();
  }

  ctx.live.on("strategies", onEvent);
  ctx.every(REFRESH_MS, load);
  load();
  return panel("strategies", "Strategies", unavailable, content, status.node);
}
