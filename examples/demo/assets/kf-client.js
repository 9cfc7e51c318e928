// kf-client.js: a small browser client for the kf protocol (v1), over WebSocket or over SSE.
//
// It owns what every kf page needs and nothing page-specific:
// - connect, `hello` with a token, reconnect with exponential backoff and full jitter, capped at 5 s and reset by
//   every `welcome` (protocol §18);
// - answer `ping` with `pong`; ping after a silence and drop a connection (or SSE stream) that stays silent
//   (protocol §14);
// - sends go one at a time per conversation, so that a refused one (rate_limited…) is retried before those
//   behind it and the conversation shows them in the order the user wrote them (protocol §16);
// - resume: per conversation it keeps the last applied seq and the epoch it belongs to, subscribes "after"
//   it on every (re)connect, and drops every event with seq <= the last applied;
// - sends: each message gets a client id; until its `ack` it stays pending and is resent with the same client id
//   after a reconnect (the server stores it once).
//
// With `transport: "sse"` the same API runs over the SSE transport instead: a native EventSource downstream
// (`GET /sse/events`, one stream that follows all of the principal's conversations) and fetch POSTs upstream
// (`POST /sse/{type}`), with the same frames and the same events to the page. For a visitor the stream follows its
// conversations, for an agent every conversation assigned to it (and each assigned later): `subscribe` only claims
// a conversation's events for the page (those that came before included) and `unsubscribe` sends nothing. The
// browser reconnects the EventSource by itself after a cut, sending `Last-Event-ID` (the cursor of the last
// `event`); the cursor is also kept in the snapshot so a reloaded page resumes with `?cursor=`. Only a stream the
// server refused for good (a 401: EventSource stops) is reopened here, with a fresh token and the saved cursor.
// Events are still dropped when their seq <= the last applied of their conversation (protocol §17): exactly once
// on the page.

export const PROTOCOL_VERSION = 1;

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 5000;
// After `too_many_connections` (close 4029): a long wait, 10–30 s, whatever the attempt.
const CROWDED_MIN_MS = 10000;
const CROWDED_MAX_MS = 30000;
// How long after our `ping` (sent after a ping interval of silence) a connection that stays silent is dead.
const PONG_TIMEOUT_MS = 10000;
const DEFAULT_PING_INTERVAL_MS = 25000;
// Send errors that are final (protocol §10); any other code, known or not, is retried with the same client id.
const FINAL_SEND_ERRORS = new Set(["bad_json", "unknown_type", "invalid_frame", "forbidden", "not_found", "invalid_state", "too_large"]);
// Errors refusing `hello` after which reconnecting cannot help.
const FINAL_HELLO_ERRORS = new Set(["unsupported_version", "forbidden", "hello_required"]);

