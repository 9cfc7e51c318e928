// kf-client.js: a small browser client for the kf WebSocket protocol (v1).
//
// It owns what every kf page needs and nothing page-specific:
// - connect, `hello` with a token, reconnect with exponential backoff and full jitter;
// - answer `ping` with `pong`, and drop a connection that has gone silent;
// - resume: per conversation it keeps the last applied seq and the epoch it belongs to, subscribes "after"
//   it on every (re)connect, and drops every event with seq <= the last applied;
// - sends: each message gets a client id; until its `ack` it stays pending and is resent with the same client id
//   after a reconnect (the server stores it once).

export const PROTOCOL_VERSION = 1;

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30000;
// A session that stayed open this long resets the backoff.
const STABLE_SESSION_MS = 30000;
// Send errors that are final (protocol §10); any other code, known or not, is retried with the same client id.
const FINAL_SEND_ERRORS = new Set(["bad_json", "unknown_type", "invalid_frame", "forbidden", "not_found", "invalid_state", "too_large"]);
// Errors refusing `hello` after which reconnecting cannot help.
const FINAL_HELLO_ERRORS = new Set(["unsupported_version", "forbidden", "hello_required"]);

export function wsUrl(path = "/ws") {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class KfClient {
  // options:
  //   url             WebSocket URL (default: this origin's /ws)
  //   getToken        async () => token; called before each connection attempt
  //   onAuthError     async (code, message) => boolean; a refused token: return true to retry (with a new token)
  //   onStatus        (status, detail) => void; "connecting" | "online" | "offline" | "stopped" (detail.why)
  //   onFrame         (frame) => void; every frame not consumed here (welcome, inbox, conversation, opened…)
  //   onEvent         (event) => void; a new event (seq > last applied) of a subscribed conversation
  //   onReset         (conversation) => void; the server's epoch changed: drop what you hold for it
  //   onAck           (clientId, seq, conversation) => void
  //   onSendFailed    (clientId, code, message) => void; not retried (too large, closed conversation…)
  //   onChange        () => void; cursors or pending sends changed (persist them here)
  //   state           {cursors, pending} from a previous snapshot()
  constructor(options) {
    this.o = options;
    this.url = options.url || wsUrl();
    const state = options.state || {};
    // conversation id -> {seq, epoch}
    this.cursors = new Map(Object.entries(state.cursors || {}));
    // client id -> {conversation, client_id, body}; insertion order is send order
    this.pending = new Map((state.pending || []).map((p) => [p.client_id, p]));
    this.subscriptions = new Set();
    this.ws = null;
    this.generation = 0;
    this.online = false;
    this.attempt = 0;
    this.stopped = true;
    this.timer = null;
    this.pingTimer = null;
    this.deadTimer = null;
    this.connecting = false;
    this.welcomedAt = 0;
    this.authRefreshes = 0; // token refreshes since the last welcome
    this.lastError = null;
    this.serverEpoch = null;
    this.limits = null;
    this.subscribedOn = new Map(); // conversation -> generation its `subscribed` arrived on
    this.onOnline = () => this.retryNow();
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.retryNow();
    };
  }

  snapshot() {
    return { cursors: Object.fromEntries(this.cursors), pending: [...this.pending.values()] };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.connect();
  }

  stop(why) {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.timer);
    this.clearLiveness();
    this.generation++;
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
    this.online = false;
    this.status("stopped", why ? { why } : undefined);
  }

  status(status, detail) {
    if (this.o.onStatus) this.o.onStatus(status, detail);
  }

  async connect() {
    if (this.stopped || this.connecting) return;
    clearTimeout(this.timer);
    this.status("connecting");
    let token;
    this.connecting = true;
    try {
      token = await this.o.getToken();
    } catch (error) {
      this.connecting = false;
      this.scheduleReconnect(`cannot get a token: ${error.message || error}`);
      return;
    }
    this.connecting = false;
    if (this.stopped) return;
    if (this.ws) {
      // A connection attempt is already under way (a manual retry raced the timer): keep that one.
      return;
    }
    const generation = ++this.generation;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this.scheduleReconnect(String(error));
      return;
    }
    this.ws = ws;
    this.lastError = null;
    ws.onopen = () => {
      if (generation !== this.generation) return;
      ws.send(JSON.stringify({ type: "hello", v: PROTOCOL_VERSION, token }));
      this.touch();
    };
    ws.onmessage = (message) => {
      if (generation !== this.generation) return;
      this.touch();
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        console.warn("kf: ignoring a frame that is not JSON", message.data);
        return;
      }
      this.handle(frame);
    };
    ws.onclose = (close) => {
      if (generation !== this.generation) return;
      this.closed(close);
    };
    ws.onerror = () => {
      // onclose follows and decides.
    };
  }

  // Liveness (protocol §14): after a ping interval without a frame from the server, ask with our own `ping`;
  // after the idle timeout without any, the connection is dead: drop it and reconnect.
  touch() {
    this.clearLiveness();
    const interval = this.limits ? this.limits.ping_interval_ms : 25000;
    const idle = this.limits ? this.limits.idle_timeout_ms : 60000;
    this.pingTimer = setTimeout(() => this.transmit({ type: "ping" }), interval);
    this.deadTimer = setTimeout(() => {
      console.warn("kf: nothing heard from the server within the idle timeout; reconnecting");
      this.dropConnection();
    }, idle);
  }

  clearLiveness() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.deadTimer);
  }

  dropConnection() {
    const ws = this.ws;
    this.generation++;
    this.ws = null;
    if (ws) {
      try {
        ws.close(4000, "client reconnects");
      } catch {
        // already closing
      }
    }
    this.closed({ code: 4000, reason: "client reconnects" });
  }

  async closed(close) {
    this.clearLiveness();
    this.ws = null;
    this.online = false;
    this.subscribedOn.clear();
    if (this.welcomedAt && Date.now() - this.welcomedAt >= STABLE_SESSION_MS) this.attempt = 0;
    this.welcomedAt = 0;
    if (this.stopped) return;
    const error = this.lastError;
    const why = error ? `${error.code}: ${error.message}` : `connection closed (${close.code}${close.reason ? " " + close.reason : ""})`;
    if (error && FINAL_HELLO_ERRORS.has(error.code)) {
      this.stop(why); // reconnecting cannot help (protocol §11)
      return;
    }
    if (error && (error.code === "invalid_token" || error.code === "token_expired")) {
      // Fetch a fresh token and reconnect; a fresh token refused again is final.
      this.authRefreshes += 1;
      const retry = this.authRefreshes <= 1 && this.o.onAuthError ? await this.o.onAuthError(error.code, error.message) : false;
      if (!retry) {
        if (!this.stopped) this.stop(why);
        return;
      }
    }
    if (error && error.code === "too_many_connections") this.attempt = Math.max(this.attempt, 5);
    if (close.code === 1009) console.error("kf: a frame exceeded max_frame_bytes (client bug)");
    this.scheduleReconnect(why);
  }

  scheduleReconnect(why) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = Math.max(100, Math.round(Math.random() * ceiling)); // full jitter
    this.attempt = Math.min(this.attempt + 1, 16);
    this.status("offline", { why, retryInMs: delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (!this.stopped && !this.ws && !this.connecting) {
      this.attempt = 0;
      this.connect();
    }
  }

  transmit(frame) {
    if (!this.online || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // Any request frame (open, close, typing…); false when offline.
  request(frame) {
    return this.transmit(frame);
  }

  handle(frame) {
    switch (frame.type) {
      case "welcome":
        this.online = true;
        this.welcomedAt = Date.now();
        this.authRefreshes = 0;
        this.serverEpoch = frame.epoch;
        this.limits = frame.limits;
        this.touch();
        this.status("online");
        this.o.onFrame && this.o.onFrame(frame);
        for (const conversation of this.subscriptions) this.sendSubscribe(conversation);
        return;
      case "ping":
        this.transmit({ type: "pong" });
        return;
      case "pong":
        return;
      case "subscribed":
        this.subscribed(frame);
        return;
      case "event":
        this.event(frame);
        return;
      case "ack":
        this.acked(frame);
        return;
      case "error":
        if (this.errored(frame)) return;
        break;
      default:
        break;
    }
    this.o.onFrame && this.o.onFrame(frame);
  }

  // Subscribes to a conversation now (if online) and after every reconnect.
  subscribe(conversation) {
    const fresh = !this.subscriptions.has(conversation);
    this.subscriptions.add(conversation);
    if (fresh && this.online) this.sendSubscribe(conversation);
  }

  unsubscribe(conversation) {
    if (this.subscriptions.delete(conversation)) this.transmit({ type: "unsubscribe", conversation });
  }

  forget(conversation) {
    this.subscriptions.delete(conversation);
    this.cursors.delete(conversation);
    for (const [clientId, p] of this.pending) if (p.conversation === conversation) this.pending.delete(clientId);
    this.changed();
  }

  lastSeq(conversation) {
    const cursor = this.cursors.get(conversation);
    return cursor ? cursor.seq : 0;
  }

  sendSubscribe(conversation) {
    const cursor = this.cursors.get(conversation);
    const frame = { type: "subscribe", id: `sub:${conversation}`, conversation, after: cursor ? cursor.seq : 0 };
    if (cursor && cursor.epoch) frame.epoch = cursor.epoch;
    this.transmit(frame);
  }

  subscribed(frame) {
    const conversation = frame.conversation;
    const cursor = this.cursors.get(conversation) || { seq: 0, epoch: null };
    if (frame.reset || (cursor.epoch && cursor.epoch !== this.serverEpoch)) {
      cursor.seq = 0;
      this.o.onReset && this.o.onReset(conversation);
    }
    cursor.epoch = this.serverEpoch;
    this.cursors.set(conversation, cursor);
    this.subscribedOn.set(conversation, this.generation);
    this.changed();
    this.o.onFrame && this.o.onFrame(frame);
    // Unacknowledged sends go again, with the same client ids: the server stores each once.
    for (const p of this.pending.values()) if (p.conversation === conversation) this.transmitSend(p);
  }

  event(event) {
    const cursor = this.cursors.get(event.conversation) || { seq: 0, epoch: this.serverEpoch };
    if (event.seq <= cursor.seq) return; // already applied (replay overlapping live delivery)
    if (event.seq !== cursor.seq + 1) {
      // Should not happen within one subscription: resubscribe from the cursor and drop until the replay arrives.
      console.warn(`kf: seq gap in ${event.conversation}: ${cursor.seq} -> ${event.seq}; resubscribing`);
      if (this.subscribedOn.get(event.conversation) === this.generation) {
        this.subscribedOn.delete(event.conversation);
        this.sendSubscribe(event.conversation);
      }
      return;
    }
    cursor.seq = event.seq;
    this.cursors.set(event.conversation, cursor);
    if (event.client_id && this.pending.has(event.client_id) && this.isMine(event)) {
      // Our send is committed (its ack may still be on its way).
      this.pending.delete(event.client_id);
    }
    this.o.onEvent && this.o.onEvent(event);
    this.changed();
  }

  isMine(event) {
    return this.o.isMine ? this.o.isMine(event.author) : true;
  }

  // Sends a text message; returns its client id. Works offline: it goes out once connected and subscribed.
  sendMessage(conversation, text) {
    const p = { conversation, client_id: newId(), body: { text } };
    const limit = this.limits ? this.limits.max_text_bytes : Infinity;
    const size = new TextEncoder().encode(text).length;
    if (size > limit) {
      this.o.onSendFailed && this.o.onSendFailed(p.client_id, "too_large", `the message has ${size} bytes; at most ${limit}`, p);
      return p.client_id;
    }
    this.pending.set(p.client_id, p);
    this.changed();
    if (this.subscribedOn.get(conversation) === this.generation) this.transmitSend(p);
    return p.client_id;
  }

  transmitSend(p) {
    this.transmit({ type: "send", id: `send:${p.client_id}`, conversation: p.conversation, client_id: p.client_id, body: p.body });
  }

  // A typing signal (ephemeral: sent only when online, errors ignored).
  typing(conversation, active) {
    this.transmit({ type: "typing", id: "typing", conversation, active });
  }

  pendingFor(conversation) {
    return [...this.pending.values()].filter((p) => p.conversation === conversation);
  }

  acked(frame) {
    this.pending.delete(frame.client_id);
    this.changed();
    this.o.onAck && this.o.onAck(frame.client_id, frame.seq, frame.conversation);
  }

  // Handles errors that answer our own requests; returns true when consumed.
  errored(frame) {
    const id = frame.id || "";
    if (!frame.id) this.lastError = frame; // a refused hello, or a reason for the close that follows
    if (id === "typing") return true; // ephemeral: a refused or rate-limited typing signal is simply dropped
    if (id.startsWith("send:")) {
      const clientId = id.slice(5);
      const p = this.pending.get(clientId);
      if (!p) return true;
      if (!FINAL_SEND_ERRORS.has(frame.code)) {
        p.retries = (p.retries || 0) + 1;
        const delay = Math.min(30000, 1000 * 2 ** Math.min(p.retries - 1, 5)) * (0.5 + Math.random() / 2);
        setTimeout(() => {
          if (this.pending.has(clientId) && this.subscribedOn.get(p.conversation) === this.generation) this.transmitSend(p);
        }, delay);
      } else {
        this.pending.delete(clientId);
        this.changed();
        this.o.onSendFailed && this.o.onSendFailed(clientId, frame.code, frame.message, p);
      }
      return true;
    }
    return false;
  }

  changed() {
    this.o.onChange && this.o.onChange();
  }
}

// Small DOM helpers shared by the pages.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function titleCase(id) {
  return id ? id.charAt(0).toUpperCase() + id.slice(1) : "";
}

// Coalesces redraws: the returned function schedules `draw` once for the next animation frame.
export function renderer(draw) {
  let frame = 0;
  return () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      draw();
    });
  };
}

