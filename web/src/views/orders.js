// Orders: the newest orders, live from the `orders` channel, with cancel for open ones.

import { emptyRow, formatPrice, formatQty, formatTime, h, panel, statusLine, table } from "../dom.js";

const COLUMNS = ["Time", "Order id", "Symbol", "Side", "Type", "Qty", "Limit", "Filled", "Avg price", "Status", "Reason", ""];
const OPEN = new Set(["initialized", "submitted", "accepted", "partially_filled", "pending_cancel"]);
const CANCELABLE = new Set(["submitted", "accepted", "partially_filled"]);
const SHOWN = 100;

/** One order in a single shape, from REST (OrderOut) or the live `order` message. */
function normalize(order, known) {
  return {
    id: order.client_order_id,
    time: order.created_at ?? known?.time ?? new Date().toISOString(),
    symbol: order.symbol,
    side: order.side,
    type: order.type,
    qty: order.qty,
    limit: order.price ?? order.limit_price ?? null,
    filled: order.filled_qty,
    avg: order.filled_avg_price ?? order.avg_fill_price ?? null,
    status: order.status,
    reason: order.error_message || order.reason || "",
    strategy: order.strategy_id,
  };
}

export function ordersView(ctx) {
  const { table: node, body } = table("Orders", COLUMNS);
  const status = statusLine("");
  const orders = new Map();
  let frame = 0;

  function upsert(order) {
    const known = orders.get(order.client_order_id);
    orders.set(order.client_order_id, normalize(order, known));
    if (!frame) frame = requestAnimationFrame(render);
  }

  async function cancel(order) {
    status.set(`Canceling ${order.id}…`);
    try {
      const answer = await ctx.api.delete(`/api/v1/trading/orders/${encodeURIComponent(order.id)}`);
      upsert(answer);
      status.set(`Cancel of ${order.id} requested.`, "ok");
    } catch (error) {
      status.set(`Cancel of ${order.id} failed: ${error.message}`, "error");
    }
  }

  function row(order) {
    const canCancel = CANCELABLE.has(order.status) && ctx.can("trader");
    const action = canCancel
      ? h("button", {
          type: "button",
          class: "small",
          text: "Cancel",
          "aria-label": `Cancel order ${order.id}`,
          onclick: () => cancel(order),
        })
      : "";
    return h(
      "tr",
      { dataset: { orderId: order.id, status: order.status } },
      h("td", { class: "time", text: formatTime(order.time) }),
      h("td", { class: "mono", text: order.id, title: `${order.id} (${order.strategy ? `strategy ${order.strategy}` : "manual"})` }),
      h("td", { text: order.symbol }),
      h("td", { class: `side ${order.side}`, text: order.side }),
      h("td", { text: order.type }),
      h("td", { class: "num", text: formatQty(order.qty) }),
      h("td", { class: "num", text: order.limit === null ? "—" : formatPrice(order.limit) }),
      h("td", { class: "num", text: formatQty(order.filled) }),
      h("td", { class: "num", text: order.avg === null ? "—" : formatPrice(order.avg) }),
      h("td", {}, h("span", { class: `badge ${order.status}`, text: order.status })),
      h("td", { class: "reason", text: order.reason }),
      h("td", {}, action),
    );
  }

  function render() {
    frame = 0;
    const newest = [...orders.values()].sort((a, b) => Date.parse(b.time) - Date.parse(a.time)).slice(0, SHOWN);
    body.replaceChildren(...(newest.length ? newest.map(row) : [emptyRow(COLUMNS.length, "No orders yet.")]));
    const open = newest.filter((order) => OPEN.has(order.status)).length;
    counter.textContent = `${open} open`;
  }

  async function load() {
    try {
      const found = await ctx.api.get(`/api/v1/trading/orders?limit=${SHOWN}`);
      for (const order of found) upsert(order);
      if (!found.length) render();
    } catch (error) {
      status.set(`Could not load orders: ${error.message}`, "error");
    }
  }

  const counter = h("span", { class: "counter", text: "" });
  ctx.live.on("orders", upsert);
  ctx.live.onResync(load);
  load();
  const view = panel("orders", "Orders", h("div", { class: "scroll" }, node), status.node);
  view.querySelector("h2").append(" ", counter);
  return view;
}
