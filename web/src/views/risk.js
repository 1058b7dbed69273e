// Risk: trading state, the kill switch (halt / resume, admins) and the limits in force.

import { emptyRow, field, h, panel, statusLine, table } from "../dom.js";

const REFRESH_MS = 3_000;
const STATE_TEXT = {
  active: "Active: orders are accepted",
  reducing: "Reducing: only orders that shrink a position pass",
  halted: "Halted: every new order is denied",
};

export function riskView(ctx) {
  const stateBadge = h("strong", { class: "state", text: "…" });
  const stateLine = h("p", { class: "state-line" }, "Trading state: ", stateBadge);
  const reasonLine = h("p", { class: "muted", text: "" });
  const details = h("p", { class: "muted", text: "" });
  const status = statusLine("");
  const reason = h("input", { name: "halt_reason", type: "text", maxlength: 500, value: "halted from the dashboard" });
  const cancelOpen = h("input", { name: "cancel_open_orders", type: "checkbox", checked: true });
  const halt = h("button", { type: "submit", class: "danger", text: "Halt trading (kill switch)" });
  const resume = h("button", { type: "button", text: "Resume trading" });
  const { table: limitsTable, body: limitsBody } = table("Risk limits", ["Limit", "Value"]);
  const isAdmin = ctx.can("admin");

  function showState(state) {
    stateBadge.textContent = state.state;
    stateBadge.dataset.state = state.state;
    stateBadge.title = STATE_TEXT[state.state] ?? "";
    reasonLine.textContent = state.reason ? `Reason: ${state.reason}` : "";
    const denials = Object.entries(state.denials_by_rule || {})
      .map(([rule, count]) => `${rule} ${count}`)
      .join(", ");
    details.textContent = `Venue ${state.venue} · ${state.open_orders} open orders · denials: ${denials || "none"}`;
    halt.disabled = !isAdmin || state.state === "halted";
    resume.disabled = !isAdmin || state.state === "active";
  }

  async function loadState() {
    try {
      showState(await ctx.api.get("/api/v1/trading/state"));
    } catch (error) {
      stateBadge.textContent = "unknown";
      details.textContent = `Could not load the trading state: ${error.message}`;
    }
  }

  async function loadLimits() {
    try {
      const limits = await ctx.api.get("/api/v1/risk/limits");
      const rows = Object.entries(limits).map(([name, value]) =>
        h("tr", {}, h("th", { scope: "row", text: name }), h("td", { class: "num", text: value })),
      );
      limitsBody.replaceChildren(...(rows.length ? rows : [emptyRow(2, "No limits.")]));
    } catch (error) {
      limitsBody.replaceChildren(emptyRow(2, `Could not load the limits: ${error.message}`));
    }
  }

  async function act(action, request) {
    status.set(action === "halt" ? "Halting…" : "Resuming…");
    try {
      const state = await ctx.api.post(`/api/v1/trading/${action}`, request);
      showState(state);
      const canceled = action === "halt" ? ` (${state.canceled_orders} open orders canceled)` : "";
      status.set(`Trading is ${state.state}${canceled}.`, action === "halt" ? "error" : "ok");
    } catch (error) {
      status.set(`Could not ${action}: ${error.message}`, "error");
    }
  }

  const form = h(
    "form",
    {
      class: "kill-switch",
      "aria-label": "Kill switch",
      onsubmit: (event) => {
        event.preventDefault();
        act("halt", { reason: reason.value.trim() || "halted from the dashboard", cancel_open_orders: cancelOpen.checked });
      },
    },
    field("Halt reason", reason),
    h("label", { class: "check" }, cancelOpen, " Cancel open orders"),
    h("div", { class: "actions" }, halt, resume),
  );
  resume.addEventListener("click", () => act("resume"));
  halt.disabled = resume.disabled = !isAdmin;

  ctx.every(REFRESH_MS, loadState);
  ctx.live.onResync(loadState);
  loadState();
  loadLimits();
  return panel(
    "risk",
    "Risk",
    stateLine,
    reasonLine,
    details,
    form,
    isAdmin ? null : h("p", { class: "muted", text: "Only admins can halt or resume trading." }),
    status.node,
    h("details", { open: true }, h("summary", { text: "Limits in force" }), h("div", { class: "scroll short" }, limitsTable)),
  );
}