// Shows a short notice in the page's #toast element for 5 s.
let toastTimer = null;
export function toast(text) {
  const node = document.getElementById("toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (node.hidden = true), 5000);
}

// Shows the client's connection status in the page's #status element; `stoppedLabel` names the stopped state.
export function showStatus(status, detail, stoppedLabel = "stopped") {
  const node = document.getElementById("status");
  node.dataset.state = status;
  let text = { connecting: "connecting…", online: "online", offline: "offline", stopped: stoppedLabel }[status] || status;
  if (status === "offline" && detail) text = `offline · retrying in ${Math.ceil(detail.retryInMs / 1000)} s`;
  node.querySelector(".status-text").textContent = text;
  node.title = detail && detail.why ? detail.why : status;
}

// Wires the page's #composer form and its #input: Enter sends (Shift+Enter starts a new line), the box grows with
// its text up to `maxHeight` pixels, typing signals follow the input. `send(text)` returns false when it cannot
// send now, and the text stays in the box.
export function wireComposer({ maxHeight, typingSignal, send }) {
  const input = document.getElementById("input");
  const autosize = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, maxHeight)}px`;
  };
  const submit = () => {
    const text = input.value.trim();
    if (!text || !send(text)) return;
    input.value = "";
    autosize();
    typingSignal.stop();
  };
  document.getElementById("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", () => {
    autosize();
    if (input.value.trim()) typingSignal.input();
    else typingSignal.stop();
  });
}

// Typing signals: "active" at most every 3 s while typing, "inactive" 4 s after the last keystroke or on send.
export class TypingSignal {
  constructor(send) {
    this.send = send;
    this.active = false;
    this.lastSent = 0;
    this.idle = null;
  }

  input() {
    const now = Date.now();
    if (!this.active || now - this.lastSent > 3000) {
      this.active = true;
      this.lastSent = now;
      this.send(true);
    }
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stop(), 4000);
  }

  stop() {
    clearTimeout(this.idle);
    if (this.active) {
      this.active = false;
      this.send(false);
    }
  }
}
