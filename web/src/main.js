// The dashboard: a login screen, then one page of panels kept live through /ws.

import "./styles.css";
import { Api } from "./api.js";
import { field, h, statusLine } from "./dom.js";
import { LiveStream } from "./live.js";
import { alertsView } from "./views/alerts.js";
import { backtestsView } from "./views/backtests.js";
import { chartView } from "./views/chart.js";
import { ordersView } from "./views/orders.js";
import { portfolioView } from "./views/portfolio.js";
import { positionsView } from "./views/positions.js";
import { riskView } from "./views/risk.js";
import { strategiesView } from "./views/strategies.js";
import { ticketView } from "./views/ticket.js";
import { watchlistView } from "./views/watchlist.js";

const ROLE_RANK = { viewer: 1, trader: 2, admin: 3 };
const PREFERRED_SYMBOL = "BTCUSDT";
const SECTIONS = [
  ["watchlist", "Markets"],
  ["ticket", "Trade"],
  ["orders", "Orders"],
  ["portfolio", "Portfolio"],
  ["risk", "Risk"],
  ["alerts", "Alerts"],
  ["strategies", "Strategies"],
  ["backtests", "Backtests"],
];
const LIVE_TEXT = { offline: "Offline", connecting: "Connecting…", live: "Live", retrying: "Reconnecting" };

const root = document.getElementById("app");
const api = new Api();
let session = null;

function showLogin(message = "") {
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary", text: "Log in" });
  const status = statusLine(message);
  const form = h(
    "form",
    {
      class: "login-form",
      "aria-labelledby": "login-title",
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        status.set("Logging in…");
        try {
          await api.login(email.value.trim(), password.value);
          await showDashboard();
        } catch (error) {
          status.set(`Login failed: ${error.message}`, "error");
          submit.disabled = false;
        }
      },
    },
    h("h1", { id: "login-title", text: "Trademk" }),
    h("p", { class: "muted", text: "Log in to the trading dashboard." }),
    field("Email", email),
    field("Password", password),
    submit,
    status.node,
  );
  root.replaceChildren(h("main", { class: "login" }, form));
  email.focus();
}

/** What every view gets: the API, the live stream, the caller and shared page state. */
function createContext(me, symbols) {
  const live = new LiveStream(api);
  const listeners = new Map();
  const timers = [];
  const symbolListeners = [];
  let selected = null;
  return {
    api,
    live,
    me,
    symbols,
    prices: new Map(),
    can: (role) => (ROLE_RANK[me.role] ?? 0) >= ROLE_RANK[role],
    selectSymbol(symbol) {
      selected = symbol;
      for (const listener of symbolListeners) listener(symbol);
    },
    get selected() {
      return selected;
    },
    onSymbol: (listener) => symbolListeners.push(listener),
    on(name, listener) {
      if (!listeners.has(name)) listeners.set(name, []);
      listeners.get(name).push(listener);
    },
    emit(name, data) {
      for (const listener of listeners.get(name) ?? []) listener(data);
    },
    every(ms, task) {
      timers.push(setInterval(task, ms));
    },
    close() {
      for (const timer of timers) clearInterval(timer);
      live.stop();
    },
  };
}

function header(ctx) {
  const liveStatus = h("span", { class: "live-status", role: "status", "aria-label": "Live connection" });
  ctx.live.onStatus((state, detail) => {
    liveStatus.textContent = LIVE_TEXT[state] ?? state;
    liveStatus.dataset.state = state;
    liveStatus.title = detail;
  });
  const logout = h("button", { type: "button", class: "small", text: "Log out", onclick: () => api.logout() });
  return h(
    "header",
    { class: "top" },
    h("h1", { text: "Trademk" }),
    h("nav", { "aria-label": "Sections" }, SECTIONS.map(([id, text]) => h("a", { href: `#${id}`, text }))),
    liveStatus,
    h("span", { class: "who", text: `${ctx.me.email} (${ctx.me.role})` }),
    logout,
  );
}

async function showDashboard() {
  root.replaceChildren(h("p", { class: "loading", role: "status", text: "Loading the dashboard…" }));
  let me;
  let symbols;
  try {
    [me, symbols] = await Promise.all([api.get("/api/v1/users/me"), api.get("/api/v1/market-data/symbols")]);
  } catch (error) {
    if (error.status === 401) api.forget("Your session has ended: log in again.");
    else root.replaceChildren(h("p", { class: "loading", role: "alert", text: `The dashboard could not load: ${error.message}` }));
    return;
  }
  const ctx = createContext(me, symbols.filter((symbol) => symbol.is_active));
  session = ctx;
  const page = h(
    "main",
    { class: "dashboard" },
    h("div", { class: "row markets" }, watchlistView(ctx), chartView(ctx), ticketView(ctx)),
    h("div", { class: "row trading" }, ordersView(ctx), positionsView(ctx)),
    h("div", { class: "row account" }, portfolioView(ctx), riskView(ctx)),
    h("div", { class: "row automation" }, alertsView(ctx), strategiesView(ctx)),
    h("div", { class: "row" }, backtestsView(ctx)),
  );
  root.replaceChildren(header(ctx), page);
  const tickers = ctx.symbols.map((symbol) => symbol.ticker);
  if (tickers.length) ctx.selectSymbol(tickers.includes(PREFERRED_SYMBOL) ? PREFERRED_SYMBOL : tickers[0]);
  ctx.live.start();
}

api.onSessionEnd = (reason) => {
  if (session) session.close();
  session = null;
  showLogin(reason);
};

if (api.loggedIn) showDashboard();
else showLogin();