export function wsUrl(path = "/ws") {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// Stream-level error codes after which the server ends an SSE stream and the browser reconnects by itself.
const TRANSIENT_STREAM_ERRORS = new Set(["unavailable", "slow_consumer", "internal"]);
// Most events kept for conversations the page has not subscribed to (yet): an SSE stream delivers the events of
// a conversation the visitor just opened before the `opened` reply says which one it is.
const MAX_UNCLAIMED_EVENTS = 500;
const MAX_UNCLAIMED_CONVERSATIONS = 16;

export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class KfClient {
  // options:
  //   transport       "ws" (default) or "sse"
  //   url             WebSocket URL (default: this origin's /ws)
  //   sseBase         base path of the SSE endpoints (default: /sse)
  //   getToken        async () => token; called before each connection attempt
  //   onAuthError     async (code, message) => boolean; a refused token: return true to retry (with a new token)
  //   onStatus        (status, detail) => void; "connecting" | "online" | "offline" | "stopped" (detail.why)
  //   onFrame         (frame) => void; every frame not consumed here (welcome, inbox, conversation, opened…)
  //   onEvent         (event) => void; a new event (seq > last applied) of a subscribed conversation
  //   onReset         (conversation) => void; the server's epoch changed: drop what you hold for it
  //   onCaughtUp      (conversation) => void; the history replayed after a subscribe is applied (subscribed.last_seq)
  //   onAck           (clientId, seq, conversation) => void
  //   onSendFailed    (clientId, code, message) => void; not retried (too large, closed conversation…)
  //   onChange        () => void; cursors or pending sends changed (persist them here)
  //   state           {cursors, pending, sseCursor, unclaimed} from a previous snapshot()
  constructor(options) {
    this.o = options;
    this.transport = options.transport === "sse" ? "sse" : "ws";
    this.url = options.url || wsUrl();
    this.sseBase = options.sseBase || "/sse";
    const state = options.state || {};
    // SSE: the `id` of the last `event` received (an opaque cursor over all conversations of the stream).
    this.sseCursor = state.sseCursor || null;
    // SSE: conversation id -> events not yet claimed by a subscribe(), by seq.
    this.unclaimed = new Map(Object.entries(state.unclaimed || {}));
    this.es = null; // SSE: the EventSource
    this.followingOn = -1; // SSE: the generation whose `following` arrived
    this.upstream = Promise.resolve(); // SSE: POSTs that must keep their order (open, send, close) go one by one
    // SSE counters, for debugging and the browser check: EventSource objects made, `open`s they fired (one per
    // browser (re)connect), events applied and events dropped as already applied.
    this.sseStats = { eventSources: 0, opens: 0, applied: 0, dropped: 0, replays: 0 };
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
    this.replayEnds = new Map(); // conversation -> `subscribed.last_seq` not applied yet (the end of its replay)
    this.inFlight = new Map(); // conversation -> client id of its one send on the wire
    this.resendTimers = new Map(); // conversation -> timer of a refused send's retry (the others wait behind it)
    this.sendStats = { retried: 0 }; // sends refused for a reason worth a retry (rate_limited…), for the browser check
    this.onOnline = () => this.retryNow();
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.retryNow();
    };
  }

  snapshot() {
    const snapshot = { cursors: Object.fromEntries(this.cursors), pending: [...this.pending.values()] };
    if (this.transport === "sse" || this.sseCursor) {
      snapshot.sseCursor = this.sseCursor;
      snapshot.unclaimed = Object.fromEntries(this.unclaimed);
    }
    return snapshot;
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
    if (this.es) this.es.close();
    this.es = null;
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
    if (this.ws || this.es) {
      // A connection attempt is already under way (a manual retry raced the timer): keep that one.
      return;
    }
    if (this.transport === "sse") {
      this.openStream(token);
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

  // SSE: opens the EventSource, resuming from the saved cursor. The browser keeps it reconnecting after cuts
  // (with Last-Event-ID); this is called again only after a refused stream (see sseRefused).
  openStream(token) {
    const generation = ++this.generation;
    const params = new URLSearchParams({ token });
    if (this.sseCursor) params.set("cursor", this.sseCursor);
    let es;
    try {
      es = new EventSource(`${this.sseBase}/events?${params}`);
    } catch (error) {
      this.scheduleReconnect(String(error));
      return;
    }
    this.es = es;
    this.sseStats.eventSources++;
    this.lastError = null;
    es.onopen = () => {
      if (generation !== this.generation) return;
      this.sseStats.opens++;
      this.touch();
    };
    // The heartbeat (an event named `ping`, protocol §21.2): only proves the stream alive.
    es.addEventListener("ping", () => {
      if (generation === this.generation) this.touch();
    });
    es.onmessage = (message) => {
      if (generation !== this.generation) return;
      this.touch();
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        console.warn("kf: ignoring an SSE message that is not JSON", message.data);
        return;
      }
      // The cursor first, so that what the page saves while handling the event already includes it.
      if (frame.type === "event" && message.lastEventId) this.sseCursor = message.lastEventId;
      this.handle(frame);
    };
    es.onerror = () => {
      if (generation !== this.generation) return;
      this.online = false;
      this.followingOn = -1;
      if (es.readyState !== EventSource.CLOSED) {
        // A cut or a server-side end (shutdown, slow consumer): the browser reconnects after `retry` by itself,
        // with Last-Event-ID. Nothing to do but show it.
        const error = this.lastError;
        this.status("offline", { why: error ? `${error.code}: ${error.message}` : "stream interrupted; reconnecting" });
        return;
      }
      // The server refused the stream (e.g. 401): EventSource gave up. Find out why, then decide.
      es.close();
      this.es = null;
      this.generation++;
      this.sseRefused();
    };
  }

  // SSE: the stream was refused with a status EventSource does not retry. Its body is out of reach, so ask the
  // server with a `ping` request carrying the same token what is wrong with it.
  async sseRefused() {
    if (this.stopped) return;
    let status = 0;
    let reply = null;
    try {
      const token = await this.o.getToken();
      const response = await fetch(`${this.sseBase}/ping`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      status = response.status;
      reply = await response.json().catch(() => null);
    } catch {
      status = 0; // no answer at all: the server is away
    }
    if (this.stopped) return;
    const code = reply && reply.code;
    const why = `stream refused (${code || (status ? `HTTP ${status}` : "no answer")})`;
    if (status === 401) {
      // Fetch a fresh token and reopen from the saved cursor; a fresh token refused again is final.
      this.authRefreshes += 1;
      const retry = this.authRefreshes <= 1 && this.o.onAuthError ? await this.o.onAuthError(code || "invalid_token", (reply && reply.message) || why) : false;
      if (!retry) {
        if (!this.stopped) this.stop(why);
        return;
      }
      this.connect();
      return;
    }
    if (status === 403 || status === 404) {
      this.stop(why);
      return;
    }
    if (status >= 200 && status < 300 && this.sseCursor) {
      // The token is fine, so the stream itself was refused: an unreadable cursor would be refused forever.
      // Start over without it; events already applied are dropped by seq.
      console.warn(`kf: ${why}; reopening without the saved cursor`);
      this.sseCursor = null;
      this.changed();
    }
    this.scheduleReconnect(why);
  }

  // SSE: events can only be replayed by a new stream. Reopen it without a cursor: every open conversation from
  // seq 1, and everything already applied is dropped by seq.
  sseReplay() {
    this.sseStats.replays++;
    if (this.es) this.es.close();
    this.es = null;
    this.generation++;
    this.online = false;
    this.sseCursor = null;
    this.changed();
    this.connect();
  }

  // Liveness (protocol §14): after a ping interval without a frame from the server, ask with our own `ping`
  // (WebSocket); 10 s later without any frame (SSE: nor heartbeat), the connection is dead: drop it and reconnect.
  touch() {
    this.clearLiveness();
    const interval = this.limits ? this.limits.ping_interval_ms : DEFAULT_PING_INTERVAL_MS;
    if (this.transport !== "sse") this.pingTimer = setTimeout(() => this.transmit({ type: "ping" }), interval);
    this.deadTimer = setTimeout(() => {
      console.warn("kf: nothing heard from the server for a ping interval and 10 s; reconnecting");
      this.dropConnection();
    }, interval + PONG_TIMEOUT_MS);
  }

  clearLiveness() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.deadTimer);
  }

  dropConnection() {
    if (this.transport === "sse") {
      this.clearLiveness();
      if (this.es) this.es.close();
      this.es = null;
      this.generation++;
      this.online = false;
      this.followingOn = -1;
      this.inFlight.clear();
      this.scheduleReconnect("client reconnects");
      return;
    }
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
    this.inFlight.clear(); // sent on the lost connection: resent after the next subscribe, same client ids
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
    const crowded = (error && error.code === "too_many_connections") || close.code === 4029;
    if (close.code === 1009) console.error("kf: a frame exceeded max_frame_bytes (client bug)");
    this.scheduleReconnect(why, crowded);
  }

  // Protocol §18: full jitter under a ceiling that doubles per failed attempt from 0.5 s up to 5 s, and resets on
  // every `welcome` (SSE: `following`); 10–30 s after `too_many_connections`.
  scheduleReconnect(why, crowded = false) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = crowded
      ? CROWDED_MIN_MS + Math.round(Math.random() * (CROWDED_MAX_MS - CROWDED_MIN_MS))
      : Math.max(50, Math.round(Math.random() * ceiling)); // full jitter
    this.attempt = Math.min(this.attempt + 1, 16);
    this.status("offline", { why, retryInMs: delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (!this.stopped && !this.ws && !this.es && !this.connecting) {
      this.attempt = 0;
      this.connect();
    }
  }

  transmit(frame) {
    if (this.transport === "sse") return false; // no socket: requests go as POSTs (request, transmitSend, typing)
    if (!this.online || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // Any request frame (open, close, typing…); false when offline.
  request(frame) {
    if (this.transport !== "sse") return this.transmit(frame);
    if (!this.online) return false;
    this.post(frame);
    return true;
  }

  // SSE: queues a POST after the ones before it, so sends keep their order.
  post(frame) {
    const run = () => this.postNow(frame);
    this.upstream = this.upstream.then(run, run);
    return this.upstream;
  }

  // SSE: one request as a POST; its reply frame (or an `error` standing for a failed request) is handled like a
  // frame from the socket.
  async postNow(frame, refreshed = false) {
    const { type, ...body } = frame;
    let response = null;
    let reply = null;
    try {
      const token = await this.o.getToken();
      response = await fetch(`${this.sseBase}/${type}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      if (response.status !== 204) reply = await response.json().catch(() => null);
    } catch (error) {
      reply = { type: "error", code: "unavailable", message: `request failed: ${error.message || error}` };
    }
    if (this.stopped) return;
    if (response && response.status === 401 && !refreshed && this.o.onAuthError) {
      const retry = await this.o.onAuthError((reply && reply.code) || "invalid_token", (reply && reply.message) || "token refused");
      if (retry) return this.postNow(frame, true);
    }
    if (!reply) {
      if (!response || response.ok) return; // 204: no reply
      reply = { type: "error", code: response.status >= 500 ? "unavailable" : "invalid_frame", message: `HTTP ${response.status}` };
    }
    // An error answers this request even when the server could not tell which (no id): say so.
    if (reply.type === "error" && !reply.id && frame.id) reply = { ...reply, id: frame.id };
    this.handle(reply);
  }

  // Whether sends to `conversation` can go out now (WebSocket: subscribed on this connection; SSE: following).
  canSend(conversation) {
    if (this.transport === "sse") return this.online && this.followingOn === this.generation;
    return this.subscribedOn.get(conversation) === this.generation;
  }

  handle(frame) {
    switch (frame.type) {
      case "welcome":
        this.online = true;
        this.welcomedAt = Date.now();
        this.attempt = 0; // a session opened: the next drop reconnects quickly again (protocol §18)
        this.authRefreshes = 0;
        this.lastError = null;
        this.serverEpoch = frame.epoch;
        this.limits = frame.limits;
        if (this.transport === "sse") {
          // The stream's silence timer now uses the announced ping interval; the browser reconnects cut streams.
          this.touch();
          this.status("online");
          this.o.onFrame && this.o.onFrame(frame);
          return;
        }
        this.touch();
        this.status("online");
        this.o.onFrame && this.o.onFrame(frame);
        for (const conversation of this.subscriptions) this.sendSubscribe(conversation);
        return;
      case "following":
        this.following(frame);
        return;
      case "inbox":
        // A cursor beyond a conversation's last seq does not describe its log (protocol §7.3, bad_cursor): what we
        // hold for it means nothing; start it again from seq 1.
        for (const record of frame.conversations || []) {
          const cursor = this.cursors.get(record.id);
          if (cursor && cursor.epoch === this.serverEpoch && cursor.seq > record.last_seq) {
            cursor.seq = 0;
            this.o.onReset && this.o.onReset(record.id);
            this.changed();
          }
        }
        break;
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
        if (this.transport === "sse" && !frame.id && TRANSIENT_STREAM_ERRORS.has(frame.code)) return; // the stream ends; the browser reconnects
        break;
      default:
        break;
    }
    this.o.onFrame && this.o.onFrame(frame);
  }

  // Subscribes to a conversation now (if online) and after every reconnect.
  // (SSE: the stream already follows every conversation of the principal; this claims its events for the page,
  // including those that arrived before.)
  subscribe(conversation) {
    const fresh = !this.subscriptions.has(conversation);
    this.subscriptions.add(conversation);
    if (this.transport === "sse") {
      const early = this.unclaimed.get(conversation);
      if (early) {
        this.unclaimed.delete(conversation);
        for (const event of early) this.event(event);
        this.changed();
      }
      return;
    }
    if (fresh && this.online) this.sendSubscribe(conversation);
  }

  // (SSE: nothing goes to the server, which decides what the stream follows; the page just stops claiming the
  // conversation's events, which are held like those of any conversation it has not subscribed to.)
  unsubscribe(conversation) {
    if (!this.subscriptions.delete(conversation)) return;
    if (this.transport !== "sse") this.transmit({ type: "unsubscribe", conversation });
  }

  forget(conversation) {
    this.subscriptions.delete(conversation);
    this.cursors.delete(conversation);
    this.unclaimed.delete(conversation);
    for (const [clientId, p] of this.pending) if (p.conversation === conversation) this.pending.delete(clientId);
    this.inFlight.delete(conversation);
    clearTimeout(this.resendTimers.get(conversation));
    this.resendTimers.delete(conversation);
    this.replayEnds.delete(conversation);
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
    // The end of the replay (protocol §8.5): caught up once `last_seq` is applied — maybe already.
    if (typeof frame.last_seq === "number" && frame.last_seq > cursor.seq) this.replayEnds.set(conversation, frame.last_seq);
    else this.caughtUp(conversation);
    // Unacknowledged sends go again, in order, with the same client ids: the server stores each once.
    this.inFlight.delete(conversation);
    this.pump();
  }

  caughtUp(conversation) {
    this.replayEnds.delete(conversation);
    this.o.onCaughtUp && this.o.onCaughtUp(conversation);
  }

  // SSE: the stream has started (after `welcome` and `inbox`); the events of every conversation follow.
  following(frame) {
    for (const [conversation, cursor] of this.cursors) {
      // A reset, or cursors from another store epoch: what we hold for them means nothing now.
      if (frame.reset || (cursor.epoch && cursor.epoch !== this.serverEpoch)) {
        cursor.seq = 0;
        this.o.onReset && this.o.onReset(conversation);
      }
      cursor.epoch = this.serverEpoch;
    }
    if (frame.reset) this.unclaimed.clear();
    this.followingOn = this.generation;
    this.attempt = 0; // a stream opened (protocol §18)
    this.changed();
    this.o.onFrame && this.o.onFrame(frame);
    // Unacknowledged sends go again, in order, with the same client ids: the server stores each once.
    this.inFlight.clear();
    this.pump();
  }

  // SSE: keeps an event of a conversation the page has not subscribed to (yet).
  hold(event) {
    const held = this.unclaimed.get(event.conversation) || [];
    if (!held.some((e) => e.seq === event.seq)) held.push(event);
    held.sort((a, b) => a.seq - b.seq);
    this.unclaimed.delete(event.conversation); // re-inserted last: most recently used
    this.unclaimed.set(event.conversation, held.slice(-MAX_UNCLAIMED_EVENTS));
    while (this.unclaimed.size > MAX_UNCLAIMED_CONVERSATIONS) this.unclaimed.delete(this.unclaimed.keys().next().value);
    this.changed();
  }

  event(event) {
    if (this.transport === "sse" && !this.subscriptions.has(event.conversation)) {
      this.hold(event);
      return;
    }
    const cursor = this.cursors.get(event.conversation) || { seq: 0, epoch: this.serverEpoch };
    if (event.seq <= cursor.seq) {
      this.sseStats.dropped++;
      return; // already applied (replay overlapping live delivery)
    }
    if (event.seq !== cursor.seq + 1) {
      if (this.transport === "sse") {
        // Should not happen on one stream: replay from a stream without a cursor, dropping what we have.
        console.warn(`kf: seq gap in ${event.conversation}: ${cursor.seq} -> ${event.seq}; replaying`);
        this.sseReplay();
        return;
      }
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
    this.sseStats.applied++;
    if (event.client_id && this.pending.has(event.client_id) && this.isMine(event)) {
      // Our send is committed (its ack may still be on its way): the next one may go.
      this.settle(event.client_id);
    }
    this.o.onEvent && this.o.onEvent(event);
    if (this.replayEnds.has(event.conversation) && event.seq >= this.replayEnds.get(event.conversation)) this.caughtUp(event.conversation);
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
    this.pump();
    return p.client_id;
  }

  // Puts the first pending send of each conversation on the wire, unless one of it is already there or waits for
  // its retry: one at a time per conversation, so the log keeps the order the user wrote in (protocol §16).
  pump() {
    const seen = new Set();
    for (const p of this.pending.values()) {
      const conversation = p.conversation;
      if (seen.has(conversation)) continue;
      seen.add(conversation);
      if (this.inFlight.has(conversation) || this.resendTimers.has(conversation) || !this.canSend(conversation)) continue;
      this.inFlight.set(conversation, p.client_id);
      this.transmitSend(p);
    }
  }

  // A pending send is done (acked, seen committed, or failed for good): drop it and let the next one go.
  settle(clientId) {
    const p = this.pending.get(clientId);
    if (!p) return;
    this.pending.delete(clientId);
    if (this.inFlight.get(p.conversation) === clientId) this.inFlight.delete(p.conversation);
    this.changed();
    this.pump();
  }

  transmitSend(p) {
    const frame = { type: "send", id: `send:${p.client_id}`, conversation: p.conversation, client_id: p.client_id, body: p.body };
    if (this.transport === "sse") this.post(frame);
    else this.transmit(frame);
  }

  // A typing signal (ephemeral: sent only when online, errors ignored).
  typing(conversation, active) {
    const frame = { type: "typing", id: "typing", conversation, active };
    if (this.transport !== "sse") this.transmit(frame);
    else if (this.online) this.postNow(frame); // not queued behind sends: it is stale by then
  }

  pendingFor(conversation) {
    return [...this.pending.values()].filter((p) => p.conversation === conversation);
  }

  acked(frame) {
    this.settle(frame.client_id);
    this.changed();
    this.o.onAck && this.o.onAck(frame.client_id, frame.seq, frame.conversation);
  }

  // Handles errors that answer our own requests; returns true when consumed.
  errored(frame) {
    const id = frame.id || "";
    if (!frame.id) this.lastError = frame; // a refused hello, or a reason for the close that follows
    if (id === "typing") return true; // ephemeral: a refused or rate-limited typing signal is simply dropped
    if (id.startsWith("sub:") && frame.code === "bad_cursor") {
      // Our cursor is beyond the server's log (protocol §7.3): what we hold means nothing; replay from 0.
      const conversation = id.slice(4);
      const cursor = this.cursors.get(conversation);
      if (cursor) cursor.seq = 0;
      this.o.onReset && this.o.onReset(conversation);
      this.changed();
      this.sendSubscribe(conversation);
      return true;
    }
    if (id.startsWith("send:")) {
      const clientId = id.slice(5);
      const p = this.pending.get(clientId);
      if (!p) return true;
      if (!FINAL_SEND_ERRORS.has(frame.code)) {
        // Retried before anything behind it in its conversation goes (protocol §16).
        p.retries = (p.retries || 0) + 1;
        this.sendStats.retried++;
        const delay = Math.min(30000, 1000 * 2 ** Math.min(p.retries - 1, 5)) * (0.5 + Math.random() / 2);
        const conversation = p.conversation;
        if (this.inFlight.get(conversation) === clientId) this.inFlight.delete(conversation);
        clearTimeout(this.resendTimers.get(conversation));
        this.resendTimers.set(
          conversation,
          setTimeout(() => {
            this.resendTimers.delete(conversation);
            this.pump();
          }, delay),
        );
      } else {
        this.settle(clientId);
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
  if (status === "offline" && detail && detail.retryInMs !== undefined) text = `offline · retrying in ${Math.ceil(detail.retryInMs / 1000)} s`;
  else if (status === "offline") text = "offline · reconnecting…";
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
