// Portfolio: cash, equity and P&L, and the equity curve of this session, sampled from
// GET /portfolio and fed by the live `portfolio` channel.

import { AreaSeries, createChart } from "lightweight-charts";
import { formatMoney, h, panel, signTone, statusLine } from "../dom.js";
import { CHART_THEME } from "./chart.js";

const SAMPLE_MS = 5_000;
const MAX_POINTS = 5_000;
const FIGURES = [
  ["equity", "Equity"],
  ["cash", "Cash"],
  ["total_pnl", "Total P&L"],
  ["realized_pnl", "Realized P&L"],
  ["unrealized_pnl", "Unrealized P&L"],
  ["fees", "Fees"],
  ["gross_exposure", "Gross exposure"],
  ["net_exposure", "Net exposure"],
];
const SIGNED = new Set(["total_pnl", "realized_pnl", "unrealized_pnl"]);

export function portfolioView(ctx) {
  const values = new Map();
  const list = h(
    "dl",
    { class: "figures" },
    FIGURES.map(([key, label]) => {
      const value = h("dd", { text: "—" });
      values.set(key, value);
      return h("div", {}, h("dt", { text: label }), value);
    }),
  );
  const box = h("div", { class: "chart short", role: "img", "aria-label": "Equity curve of this session" });
  const status = statusLine("");
  const chart = createChart(box, {
    ...CHART_THEME,
    autoSize: true,
    timeScale: { ...CHART_THEME.timeScale, secondsVisible: true },
  });
  const equity = chart.addSeries(AreaSeries, {
    lineColor: "#38bdf8",
    topColor: "rgba(56, 189, 248, 0.35)",
    bottomColor: "rgba(56, 189, 248, 0.02)",
    lineWidth: 2,
  });
  let points = 0;
  let lastTime = 0;

  function show(snapshot) {
    for (const [key, node] of values) {
      node.textContent = formatMoney(snapshot[key]);
      if (SIGNED.has(key)) node.dataset.tone = signTone(snapshot[key]);
    }
    // Points are stamped with the browser's clock so REST and live samples share one axis.
    const time = Math.max(Math.floor(Date.now() / 1000), lastTime);
    equity.update({ time, value: Number(snapshot.equity) });
    if (time > lastTime) points += 1;
    lastTime = time;
    if (points > MAX_POINTS) {
      equity.setData(equity.data().slice(-MAX_POINTS / 2));
      points = MAX_POINTS / 2;
    }
  }

  async function sample() {
    try {
      show(await ctx.api.get("/api/v1/trading/portfolio"));
      status.set("");
    } catch (error) {
      status.set(`Could not load the portfolio: ${error.message}`, "error");
    }
  }

  ctx.live.on("portfolio", show);
  ctx.every(SAMPLE_MS, sample);
  sample();
  return panel(
    "portfolio",
    "Portfolio",
    list,
    h("h3", { text: "Equity curve (this session)" }),
    box,
    status.node,
  );
}
