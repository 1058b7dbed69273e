// Candle chart of the selected symbol: stored 1-minute bars, then live. Trades move
// the current candle at once; each closed bar from bars:SYMBOL:1m replaces its candle.

import { CandlestickSeries, ColorType, HistogramSeries, createChart } from "lightweight-charts";
import { h, panel, statusLine } from "../dom.js";

const BAR_LIMIT = 300;
const MINUTE = 60;

export const CHART_THEME = {
  layout: {
    background: { type: ColorType.Solid, color: "#111827" },
    textColor: "#cbd5e1",
    fontFamily: "system-ui, sans-serif",
  },
  grid: { vertLines: { color: "#1f2937" }, horzLines: { color: "#1f2937" } },
  rightPriceScale: { borderColor: "#334155" },
  timeScale: { borderColor: "#334155", timeVisible: true, secondsVisible: false },
};

function seconds(iso) {
  return Math.floor(new Date(iso).getTime() / 1000);
}

export function chartView(ctx) {
  const title = h("h2", { id: "chart-title", text: "Chart" });
  const box = h("div", {
    class: "chart",
    role: "img",
    "aria-label": "Candle chart of the selected symbol",
  });
  const status = statusLine("");
  const node = h(
    "section",
    { class: "panel", id: "chart", "aria-labelledby": "chart-title" },
    title,
    box,
    status.node,
  );
  const chart = createChart(box, { ...CHART_THEME, autoSize: true });
  const candles = chart.addSeries(CandlestickSeries, {
    upColor: "#22c55e",
    downColor: "#ef4444",
    borderVisible: false,
    wickUpColor: "#22c55e",
    wickDownColor: "#ef4444",
  });
  const volume = chart.addSeries(HistogramSeries, {
    priceFormat: { type: "volume" },
    priceScaleId: "",
    color: "#334155",
    lastValueVisible: false,
    priceLineVisible: false,
  });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });

  let current = null; // the candle the latest trades build
  let unsubscribe = [];
  let generation = 0;

  function put(candle, historical = false) {
    try {
      candles.update(candle, historical);
      volume.update({ time: candle.time, value: candle.volume }, historical);
    } catch (error) {
      // A late bar for a minute the chart never had: the next load shows it.
      console.debug("chart update skipped", error);
    }
  }

  function onTrade(tick) {
    if (tick.kind !== "trade" || current === undefined) return;
    const time = Math.floor(seconds(tick.time) / MINUTE) * MINUTE;
    if (current && time < current.time) return;
    if (!current || time > current.time) {
      current = { time, open: tick.price, high: tick.price, low: tick.price, close: tick.price, volume: 0 };
    }
    current.high = Math.max(current.high, tick.price);
    current.low = Math.min(current.low, tick.price);
    current.close = tick.price;
    current.volume += tick.qty ?? 0;
    put({ ...current });
  }

  function onBar(bar) {
    const candle = {
      time: seconds(bar.time),
      open: bar.open,
      high: bar.high,
      low: bar.low,
      close: bar.close,
      volume: bar.volume,
    };
    if (current === undefined) return; // history still loading
    if (!current || candle.time >= current.time) {
      current = { ...candle };
      put(candle);
      return;
    }
    put(candle, true);
  }

  async function show(symbol) {
    const mine = ++generation;
    for (const stop of unsubscribe) stop();
    unsubscribe = [];
    current = undefined; // ignore trades until the history is in place
    title.textContent = `${symbol} · 1-minute candles`;
    box.setAttribute("aria-label", `Candle chart of ${symbol}, 1-minute bars`);
    candles.setData([]);
    volume.setData([]);
    status.set(`Loading ${symbol} bars…`);
    try {
      const answer = await ctx.api.get(
        `/api/v1/market-data/bars/${encodeURIComponent(symbol)}?interval=1m&limit=${BAR_LIMIT}`,
      );
      if (mine !== generation) return;
      const history = answer.bars.map((bar) => ({
        time: seconds(bar.timestamp),
        open: bar.open,
        high: bar.high,
        low: bar.low,
        close: bar.close,
        volume: bar.volume,
      }));
      candles.setData(history);
      volume.setData(history.map((bar) => ({ time: bar.time, value: bar.volume })));
      current = history.length ? { ...history[history.length - 1] } : null;
      status.set(history.length ? "" : `No stored bars for ${symbol} yet: live trades start the chart.`);
    } catch (error) {
      if (mine !== generation) return;
      current = null;
      status.set(`Could not load bars: ${error.message}`, "error");
    }
    unsubscribe = [
      ctx.live.on(`ticks:${symbol}`, onTrade),
      ctx.live.on(`bars:${symbol}:1m`, onBar),
    ];
    chart.timeScale().scrollToRealTime();
  }

  ctx.onSymbol(show);
  return node;
}
