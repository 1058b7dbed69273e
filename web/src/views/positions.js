// Positions marked to market, refreshed after every position change and periodically
// (unrealized P&L moves with prices).

import { emptyRow, formatMoney, formatPrice, formatQty, h, panel, signTone, statusLine, table } from "../dom.js";

const COLUMNS = ["Symbol", "Side", "Qty", "Avg price", "Last", "Market value", "Unrealized P&L", "Realized P&L", "Fees"];
const REFRESH_MS = 3_000;

export function positionsView(ctx) {
  const { table: node, body } = table("Positions", COLUMNS);
  const status = statusLine("");
  let loading = null;

  function row(position) {
    return h(
      "tr",
      { dataset: { symbol: position.symbol } },
      h("th", { scope: "row", text: position.symbol }),
      h("td", { class: `side ${position.side}`, text: position.side }),
      h("td", { class: "num", text: formatQty(position.qty) }),
      h("td", { class: "num", text: formatPrice(position.avg_price) }),
      h("td", { class: "num", text: formatPrice(position.last_price) }),
      h("td", { class: "num", text: formatMoney(position.market_value) }),
      h("td", { class: "num", dataset: { tone: signTone(position.unrealized_pnl) }, text: formatMoney(position.unrealized_pnl) }),
      h("td", { class: "num", dataset: { tone: signTone(position.realized_pnl) }, text: formatMoney(position.realized_pnl) }),
      h("td", { class: "num", text: formatMoney(position.fees) }),
    );
  }

  async function loadOnce() {
    try {
      const positions = await ctx.api.get("/api/v1/trading/positions");
      body.replaceChildren(
        ...(positions.length ? positions.map(row) : [emptyRow(COLUMNS.length, "No open positions.")]),
      );
      status.set("");
    } catch (error) {
      status.set(`Could not load positions: ${error.message}`, "error");
    }
  }

  function load() {
    loading ??= loadOnce().finally(() => {
      loading = null;
    });
    return loading;
  }

  ctx.live.on("positions", () => load());
  ctx.live.onResync(load);
  ctx.every(REFRESH_MS, load);
  load();
  return panel("positions", "Positions", h("div", { class: "scroll" }, node), status.node);
}
