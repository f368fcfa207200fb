// The signalling WebSocket: connects, reconnects by itself (exponential backoff with jitter),
// queues what is sent while it is away, and pings so a dead socket is noticed.
// It knows nothing about calls: main.js reads the frames.

const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 10_000;
const PING_INTERVAL_MS = 15_000;
const PONG_TIMEOUT_MS = 10_000;
const QUEUE_MAX = 500;
const CLOSE_UNAUTHENTICATED = 4401;

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
    this.pingTimer = null;
    this.pongTimer = null;
  }

  start() {
    this.stopped = false;
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this._stopPing();
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
    if (this.ws) this.ws.close(4000, "dropped for a test");
  }

  _connect() {
    clearTimeout(this.retryTimer);
    this.ready = false;
    this.onState("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.attempt = 0;
      this.onState("open");
      this._startPing();
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      this._receive(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      this.ready = false;
      this._stopPing();
      if (this.stopped) {
        this.onState("closed", { code: event.code, final: true });
      } else if (event.code === CLOSE_UNAUTHENTICATED) {
        this.stopped = true;
        this.onState("closed", { code: event.code, final: true });
      } else {
        this.onState("closed", { code: event.code, final: false });
        this._scheduleRetry();
      }
    });
  }

  _receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.type === "pong") {
      clearTimeout(this.pongTimer);
      return;
    }
    this.onMessage(frame);
    if (frame.type === "hello") {
      this.ready = true;
      const queued = this.queue;
      this.queue = [];
      queued.forEach((f) => this.send(f));
    }
  }

  _scheduleRetry() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    // Jitter (half fixed, half random) keeps a crowd of tabs from reconnecting in lockstep after a server restart.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this._connect(), delay);
  }

  _startPing() {
    this._stopPing();
    this.pingTimer = setInterval(() => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      this.ws.send(JSON.stringify({ type: "ping" }));
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this.drop(), PONG_TIMEOUT_MS);
    }, PING_INTERVAL_MS);
  }

  _stopPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }
}
