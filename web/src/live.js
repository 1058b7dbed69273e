// The live connection to /ws: one WebSocket, channels subscribed on demand,
// resubscribed after every reconnect (with a fresh access token).

const MAX_BACKOFF_MS = 15_000;
const INITIAL_BACKOFF_MS = 500;
// Close code the server uses when it refuses the handshake credentials.
const POLICY_VIOLATION = 1008;

export class LiveStream {
  constructor(api) {
    this.api = api;
    this.channels = new Map(); // canonical channel -> Set of handlers
    this.statusListeners = new Set();
    this.resyncListeners = new Set();
    this.socket = null;
    this.stopped = true;
    this.backoff = INITIAL_BACKOFF_MS;
    this.retryTimer = null;
    this.state = "offline";
  }

  /** Calls `handler(data, message)` for each message of `channel`; returns an unsubscriber. */
  on(channel, handler) {
    let handlers = this.channels.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.channels.set(channel, handlers);
      this.sendChannels("subscribe", [channel]);
    }
    handlers.add(handler);
    return () => {
      handlers.delete(handler);
      if (handlers.size === 0 && this.channels.get(channel) === handlers) {
        this.channels.delete(channel);
        this.sendChannels("unsubscribe", [channel]);
      }
    };
  }

  /** `listener(state, detail)` on every connection state change: connecting, live, retrying. */
  onStatus(listener) {
    this.statusListeners.add(listener);
    listener(this.state, "");
  }

  /** `listener()` after a reconnect or a "dropped" notice: complete state must be refetched. */
  onResync(listener) {
    this.resyncListeners.add(listener);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000, "logged out");
    this.socket = null;
    this.setState("offline", "");
  }

  setState(state, detail) {
    this.state = state;
    for (const listener of this.statusListeners) listener(state, detail);
  }

  async connect() {
    if (this.stopped) return;
    this.setState("connecting", "");
    let token;
    try {
      token = await this.api.freshToken();
    } catch (error) {
      this.retry(`no session: ${error.message}`);
      return;
    }
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${window.location.host}/ws?token=${encodeURIComponent(token)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      this.backoff = INITIAL_BACKOFF_MS;
      this.setState("live", "");
      this.sendChannels("subscribe", [...this.channels.keys()]);
      for (const listener of this.resyncListeners) listener();
    });
    socket.addEventListener("message", (event) => this.dispatch(event.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      const why = event.code === POLICY_VIOLATION || !opened ? "connection refused" : "connection lost";
      this.retry(why);
    });
  }

  retry(reason) {
    if (this.stopped) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.setState("retrying", `${reason}; retrying in ${Math.round(delay / 1000)} s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  sendChannels(action, channels) {
    if (!channels.length || !this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify({ action, channels }));
  }

  dispatch(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "dropped") {
      for (const listener of this.resyncListeners) listener();
      return;
    }
    if (message.type === "error") {
      console.warn("live stream:", message.message);
      return;
    }
    const handlers = message.channel ? this.channels.get(message.channel) : null;
    if (!handlers) return;
    for (const handler of handlers) {
      try {
        handler(message.data, message);
      } catch (error) {
        console.error(`handler of ${message.channel} failed`, error);
      }
    }
  }
}
