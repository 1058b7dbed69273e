// Watchlist: every symbol of the universe with its live last trade, bid and ask.

import { formatPrice, formatTime, h, panel, table } from "../dom.js";

const COLUMNS = ["Symbol", "Last", "Bid", "Ask", "Updated"];

export function watchlistView(ctx) {
  const { table: node, body } = table("Watchlist", COLUMNS);
  const rows = new Map();
  const pending = new Map();
  let frame = 0;

  function flush() {
    frame = 0;
    for (const [symbol, tick] of pending) render(symbol, tick);
    pending.clear();
  }

  function render(symbol, tick) {
    const row = rows.get(symbol);
    if (!row) return;
    if (tick.kind === "trade" && tick.price !== null && tick.price !== undefined) {
      const previous = row.lastPrice;
      row.lastPrice = tick.price;
      ctx.prices.set(symbol, tick.price);
      row.last.textContent = formatPrice(tick.price);
      if (previous !== null) {
        row.last.dataset.tone = tick.price > previous ? "up" : tick.price < previous ? "down" : "";
      }
    }
    if (tick.bid !== null && tick.bid !== undefined) row.bid.textContent = formatPrice(tick.bid);
    if (tick.ask !== null && tick.ask !== undefined) row.ask.textContent = formatPrice(tick.ask);
    row.time.textContent = formatTime(tick.time ?? tick.timestamp);
  }

  for (const symbol of ctx.symbols) {
    const button = h("button", {
      type: "button",
      class: "link",
      text: symbol.ticker,
      title: symbol.name,
      onclick: () => ctx.selectSymbol(symbol.ticker),
    });
    const row = {
      node: h("tr", { dataset: { symbol: symbol.ticker } }),
      last: h("td", { class: "num price", text: "—" }),
      bid: h("td", { class: "num", text: "—" }),
      ask: h("td", { class: "num", text: "—" }),
      time: h("td", { class: "time", text: "—" }),
      lastPrice: null,
    };
    row.node.append(h("th", { scope: "row" }, button), row.last, row.bid, row.ask, row.time);
    rows.set(symbol.ticker, row);
    body.append(row.node);
    ctx.live.on(`ticks:${symbol.ticker}`, (tick) => {
      pending.set(symbol.ticker, tick);
      if (!frame) frame = requestAnimationFrame(flush);
    });
  }

  ctx.onSymbol((selected) => {
    for (const [symbol, row] of rows) {
      if (symbol === selected) row.node.setAttribute("aria-current", "true");
      else row.node.removeAttribute("aria-current");
    }
  });

  // Prices known before the page opened (symbols without data yet answer 404).
  for (const symbol of ctx.symbols) {
    ctx.api
      .get(`/api/v1/market-data/latest/${encodeURIComponent(symbol.ticker)}`)
      .then((latest) => {
        if (rows.get(symbol.ticker).lastPrice !== null) return;
        render(symbol.ticker, {
          kind: latest.last_trade_price === null ? "quote" : "trade",
          price: latest.last_trade_price ?? latest.price,
          bid: latest.bid,
          ask: latest.ask,
          time: latest.timestamp,
        });
      })
      .catch(() => {});
  }

  return panel("watchlist", "Watchlist", h("div", { class: "scroll" }, node));
}
