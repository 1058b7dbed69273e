// The REST client: logs in, keeps the tokens in sessionStorage (this tab only),
// refreshes the access token before it expires, and retries once after a 401.

const STORAGE_KEY = "trademk.session";
// Refresh this long before the access token expires.
const REFRESH_MARGIN_MS = 60_000;
const MIN_REFRESH_DELAY_MS = 5_000;

/** An API answer outside 2xx; `message` is the server's `detail`, readable. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The `detail` of an error body as one line of text. */
export function describeDetail(body, status) {
  const detail = body && typeof body === "object" ? body.detail : null;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const where = (item.loc || []).filter((part) => part !== "body").join(".");
        return where ? `${where}: ${item.msg}` : item.msg;
      })
      .join("; ");
  }
  return `the server answered HTTP ${status}`;
}

async function parseBody(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("application/json")) return response.json();
  return response.text();
}

export class Api {
  constructor(storage = window.sessionStorage) {
    this.storage = storage;
    this.tokens = this.load();
    this.refreshing = null;
    this.refreshTimer = null;
    /** Called with a reason when the session ends (expired, revoked, logged out). */
    this.onSessionEnd = () => {};
    if (this.tokens) this.scheduleRefresh();
  }

  get loggedIn() {
    return this.tokens !== null;
  }

  load() {
    try {
      const saved = JSON.parse(this.storage.getItem(STORAGE_KEY) || "null");
      return saved && saved.access && saved.refresh ? saved : null;
    } catch {
      return null;
    }
  }

  store(pair) {
    this.tokens = {
      access: pair.access_token,
      refresh: pair.refresh_token,
      expiresAt: Date.now() + pair.expires_in * 1000,
    };
    this.storage.setItem(STORAGE_KEY, JSON.stringify(this.tokens));
    this.scheduleRefresh();
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    const delay = Math.max(this.tokens.expiresAt - Date.now() - REFRESH_MARGIN_MS, MIN_REFRESH_DELAY_MS);
    this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), delay);
  }

  forget(reason) {
    clearTimeout(this.refreshTimer);
    const had = this.tokens !== null;
    this.tokens = null;
    this.storage.removeItem(STORAGE_KEY);
    if (had) this.onSessionEnd(reason);
  }

  async login(email, password) {
    const response = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
    const body = await parseBody(response);
    if (!response.ok) throw new ApiError(response.status, describeDetail(body, response.status));
    this.store(body);
  }

  /** Spends the refresh token for a new pair; one refresh at a time (tokens rotate). */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.refreshOnce().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async refreshOnce() {
    if (!this.tokens) throw new ApiError(401, "not logged in");
    const response = await fetch("/api/v1/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: this.tokens.refresh }),
    });
    const body = await parseBody(response);
    if (response.status === 401) {
      this.forget("Your session has ended: log in again.");
    }
    if (!response.ok) throw new ApiError(response.status, describeDetail(body, response.status));
    this.store(body);
  }

  /** An access token valid for a while yet (refreshed first when it is about to expire). */
  async freshToken() {
    if (!this.tokens) throw new ApiError(401, "not logged in");
    if (this.tokens.expiresAt - Date.now() < REFRESH_MARGIN_MS / 2) await this.refresh();
    return this.tokens.access;
  }

  async send(method, path, body) {
    const headers = { Authorization: `Bearer ${await this.freshToken()}` };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init);
  }

  /** The raw response of an authenticated request (after one refresh-and-retry on 401). */
  async fetch(method, path, body) {
    let response = await this.send(method, path, body);
    if (response.status === 401 && this.tokens) {
      await this.refresh();
      response = await this.send(method, path, body);
    }
    return response;
  }

  /** The parsed answer of an authenticated request, or ApiError. */
  async request(method, path, body) {
    const response = await this.fetch(method, path, body);
    const parsed = await parseBody(response);
    if (!response.ok) throw new ApiError(response.status, describeDetail(parsed, response.status));
    return parsed;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body) {
    return this.request("POST", path, body ?? {});
  }

  put(path, body) {
    return this.request("PUT", path, body);
  }

  delete(path) {
    return this.request("DELETE", path);
  }

  /** An authenticated download as a Blob (reports, charts). */
  async blob(path) {
    const response = await this.fetch("GET", path);
    if (!response.ok) {
      const parsed = await parseBody(response);
      throw new ApiError(response.status, describeDetail(parsed, response.status));
    }
    return response.blob();
  }

  async logout() {
    try {
      if (this.tokens) await this.post("/api/v1/auth/logout", { refresh_token: this.tokens.refresh });
    } finally {
      this.forget("You logged out.");
    }
  }
}
