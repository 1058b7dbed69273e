// Backtests: queue a run, follow it, and read its report (statistics, chart, full report).

import { emptyRow, field, formatDateTime, h, panel, select, statusLine, table } from "../dom.js";
import { reportViewer } from "./report.js";

const BASE = "/api/v1/backtests";
const COLUMNS = ["Created", "Strategy", "Data", "Status", "Return", "Sharpe", "Trades", ""];
const POLL_MS = 1_500;
const KNOWN_STRATEGIES = ["sma_cross", "rsi_reversion", "donchian_breakout", "momentum"];
const INTERVALS = ["1m", "5m", "15m", "1h", "1d"].map((i) => [i, i]);
const ENGINES = [
  ["auto", "Auto (fast path when possible)"],
  ["fast", "Fast (vectorised)"],
  ["event", "Event-driven"],
];

function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

function stat(job, key, digits = 2) {
  const value = job.stats?.[key];
  return typeof value === "number" ? value.toFixed(digits) : "—";
}

export function backtestsView(ctx) {
  const now = new Date();
  const strategy = h("input", { name: "strategy", type: "text", list: "backtest-strategies", value: "sma_cross", required: true });
  const strategyList = h("datalist", { id: "backtest-strategies" }, KNOWN_STRATEGIES.map((name) => h("option", { value: name })));
  const params = h("textarea", { name: "params", rows: 2, text: '{"fast": 5, "slow": 20}' });
  const symbol = select("backtest_symbol", ctx.symbols.map((s) => [s.ticker, s.ticker]), ctx.symbols[0]?.ticker);
  const start = h("input", { name: "start", type: "datetime-local", value: localInput(new Date(now.getTime() - 6 * 3_600_000)) });
  const end = h("input", { name: "end", type: "datetime-local", value: localInput(new Date(now.getTime() + 60_000)) });
  const interval = select("interval", INTERVALS, "1m");
  const cash = h("input", { name: "cash", type: "text", inputmode: "decimal", value: "10000" });
  const commission = h("input", { name: "commission", type: "text", inputmode: "decimal", value: "0.001" });
  const engine = select("engine", ENGINES, "auto");
  const closeAtEnd = h("input", { name: "close_at_end", type: "checkbox", checked: true });
  const run = h("button", { type: "submit", class: "primary", text: "Run backtest" });
  const status = statusLine("");
  const { table: listTable, body: listBody } = table("Backtests", COLUMNS);
  const viewer = reportViewer(ctx);
  const canRun = ctx.can("trader");
  let pollTimer = null;
  let available = true;

  function request() {
    let parsed = {};
    const text = params.value.trim();
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new Error(`parameters are not valid JSON: ${error.message}`);
      }
    }
    return {
      strategy: strategy.value.trim(),
      params: parsed,
      symbol: symbol.value,
      start: new Date(start.value).toISOString(),
      end: new Date(end.value).toISOString(),
      interval: interval.value,
      cash: Number(cash.value),
      commission: Number(commission.value),
      engine: engine.value,
      close_at_end: closeAtEnd.checked,
    };
  }

  function row(job) {
    const data = job.symbol ? `${job.symbol} ${job.interval}` : job.data_file;
    const view = h("button", {
      type: "button",
      class: "small",
      text: "View report",
      "aria-label": `View report of backtest ${job.strategy} ${data}`,
      disabled: job.status !== "done" && job.status !== "failed",
      onclick: () => viewer.open(job.id),
    });
    return h(
      "tr",
      { dataset: { jobId: job.id, status: job.status } },
      h("td", { class: "time", text: formatDateTime(job.created_at) }),
      h("td", { text: job.strategy }),
      h("td", { text: data }),
      h("td", {}, h("span", { class: `badge ${job.status}`, text: job.status, title: job.error ?? "" })),
      h("td", { class: "num", text: job.stats ? `${stat(job, "Return [%]")}%` : "—" }),
      h("td", { class: "num", text: stat(job, "Sharpe Ratio") }),
      h("td", { class: "num", text: stat(job, "# Trades", 0) }),
      h("td", {}, view),
    );
  }

  async function load() {
    clearTimeout(pollTimer);
    if (!available) return;
    try {
      const jobs = await ctx.api.get(`${BASE}?limit=20`);
      listBody.replaceChildren(...(jobs.length ? jobs.map(row) : [emptyRow(COLUMNS.length, "No backtests yet.")]));
      if (jobs.some((job) => job.status === "queued" || job.status === "running")) {
        pollTimer = setTimeout(load, POLL_MS);
      }
    } catch (error) {
      if (error.status === 404) {
        available = false;
        form.hidden = true;
        listTable.hidden = true;
        status.set("Backtests are not available on this server: the backtests API answered 404.", "error");
      } else {
        status.set(`Could not load backtests: ${error.message}`, "error");
      }
    }
  }

  const form = h(
    "form",
    {
      class: "form-grid",
      "aria-label": "Backtest runner",
      onsubmit: async (event) => {
        event.preventDefault();
        run.disabled = true;
        try {
          const job = await ctx.api.post(BASE, request());
          status.set(`Backtest ${job.id} queued.`, "ok");
          load();
        } catch (error) {
          status.set(`Backtest refused: ${error.message}`, "error");
        } finally {
          run.disabled = !canRun;
        }
      },
    },
    field("Strategy", strategy),
    strategyList,
    field("Parameters (JSON)", params),
    field("Backtest symbol", symbol),
    field("Interval", interval),
    field("Start", start),
    field("End", end),
    field("Cash", cash),
    field("Commission (fraction)", commission),
    field("Engine", engine),
    h("label", { class: "check" }, closeAtEnd, " Close the position at the end"),
    h("div", { class: "actions" }, run),
  );
  ctx.onSymbol((selected) => {
    symbol.value = selected;
  });
  run.disabled = !canRun;
  if (!canRun) status.set("Your role is viewer: running backtests needs the trader role.");
  load();
  return panel("backtests", "Backtests", form, status.node, h("div", { class: "scroll short" }, listTable), viewer.node);
}
