// Order ticket: a manual trade request to POST /api/v1/trading/signal (risk-checked).

import { field, h, panel, select, statusLine } from "../dom.js";

const TYPES = [
  ["market", "Market"],
  ["limit", "Limit"],
  ["stop", "Stop"],
  ["stop_limit", "Stop limit"],
];
const TIME_IN_FORCE = [
  ["", "Default"],
  ["gtc", "Good till canceled"],
  ["day", "Day"],
  ["ioc", "Immediate or cancel"],
  ["fok", "Fill or kill"],
];

export function ticketView(ctx) {
  const symbol = select(
    "symbol",
    ctx.symbols.map((s) => [s.ticker, s.ticker]),
    ctx.symbols[0]?.ticker,
  );
  const side = select("side", [
    ["buy", "Buy"],
    ["sell", "Sell"],
  ]);
  const qty = h("input", {
    name: "qty",
    type: "text",
    inputmode: "decimal",
    required: true,
    autocomplete: "off",
    value: "0.01",
  });
  const type = select("type", TYPES, "market");
  const limit = h("input", { name: "limit_price", type: "text", inputmode: "decimal", autocomplete: "off" });
  const stop = h("input", { name: "stop_price", type: "text", inputmode: "decimal", autocomplete: "off" });
  const tif = select("time_in_force", TIME_IN_FORCE, "");
  const reason = h("input", { name: "reason", type: "text", maxlength: 500, value: "manual order from the dashboard" });
  const send = h("button", { type: "submit", class: "primary", text: "Send order" });
  const status = statusLine("");
  const limitField = field("Limit price", limit);
  const stopField = field("Stop price", stop);

  function showPrices() {
    limitField.hidden = !["limit", "stop_limit"].includes(type.value);
    stopField.hidden = !["stop", "stop_limit"].includes(type.value);
  }
  type.addEventListener("change", showPrices);
  showPrices();

  function body() {
    const request = {
      symbol: symbol.value,
      side: side.value,
      qty: qty.value.trim(),
      type: type.value,
      reason: reason.value.trim() || null,
    };
    if (!limitField.hidden) request.limit_price = limit.value.trim();
    if (!stopField.hidden) request.stop_price = stop.value.trim();
    if (tif.value) request.time_in_force = tif.value;
    return request;
  }

  const form = h(
    "form",
    {
      class: "form-grid",
      "aria-label": "Order ticket",
      onsubmit: async (event) => {
        event.preventDefault();
        send.disabled = true;
        status.set("Sending…");
        try {
          const accepted = await ctx.api.post("/api/v1/trading/signal", body());
          status.set(`Order ${accepted.client_order_id} accepted: ${side.value} ${qty.value} ${accepted.symbol}`, "ok");
          ctx.emit("order-sent", accepted);
        } catch (error) {
          status.set(`Order refused: ${error.message}`, "error");
        } finally {
          send.disabled = !ctx.can("trader");
        }
      },
    },
    field("Symbol", symbol),
    field("Side", side),
    field("Quantity", qty),
    field("Order type", type),
    limitField,
    stopField,
    field("Time in force", tif),
    field("Note", reason),
    h("div", { class: "actions" }, send),
  );

  if (!ctx.can("trader")) {
    send.disabled = true;
    status.set("Your role is viewer: sending orders needs the trader role.");
  }
  ctx.onSymbol((selected) => {
    symbol.value = selected;
  });
  return panel("ticket", "Order ticket", form, status.node);
}
