// The signalling WebSocket: connects, reconnects by itself (exponential backoff with jitter),
// queues what is sent while it is away, and pings so a dead socket is noticed.
// It knows nothing about calls: main.js reads the frames.
//
// Timing is set by the server's grace period: a call whose side has no socket is ended after
// PEERLINE_DISCONNECT_GRACE_S (15 s by default, docs/protocol.md), so a lost socket must be
// noticed and replaced well inside that. A socket on a network that went away (Wi-Fi dropped,
// laptop moved) often gets no `close` event for a long time: Chromium waits out the closing
// handshake. So a socket that stops answering is abandoned (handlers detached, closed, forgotten)
// and a new one opened at once, instead of waiting for its `close`.

const BACKOFF_FIRST_MS = 250;
// The longest wait between two attempts. With jitter the attempts after a drop start within
// 0.25 + 0.5 + 1 + 2 + 4 + 4 = 11.75 s at worst (six attempts inside the 15 s grace), then keep
// coming at most 4 s apart; see RECOVERY_BUDGET_MS.
const BACKOFF_MAX_MS = 4_000;
// Opening a socket and receiving its `hello`; a black-holed network otherwise leaves the attempt
// "connecting" for as long as TCP keeps retrying.
const CONNECT_TIMEOUT_MS = 5_000;
// A dead socket is noticed within PING_INTERVAL_MS + PONG_TIMEOUT_MS (9 s). Any frame from the
// server counts as an answer, so a busy server that is slow to pong is not mistaken for a dead one.
const PING_INTERVAL_MS = 5_000;
const PONG_TIMEOUT_MS = 4_000;
// After the browser says the network is back, a socket that still looks open gets this long to
// answer a ping (it probably died with the old network).
const ONLINE_PROBE_TIMEOUT_MS = 2_000;
const QUEUE_MAX = 500;
const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_ABANDONED = 4000; // ours: the socket stopped answering (never sent by the server)

/** The server's default grace period: reconnect attempts must keep landing inside it. */
export const RECOVERY_BUDGET_MS = 15_000;

/**
 * How long to wait before reconnect attempt number `attempt` (0 for the first after a failure).
 * Half fixed, half random: a crowd of tabs that lost the same server does not come back in
 * lockstep, and no wait is ever longer than BACKOFF_MAX_MS.
 */
export function retryDelayMs(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, attempt));
  return ceiling / 2 + random() * (ceiling / 2);
}

export class SignallingClient {
  /**
   * onMessage(frame) for every frame (including `hello`); onState("connecting"|"open"|"closed", detail).
   * Frames sent with send() before the next `hello` has been handled are queued and flushed after
   * it, so main.js can put a `resume` first with sendFirst().
   */
  constructor({ url, onMessage, onState }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.ready = false;
    this.queue = [];
    this.attempt = 0;
    this.stopped = false;
    this.retryTimer = null;
    this.connectTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this._onOnline = () => this._networkBack();
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this._onOnline);
    this._connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this._onOnline);
    this._clearTimers();
    if (this.ws) this.ws.close(1000);
  }

  /** Send now when ready, else keep it for the next connection. */
  send(frame) {
    if (this.ready && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return;
    }
    if (this.queue.length >= QUEUE_MAX) this.queue.shift();
    this.queue.push(frame);
  }

  /** Send ahead of the queue (used for `resume` while handling `hello`). */
  sendFirst(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
    else this.queue.unshift(frame);
  }

  /** Drop queued frames that match (e.g. signals of a call that ended). */
  discard(predicate) {
    this.queue = this.queue.filter((frame) => !predicate(frame));
  }

  /** Test/diagnostic: lose the socket as a network failure would (it reconnects by itself). */
  drop() {
    if (this.ws) this._abandon("dropped for a test", { retry: "now" });
  }

  _connect() {
    this._clearTimers();
    this.ready = false;
    this.onState("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.onState("open");
      this._startPing();
    };
    ws.onmessage = (event) => {
      if (ws === this.ws) this._receive(event.data);
    };
    ws.onclose = (event) => this._closed(ws, event.code);
    this.connectTimer = setTimeout(() => {
      if (ws === this.ws) this._abandon("no hello in time", { retry: "backoff" });
    }, CONNECT_TIMEOUT_MS);
  }

  _closed(ws, code) {
    if (ws !== this.ws) return;
    this.ready = false;
    this._clearTimers();
    if (this.stopped || code === CLOSE_UNAUTHENTICATED) {
      this.stopped = true;
      this.onState("closed", { code, final: true });
      return;
    }
    this.onState("closed", { code, final: false });
    this._scheduleRetry();
  }

  /**
   * Forget this socket now: its events no longer reach us (its `close` may come much later, or
   * never), and a new connection starts at once ("now") or after the usual backoff.
   */
  _abandon(reason, { retry }) {
    const ws = this.ws;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(CLOSE_ABANDONED, reason);
    } catch {
      // Already closing: nothing more to do with it.
    }
    this.ready = false;
    this._clearTimers();
    this.onState("closed", { code: CLOSE_ABANDONED, final: false, reason });
    if (this.stopped) return;
    if (retry === "now") this._connect();
    else this._scheduleRetry();
  }

  _receive(data) {
    clearTimeout(this.pongTimer); // any frame proves the socket is alive
    this.pongTimer = null;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.type === "pong") return;
    this.onMessage(frame);
    if (frame.type === "hello") {
      clearTimeout(this.connectTimer);
      this.attempt = 0;
      this.ready = true;
      const queued = this.queue;
      this.queue = [];
      queued.forEach((f) => this.send(f));
    }
  }

  _scheduleRetry() {
    const delay = retryDelayMs(this.attempt);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this._connect(), delay);
  }

  /** The browser says the network is back: check an open socket quickly, retry a closed one now. */
  _networkBack() {
    if (this.stopped) return;
    this.attempt = 0;
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN && this.ready) {
      this._ping(ONLINE_PROBE_TIMEOUT_MS);
    } else if (ws && ws.readyState <= WebSocket.OPEN) {
      // Started on the old network (and probably doomed): start over on the new one.
      this._abandon("network changed while connecting", { retry: "now" });
    } else {
      this._connect();
    }
  }

  _ping(timeoutMs) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: "ping" }));
    // An unanswered earlier ping keeps its (earlier) deadline unless this one is stricter.
    if (this.pongTimer && timeoutMs >= PONG_TIMEOUT_MS) return;
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => {
      if (ws === this.ws) this._abandon("no answer to ping", { retry: "now" });
    }, timeoutMs);
  }

  _startPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this._ping(PONG_TIMEOUT_MS), PING_INTERVAL_MS);
  }

  _clearTimers() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.retryTimer = this.connectTimer = this.pingTimer = this.pongTimer = null;
  }
}
