// client.js: KfClient, the kf protocol (v1) for a browser page, over WebSocket or SSE.
//
// It owns what every kf page needs and nothing page-specific:
// - connect, `hello` with a token, reconnect with exponential backoff and full jitter, capped at 5 s and reset by
//   every `welcome` (protocol §18); reconnect at once when the page becomes visible or the network comes back,
//   and drop the connection at once when the browser says it went offline;
// - answer `ping` with `pong`; ping after a silence and drop a connection (or SSE stream) that stays silent
//   (protocol §14);
// - resume (protocol §17): per conversation it keeps the last applied seq and the epoch it belongs to, subscribes
//   "after" it on every (re)connect, and drops every event with seq <= the last applied;
// - sends: each message gets a client id; until its `ack` (or its own event) it stays pending and is resent with
//   the same client id after a reconnect, a reload or a transport switch (the server stores it once, §15). Sends
//   go one at a time per conversation, so that a refused one (rate_limited…) is retried before those behind it
//   and the log keeps the order the user wrote in (protocol §16); a visitor's `open()` is kept the same way;
// - transport "auto" (the default): WebSocket first; when WebSockets do not work here (the constructor throws, or
//   two attempts in a row end before any `welcome` without the server saying why) it switches to SSE for the rest
//   of the session, and remembers it so that a new page starts on SSE for `wsRetryAfterMs` (10 minutes);
// - persistence (option `storage`): the state is read at construction and written after every change.
//
// Over SSE (protocol §21) the same API runs on a native EventSource downstream (`GET {sseBase}/events`, one stream
// that follows all of the principal's conversations) and fetch POSTs upstream (`POST {sseBase}/{type}`).
// `subscribe` there only claims a conversation's events for the page (those that came before included) and
// `unsubscribe` sends nothing. The browser reconnects the EventSource by itself after a cut, sending
// `Last-Event-ID` (the cursor of the last `event`); the cursor is also kept in the state so a reloaded page
// resumes with `?cursor=`. Only a stream the server refused for good (a 401: EventSource stops), or one found
// dead, is reopened here, with a fresh token and the saved cursor. Events are still dropped when their seq <= the
// last applied of their conversation: exactly once on the page, whatever the transport did.

import { crowdedDelay, reconnectDelay, sendRetryDelay } from "./backoff.js";
import { defaultSseBase, newId, resolveEnv, wsUrl } from "./env.js";
import { defaultFilesBase, fileLink, uploadFile } from "./files.js";
import { KfRequestError, Requests } from "./requests.js";
import { openEventStream, postFrame, streamUrl } from "./sse.js";
import { StateStore, sanitizeState } from "./storage.js";
import { closeSocket, openWebSocket, sendOnSocket } from "./ws.js";

/** @typedef {import("./types.js").KfClientOptions} KfClientOptions */
/** @typedef {import("./types.js").Frame} Frame */
/** @typedef {import("./types.js").EventFrame} EventFrame */
/** @typedef {import("./types.js").ErrorFrame} ErrorFrame */
/** @typedef {import("./types.js").PendingSend} PendingSend */
/** @typedef {import("./types.js").Cursor} Cursor */
/** @typedef {import("./types.js").ClientState} ClientState */
/** @typedef {import("./types.js").Status} Status */
/** @typedef {import("./types.js").StatusDetail} StatusDetail */
/** @typedef {import("./types.js").Actor} Actor */
/** @typedef {import("./types.js").OpenRequest} OpenRequest */
/** @typedef {import("./types.js").AttributeValue} AttributeValue */
/** @typedef {import("./types.js").DefinitionsFrame} DefinitionsFrame */
/** @typedef {import("./types.js").AckFrame} AckFrame */
/** @typedef {import("./types.js").Attachment} Attachment */
/** @typedef {import("./types.js").FileLink} FileLink */

/**
 * The events a client emits: to the `on…` callbacks of its options and to listeners added with `on()`.
 * @typedef {object} ClientEvents
 * @property {[Status, StatusDetail | undefined]} status
 * @property {[Frame]} frame
 * @property {[EventFrame]} event
 * @property {[string]} reset
 * @property {[string]} caughtUp
 * @property {[string, Actor, number]} seen
 * @property {[string, number, string]} ack
 * @property {[string, string, string | undefined, PendingSend]} sendFailed
 * @property {[]} change
 * @property {["ws" | "sse", string]} transport
 */

/** @type {Record<keyof ClientEvents, keyof KfClientOptions>} */
const CALLBACKS = {
  status: "onStatus",
  frame: "onFrame",
  event: "onEvent",
  reset: "onReset",
  caughtUp: "onCaughtUp",
  seen: "onSeen",
  ack: "onAck",
  sendFailed: "onSendFailed",
  change: "onChange",
  transport: "onTransport",
};

export const PROTOCOL_VERSION = 1;

// How long after our `ping` (sent after a ping interval of silence) a connection that stays silent is dead.
const PONG_TIMEOUT_MS = 10000;
const DEFAULT_PING_INTERVAL_MS = 25000;
// Send errors that are final (protocol §10); any other code, known or not, is retried with the same client id.
const FINAL_SEND_ERRORS = new Set(["bad_json", "unknown_type", "invalid_frame", "forbidden", "not_found", "invalid_state", "too_large"]);
// Errors refusing `hello` after which reconnecting cannot help.
const FINAL_HELLO_ERRORS = new Set(["unsupported_version", "forbidden", "hello_required"]);
// Stream-level error codes after which the server ends an SSE stream and the browser reconnects by itself.
const TRANSIENT_STREAM_ERRORS = new Set(["unavailable", "slow_consumer", "internal"]);
// Most events kept for conversations the page has not subscribed to (yet): an SSE stream delivers the events of
// a conversation the visitor just opened before the `opened` reply says which one it is.
const MAX_UNCLAIMED_EVENTS = 500;
const MAX_UNCLAIMED_CONVERSATIONS = 16;
// Transport "auto": WebSocket attempts in a row that may end before any `welcome` (without an `error` from the
// server) before the client switches to SSE. Two, not one: a single cut during the handshake happens anywhere.
export const WS_FAILURES_BEFORE_FALLBACK = 2;
// Transport "auto": how long a new client starts on SSE after WebSockets failed here.
export const DEFAULT_WS_RETRY_AFTER_MS = 10 * 60 * 1000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30000;
// Requests the server answers with nothing (or, for `ping`, with a `pong` that carries no id, §3).
const NO_REPLY = new Set(["typing", "read", "pong", "ping"]);

/** @param {unknown} error */
const errorText = (error) => (error instanceof Error ? error.message : String(error));

export class KfClient {
  /** @param {KfClientOptions} options */
  constructor(options) {
    if (!options || typeof options.getToken !== "function") throw new TypeError("kf: options.getToken is required");
    this.o = options;
    this.env = resolveEnv(options);
    /** @type {"auto" | "ws" | "sse"} */
    this.mode = options.transport === "ws" || options.transport === "sse" ? options.transport : "auto";
    this.url = options.url || (this.mode === "sse" ? "" : wsUrl());
    this.sseBase = (options.sseBase || defaultSseBase(options.url)).replace(/\/+$/, "");
    this.filesBase = (options.filesBase || defaultFilesBase(options.url)).replace(/\/+$/, "");
    this.wsRetryAfterMs = options.wsRetryAfterMs ?? DEFAULT_WS_RETRY_AFTER_MS;
    this.store = options.storage ? new StateStore(options.storage, this.env.logger) : null;
    /** @type {ClientState} */
    const state = options.state ? sanitizeState(/** @type {Record<string, unknown>} */ (options.state)).state : (this.store && this.store.load()) || {};
    // Transport "auto": when WebSockets last failed here; a recent failure starts this client on SSE.
    this.fallbackAt = state.fallbackAt || 0;
    const sinceFallback = this.env.now() - this.fallbackAt; // negative: a clock set back, which must not pin SSE
    /** @type {"ws" | "sse"} the transport in use */
    this.transport = this.mode === "sse" || (this.mode === "auto" && this.fallbackAt && sinceFallback >= 0 && sinceFallback < this.wsRetryAfterMs) ? "sse" : "ws";
    if (this.mode === "auto" && this.transport === "ws") this.fallbackAt = 0; // the wait is over: WebSockets again
    this.wsFailures = 0; // WebSocket attempts ended before a welcome, in a row
    this.wsWorked = false; // a WebSocket session opened in this client's life: failures since are outages
    // SSE: the `id` of the last `event` received (an opaque cursor over all conversations of the stream).
    /** @type {string | null} */
    this.sseCursor = state.sseCursor || null;
    /** @type {Map<string, EventFrame[]>} SSE: conversation id -> events not yet claimed by a subscribe(), by seq */
    this.unclaimed = new Map(Object.entries(state.unclaimed || {}));
    /** @type {EventSource | null} SSE: the EventSource */
    this.es = null;
    this.followingOn = -1; // SSE: the generation whose `following` arrived
    /** @type {Promise<Frame | null>} SSE: POSTs that must keep their order (open, send, close) go one by one */
    this.upstream = Promise.resolve(null);
    // SSE counters, for debugging and the browser check: EventSource objects made, `open`s they fired (one per
    // browser (re)connect), events applied and events dropped as already applied.
    this.sseStats = { eventSources: 0, opens: 0, applied: 0, dropped: 0, replays: 0 };
    /** @type {Map<string, Cursor>} conversation id -> cursor */
    this.cursors = new Map(Object.entries(state.cursors || {}));
    /** @type {Map<string, PendingSend>} client id -> send; insertion order is send order */
    this.pending = new Map((state.pending || []).map((p) => [p.client_id, p]));
    /** @type {Set<string>} */
    this.subscriptions = new Set();
    /** @type {WebSocket | null} */
    this.ws = null;
    this.generation = 0; // bumped per connection attempt: handlers of older ones ignore what they see
    this.online = false;
    this.attempt = 0;
    this.stopped = true;
    /** @type {unknown} */
    this.timer = null;
    /** @type {unknown} */
    this.pingTimer = null;
    /** @type {unknown} */
    this.deadTimer = null;
    this.connecting = false;
    this.welcomedAt = 0;
    this.authRefreshes = 0; // token refreshes since the last welcome
    /** @type {ErrorFrame | null} the last error without id: why the server is about to close */
    this.lastError = null;
    /** @type {string | null} */
    this.serverEpoch = null;
    /** @type {Record<string, number> | null} `welcome.limits` */
    this.limits = null;
    /** @type {Map<string, number>} conversation -> generation its `subscribed` arrived on */
    this.subscribedOn = new Map();
    /** @type {Map<string, number>} conversation -> `subscribed.last_seq` not applied yet (the end of its replay) */
    this.replayEnds = new Map();
    /** @type {Map<string, Map<string, { from: Actor, seq: number }>>} conversation -> participant -> seen mark */
    this.seenMarks = new Map();
    /** @type {Map<string, string>} conversation -> client id of its one send on the wire */
    this.inFlight = new Map();
    /** @type {Map<string, unknown>} conversation -> timer of a refused send's retry (the others wait behind it) */
    this.resendTimers = new Map();
    this.sendStats = { retried: 0 }; // sends refused for a reason worth a retry (rate_limited…), for the browser check
    /** @type {Map<string, OpenRequest>} client id -> an `open` not answered yet; insertion order is request order */
    this.opens = new Map((state.opens || []).map((o) => [o.client_id, o]));
    /** @type {Set<string>} client ids of opens on the wire (resent after a reconnect) */
    this.opensInFlight = new Set();
    /** @type {Map<string, { resolve: (frame: Frame) => void, reject: (error: KfRequestError) => void }[]>} */
    this.openWaiters = new Map();
    /** @type {unknown} the retry of a refused open (the others wait behind it) */
    this.openRetryTimer = null;
    /** @type {Map<string, number>} client id -> refusals of an open worth a retry */
    this.openRetries = new Map();
    this.requests = new Requests(this.env.timers);
    this.requestCounter = 0;
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    this.browserOffline = false; // the last of the window's online/offline events was `offline`
    this.saveQueued = false;
    this.onOnline = () => {
      this.browserOffline = false;
      this.retryNow(true);
    };
    this.onOffline = () => {
      this.browserOffline = true;
      this.goOffline();
    };
    this.onVisible = () => {
      if (!this.env.document || this.env.document.visibilityState === "visible") this.retryNow();
    };
  }

  // ---- events ----

  /**
   * Adds a listener (beside the `on…` callback of the options); returns a function that removes it.
   * @template {keyof ClientEvents} K
   * @param {K} name
   * @param {(...args: ClientEvents[K]) => void} listener
   * @returns {() => void}
   */
  on(name, listener) {
    const set = this.listeners.get(name) || new Set();
    set.add(listener);
    this.listeners.set(name, set);
    return () => void set.delete(listener);
  }

  /**
   * @template {keyof ClientEvents} K
   * @param {K} name
   * @param {ClientEvents[K]} args
   */
  emit(name, ...args) {
    // The callbacks differ in their parameters; `args` matches the one named by `name` (ClientEvents says so).
    const callback = /** @type {((...a: unknown[]) => void) | undefined} */ (this.o[CALLBACKS[name]]);
    if (callback) callback(...args);
    const set = this.listeners.get(name);
    if (set) for (const listener of [...set]) listener(...args);
  }

  /**
   * @param {Status} status
   * @param {StatusDetail} [detail]
   */
  status(status, detail) {
    this.emit("status", status, detail);
  }

  // Cursors, pending sends or the transport changed: tell the page and persist. Writes are coalesced to one per
  // task (a replay applies hundreds of events in a row), and happen before the browser can do anything else.
  changed() {
    this.emit("change");
    if (!this.store || this.saveQueued) return;
    this.saveQueued = true;
    queueMicrotask(() => {
      this.saveQueued = false;
      if (this.store) this.store.save(this.snapshot());
    });
  }

  /**
   * What must survive a reload: give it back as `state`, or let `storage` keep it.
   * @returns {ClientState}
   */
  snapshot() {
    /** @type {ClientState} */
    const snapshot = { cursors: Object.fromEntries(this.cursors), pending: [...this.pending.values()] };
    if (this.transport === "sse" || this.sseCursor) {
      snapshot.sseCursor = this.sseCursor;
      snapshot.unclaimed = Object.fromEntries(this.unclaimed);
    }
    if (this.fallbackAt) snapshot.fallbackAt = this.fallbackAt;
    if (this.opens.size) snapshot.opens = [...this.opens.values()];
    return snapshot;
  }

  // ---- connection ----

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.env.window) {
      this.env.window.addEventListener("online", this.onOnline);
      this.env.window.addEventListener("offline", this.onOffline);
    }
    if (this.env.document) this.env.document.addEventListener("visibilitychange", this.onVisible);
    this.connect();
  }

  /** @param {string} [why] */
  stop(why) {
    this.stopped = true;
    if (this.env.window) {
      this.env.window.removeEventListener("online", this.onOnline);
      this.env.window.removeEventListener("offline", this.onOffline);
    }
    if (this.env.document) this.env.document.removeEventListener("visibilitychange", this.onVisible);
    this.env.timers.clearTimeout(this.timer);
    this.clearLiveness();
    this.generation++;
    if (this.ws) closeSocket(this.ws, 1000, "bye");
    this.ws = null;
    if (this.es) this.es.close();
    this.es = null;
    this.online = false;
    this.requests.failAll("stopped", "the client was stopped");
    this.env.timers.clearTimeout(this.openRetryTimer);
    this.openRetryTimer = null;
    this.opensInFlight.clear();
    for (const clientId of this.openWaiters.keys()) this.settleOpen(clientId, null, new KfRequestError("stopped", "the client was stopped; the open stays pending"));
    this.status("stopped", why ? { why } : undefined);
  }

  /** @param {StatusDetail} [detail] shown with the "connecting" status (e.g. a fallback) */
  async connect(detail) {
    if (this.stopped || this.connecting) return;
    this.env.timers.clearTimeout(this.timer);
    this.status("connecting", { transport: this.transport, ...detail });
    let token;
    this.connecting = true;
    try {
      token = await this.o.getToken();
    } catch (error) {
      this.connecting = false;
      this.scheduleReconnect(`cannot get a token: ${errorText(error)}`);
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
    try {
      if (!this.env.WebSocket) throw new Error("no WebSocket in this environment");
      this.ws = openWebSocket(this.env.WebSocket, this.url, {
        onOpen: () => {
          if (generation !== this.generation) return;
          sendOnSocket(this.ws, { type: "hello", v: PROTOCOL_VERSION, token });
          this.touch();
        },
        onActivity: () => {
          if (generation === this.generation) this.touch();
        },
        onFrame: (frame) => {
          if (generation === this.generation) this.handle(frame);
        },
        onClose: (close) => {
          if (generation === this.generation) this.closed(close);
        },
        logger: this.env.logger,
      });
    } catch (error) {
      const why = `cannot open a WebSocket: ${errorText(error)}`;
      if (this.mode === "auto") this.fallBack(why);
      else this.scheduleReconnect(why);
      return;
    }
    this.lastError = null;
    // A handshake that never completes (a blackholed SYN, a proxy holding the upgrade) is as dead as a silent
    // connection: the same timer covers it, instead of the browser's own timeout of minutes.
    this.touch();
  }

  // Transport "auto": WebSockets do not work here. Everything carries over — cursors, pending sends (resent with
  // the same client ids once the stream follows), subscriptions (claims on the stream) — and the choice is saved.
  /** @param {string} why */
  fallBack(why) {
    this.transport = "sse";
    this.fallbackAt = this.env.now();
    this.wsFailures = 0;
    this.attempt = 0;
    this.subscribedOn.clear();
    this.inFlight.clear();
    this.changed();
    this.emit("transport", "sse", why);
    this.connect({ why: `${why}; switching to SSE`, transport: "sse", fallback: true });
  }

  // SSE: opens the EventSource, resuming from the saved cursor. The browser keeps it reconnecting after cuts
  // (with Last-Event-ID); this is called again only after a refused or dead stream.
  /** @param {string} token */
  openStream(token) {
    const generation = ++this.generation;
    try {
      if (!this.env.EventSource) throw new Error("no EventSource in this environment");
      this.es = openEventStream(this.env.EventSource, streamUrl(this.sseBase, token, this.sseCursor), {
        onOpen: () => {
          if (generation !== this.generation) return;
          this.sseStats.opens++;
          this.touch();
        },
        onActivity: () => {
          if (generation === this.generation) this.touch();
        },
        onFrame: (frame, lastEventId) => {
          if (generation !== this.generation) return;
          // The cursor first, so that what is saved while handling the event already includes it.
          if (frame.type === "event" && lastEventId) this.sseCursor = lastEventId;
          this.handle(frame);
        },
        onError: (closed) => {
          if (generation === this.generation) this.streamError(closed);
        },
        logger: this.env.logger,
      });
    } catch (error) {
      this.scheduleReconnect(`cannot open an EventSource: ${errorText(error)}`);
      return;
    }
    this.sseStats.eventSources++;
    this.lastError = null;
    this.touch(); // a stream that never opens is dead too (§14)
  }

  /** @param {boolean} closed whether the EventSource gave up (a refused stream) */
  streamError(closed) {
    this.online = false;
    this.followingOn = -1;
    if (!closed) {
      // A cut or a server-side end (shutdown, slow consumer): the browser reconnects after `retry` by itself,
      // with Last-Event-ID. Nothing to do but show it.
      const error = this.lastError;
      this.status("offline", { why: error ? `${error.code}: ${error.message}` : "stream interrupted; reconnecting" });
      return;
    }
    // The server refused the stream (e.g. 401): EventSource gave up. Find out why, then decide.
    if (this.es) this.es.close();
    this.es = null;
    this.generation++;
    this.sseRefused();
  }

  // SSE: the stream was refused with a status EventSource does not retry. Its body is out of reach, so ask the
  // server with a `ping` request carrying the same token what is wrong with it (§21.5).
  async sseRefused() {
    if (this.stopped) return;
    let status = 0;
    /** @type {Frame | null} */
    let reply = null;
    try {
      if (!this.env.fetch) throw new Error("no fetch in this environment");
      const token = await this.o.getToken();
      ({ status, reply } = await postFrame(this.env.fetch, this.sseBase, token, { type: "ping" }));
    } catch {
      status = 0; // no answer at all: the server is away
    }
    if (this.stopped) return;
    const code = reply && typeof reply.code === "string" ? reply.code : null;
    const message = reply && typeof reply.message === "string" ? reply.message : null;
    const why = `stream refused (${code || (status ? `HTTP ${status}` : "no answer")})`;
    if (status === 401) {
      // Fetch a fresh token and reopen from the saved cursor; a fresh token refused again is final.
      this.authRefreshes += 1;
      const retry = this.authRefreshes <= 1 && this.o.onAuthError ? await this.o.onAuthError(code || "invalid_token", message || why) : false;
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
      this.env.logger.warn(`kf: ${why}; reopening without the saved cursor`);
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
    const interval = this.limits && this.limits.ping_interval_ms > 0 ? this.limits.ping_interval_ms : DEFAULT_PING_INTERVAL_MS;
    if (this.transport !== "sse") this.pingTimer = this.env.timers.setTimeout(() => this.transmit({ type: "ping" }), interval);
    this.deadTimer = this.env.timers.setTimeout(() => {
      this.env.logger.warn("kf: nothing heard from the server for a ping interval and 10 s; reconnecting");
      this.dropConnection();
    }, interval + PONG_TIMEOUT_MS);
  }

  clearLiveness() {
    this.env.timers.clearTimeout(this.pingTimer);
    this.env.timers.clearTimeout(this.deadTimer);
  }

  // Drops the connection (or stream) and reconnects after the usual backoff: for a connection found dead, and for
  // tests and pages that want to see a resume.
  dropConnection() {
    this.drop("client reconnects", true);
  }

  // The browser says the network is gone: stop waiting for a dead connection to time out. A reconnect is still
  // scheduled (an `offline` event can be wrong), and `online` brings it forward.
  goOffline() {
    if (this.stopped) return;
    this.drop("the browser is offline", false);
  }

  /**
   * @param {string} why
   * @param {boolean} countsAsFailure whether it may count towards the switch to SSE (not when the network is down)
   */
  drop(why, countsAsFailure) {
    if (this.transport === "sse") {
      this.clearLiveness();
      if (this.es) this.es.close();
      this.es = null;
      this.generation++;
      this.online = false;
      this.followingOn = -1;
      this.inFlight.clear();
      this.scheduleReconnect(why);
      return;
    }
    const ws = this.ws;
    this.generation++;
    this.ws = null;
    if (ws) closeSocket(ws, 4000, why);
    this.closed({ code: 4000, reason: why }, countsAsFailure);
  }

  /**
   * A WebSocket connection ended.
   * @param {{ code: number, reason: string }} close
   * @param {boolean} [countsAsFailure]
   */
  async closed(close, countsAsFailure = true) {
    this.clearLiveness();
    this.ws = null;
    this.online = false;
    this.subscribedOn.clear();
    this.inFlight.clear(); // sent on the lost connection: resent after the next subscribe, same client ids
    this.opensInFlight.clear(); // likewise after the next welcome
    this.requests.failAll("disconnected", "the connection closed before the reply");
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
      const retry = this.authRefreshes <= 1 && this.o.onAuthError ? await this.o.onAuthError(error.code, error.message || "") : false;
      if (!retry) {
        if (!this.stopped) this.stop(why);
        return;
      }
    }
    // Transport "auto": an attempt that ended before any welcome, the server silent about why (a refused
    // handshake, a proxy that drops upgrades), while the network is up. Once a session has opened here, failures
    // are outages (a server restart) that SSE would not cure, and the client stays on WebSocket.
    if (this.mode === "auto" && !this.wsWorked && !error && countsAsFailure && !this.isBrowserOffline()) {
      this.wsFailures += 1;
      if (this.wsFailures >= WS_FAILURES_BEFORE_FALLBACK) {
        this.fallBack(`WebSocket failed ${this.wsFailures} times in a row before a welcome (${why})`);
        return;
      }
    }
    const crowded = (error && error.code === "too_many_connections") || close.code === 4029;
    if (close.code === 1009) this.env.logger.error("kf: a frame exceeded max_frame_bytes (client bug)");
    this.scheduleReconnect(why, crowded);
  }

  isBrowserOffline() {
    return this.browserOffline || !!(this.env.navigator && this.env.navigator.onLine === false);
  }

  // Protocol §18: full jitter under a ceiling that doubles per failed attempt from 0.5 s up to 5 s, and resets on
  // every `welcome` (SSE: `following`); 10–30 s after `too_many_connections`.
  /**
   * @param {string} why
   * @param {boolean} [crowded]
   */
  scheduleReconnect(why, crowded = false) {
    if (this.stopped) return;
    this.env.timers.clearTimeout(this.timer);
    const delay = crowded ? crowdedDelay(this.env.random) : reconnectDelay(this.attempt, this.env.random);
    this.attempt = Math.min(this.attempt + 1, 16);
    this.status("offline", { why, retryInMs: delay });
    this.timer = this.env.timers.setTimeout(() => this.connect(), delay);
  }

  /**
   * Reconnects now (page visible again, network back), with the backoff reset (protocol §18).
   * @param {boolean} [networkBack] the browser's `online` event: an EventSource still waiting for its own
   *   reconnect (which browsers space out by seconds after failures) is replaced at once, from the same cursor
   */
  retryNow(networkBack = false) {
    if (networkBack && this.transport === "sse" && this.es && !this.online && !this.stopped) {
      this.es.close();
      this.es = null;
      this.generation++;
      this.clearLiveness();
    }
    if (!this.stopped && !this.ws && !this.es && !this.connecting) {
      this.attempt = 0;
      this.connect();
    }
  }

  // ---- requests ----

  /**
   * Writes a frame on the WebSocket; false when not online (or on SSE, where requests are POSTs).
   * @param {Frame} frame
   * @returns {boolean}
   */
  transmit(frame) {
    if (this.transport === "sse") return false;
    if (!this.online) return false;
    return sendOnSocket(this.ws, frame);
  }

  /**
   * Sends a request frame now without waiting for its reply (which, like an `error` answering it, reaches
   * `onFrame`); false when not connected.
   * @param {Frame} frame
   * @returns {boolean}
   */
  sendFrame(frame) {
    if (this.transport !== "sse") return this.transmit(frame);
    if (!this.online) return false;
    this.post(frame).catch(() => {});
    return true;
  }

  /**
   * Sends a request frame and resolves with its reply, matched by `id` (one is made up when the frame has none):
   * rejects with a KfRequestError carrying the server's `error` code, or "offline" (not connected now),
   * "disconnected" (the connection dropped before the reply), "timeout", "stopped". Requests the server answers
   * with nothing (`typing`, `read`, `ping`, `pong`) resolve with null once written (SSE: once posted). Replies and
   * errors reach `onFrame` as well. Nothing is queued or retried: `open` and `send`-like work that must survive a
   * disconnect belongs in `send()` or in the caller's retry with the same client id.
   * @param {Frame} frame
   * @param {{ timeoutMs?: number }} [options]
   * @returns {Promise<Frame | null>}
   */
  request(frame, options = {}) {
    if (!this.online) return Promise.reject(new KfRequestError("offline", "not connected"));
    const id = typeof frame.id === "string" && frame.id ? frame.id : `req:${++this.requestCounter}`;
    const out = { ...frame, id };
    if (this.transport === "sse") {
      return this.post(out).then((reply) => {
        if (reply && reply.type === "error") throw new KfRequestError(String(reply.code), typeof reply.message === "string" ? reply.message : undefined, reply);
        return reply;
      });
    }
    if (NO_REPLY.has(out.type)) return this.transmit(out) ? Promise.resolve(null) : Promise.reject(new KfRequestError("offline", "not connected"));
    if (!this.ws || this.ws.readyState !== 1) return Promise.reject(new KfRequestError("offline", "not connected"));
    const reply = this.requests.wait(id, options.timeoutMs ?? this.o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.transmit(out);
    return reply;
  }

  /**
   * SSE: queues a POST after the ones before it, so sends keep their order. Resolves with the reply (null: none).
   * @param {Frame} frame
   * @returns {Promise<Frame | null>}
   */
  post(frame) {
    const run = () => this.postNow(frame);
    this.upstream = this.upstream.then(run, run);
    return this.upstream;
  }

  /**
   * SSE: one request as a POST; its reply frame (or an `error` standing for a failed request) is handled like a
   * frame from the socket, then returned.
   * @param {Frame} frame
   * @param {boolean} [refreshed] a fresh token was fetched for it already
   * @returns {Promise<Frame | null>}
   */
  async postNow(frame, refreshed = false) {
    let status = 0;
    /** @type {Frame | null} */
    let reply = null;
    try {
      if (!this.env.fetch) throw new Error("no fetch in this environment");
      const token = await this.o.getToken();
      ({ status, reply } = await postFrame(this.env.fetch, this.sseBase, token, frame));
    } catch (error) {
      reply = { type: "error", code: "unavailable", message: `request failed: ${errorText(error)}` };
    }
    if (this.stopped) return null;
    if (status === 401 && !refreshed && this.o.onAuthError) {
      const code = reply && typeof reply.code === "string" ? reply.code : "invalid_token";
      const message = reply && typeof reply.message === "string" ? reply.message : "token refused";
      if (await this.o.onAuthError(code, message)) return this.postNow(frame, true);
    }
    if (!reply) {
      if (status === 0 || (status >= 200 && status < 300)) return null; // 204: no reply
      reply = { type: "error", code: status >= 500 ? "unavailable" : "invalid_frame", message: `HTTP ${status}` };
    }
    // An error answers this request even when the server could not tell which (no id): say so.
    if (reply.type === "error" && !reply.id && frame.id) reply = { ...reply, id: frame.id };
    this.handle(reply);
    return reply;
  }

  /**
   * Whether sends to `conversation` can go out now (WebSocket: subscribed on this connection; SSE: following).
   * @param {string} conversation
   */
  canSend(conversation) {
    if (this.transport === "sse") return this.online && this.followingOn === this.generation;
    return this.subscribedOn.get(conversation) === this.generation;
  }

  // ---- frames ----

  /** @param {Frame} frame */
  handle(frame) {
    this.requests.settle(frame);
    switch (frame.type) {
      case "welcome": {
        this.online = true;
        this.welcomedAt = this.env.now();
        this.attempt = 0; // a session opened: the next drop reconnects quickly again (protocol §18)
        this.authRefreshes = 0;
        this.lastError = null;
        this.serverEpoch = typeof frame.epoch === "string" ? frame.epoch : null;
        this.limits = /** @type {Record<string, number> | null} */ (frame.limits || null);
        if (this.transport === "ws") {
          this.wsWorked = true;
          this.wsFailures = 0;
        }
        // The silence timer now uses the announced ping interval (SSE: the browser reconnects cut streams).
        this.touch();
        this.status("online", { transport: this.transport });
        this.emit("frame", frame);
        this.opensInFlight.clear(); // SSE: POSTs of an earlier stream may be lost too; a repeat is harmless (§15)
        this.pumpOpens();
        if (this.transport === "ws") for (const conversation of this.subscriptions) this.sendSubscribe(conversation);
        return;
      }
      case "following":
        this.following(frame);
        return;
      case "inbox":
        this.noteSeen(frame.seen);
        // A cursor beyond a conversation's last seq does not describe its log (protocol §7.3, bad_cursor): what we
        // hold for it means nothing; start it again from seq 1.
        for (const record of /** @type {{ id: string, last_seq: number }[]} */ (frame.conversations || [])) {
          const cursor = this.cursors.get(record.id);
          if (cursor && cursor.epoch === this.serverEpoch && cursor.seq > record.last_seq) {
            cursor.seq = 0;
            this.emit("reset", record.id);
            this.changed();
          }
        }
        break;
      case "ping":
        this.transmit({ type: "pong" });
        return;
      case "pong":
        return;
      case "read":
        this.noteSeen([frame]);
        break;
      case "subscribed":
        this.subscribed(frame);
        return;
      case "event":
        this.event(/** @type {EventFrame} */ (/** @type {unknown} */ (frame)));
        return;
      case "ack":
        this.acked(frame);
        return;
      case "opened":
        if (typeof frame.id === "string" && frame.id.startsWith("open:")) this.settleOpen(frame.id.slice(5), frame, null);
        break;
      case "error": {
        const error = /** @type {ErrorFrame} */ (/** @type {unknown} */ (frame));
        if (this.errored(error)) return;
        if (this.transport === "sse" && !error.id && TRANSIENT_STREAM_ERRORS.has(error.code)) return; // the stream ends; the browser reconnects
        break;
      }
      default:
        break;
    }
    this.emit("frame", frame);
  }

  /**
   * Subscribes to a conversation now (if online) and after every reconnect. (SSE: the stream already follows
   * every conversation of the principal; this claims its events for the page, including those that arrived before.)
   * @param {string} conversation
   */
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

  /**
   * Stops following a conversation. (SSE: nothing goes to the server, which decides what the stream follows; the
   * page just stops claiming the conversation's events, which are held like those of any conversation it has not
   * subscribed to.)
   * @param {string} conversation
   */
  unsubscribe(conversation) {
    if (!this.subscriptions.delete(conversation)) return;
    if (this.transport !== "sse") this.transmit({ type: "unsubscribe", conversation });
  }

  /**
   * Forgets everything about a conversation: its subscription, cursor, held events and pending sends.
   * @param {string} conversation
   */
  forget(conversation) {
    this.subscriptions.delete(conversation);
    this.cursors.delete(conversation);
    this.unclaimed.delete(conversation);
    this.seenMarks.delete(conversation);
    for (const [clientId, p] of this.pending) if (p.conversation === conversation) this.pending.delete(clientId);
    this.inFlight.delete(conversation);
    this.env.timers.clearTimeout(this.resendTimers.get(conversation));
    this.resendTimers.delete(conversation);
    this.replayEnds.delete(conversation);
    this.changed();
  }

  /**
   * Keeps the highest seen mark per (conversation, participant) from `inbox`, `subscribed` and `read` frames
   * (protocol §6.6); emits `seen` for each mark that moved forward.
   * @param {unknown} marks
   */
  noteSeen(marks) {
    if (!Array.isArray(marks)) return;
    for (const mark of marks) {
      if (!mark || typeof mark.conversation !== "string" || !mark.from || typeof mark.seq !== "number") continue;
      const conversation = mark.conversation;
      const from = /** @type {Actor} */ (mark.from);
      const key = `${from.role}:${from.id || ""}`;
      const byParticipant = this.seenMarks.get(conversation) || new Map();
      this.seenMarks.set(conversation, byParticipant);
      const known = byParticipant.get(key);
      if (known && known.seq >= mark.seq) continue;
      byParticipant.set(key, { from, seq: mark.seq });
      this.emit("seen", conversation, from, mark.seq);
    }
  }

  /**
   * How far each participant has seen a conversation, as far as this client knows (kept by the server, so it
   * survives a reload: `inbox` and `subscribed` carry it).
   * @param {string} conversation
   * @returns {{ from: Actor, seq: number }[]}
   */
  seen(conversation) {
    const byParticipant = this.seenMarks.get(conversation);
    return byParticipant ? [...byParticipant.values()].map((mark) => ({ ...mark })) : [];
  }

  /**
   * The last applied seq of a conversation (0: nothing yet).
   * @param {string} conversation
   */
  lastSeq(conversation) {
    const cursor = this.cursors.get(conversation);
    return cursor ? cursor.seq : 0;
  }

  /** @param {string} conversation */
  sendSubscribe(conversation) {
    const cursor = this.cursors.get(conversation);
    /** @type {Frame} */
    const frame = { type: "subscribe", id: `sub:${conversation}`, conversation, after: cursor ? cursor.seq : 0 };
    if (cursor && cursor.epoch) frame.epoch = cursor.epoch;
    this.transmit(frame);
  }

  /** @param {Frame} frame */
  subscribed(frame) {
    const conversation = String(frame.conversation);
    this.noteSeen(frame.seen);
    const cursor = this.cursors.get(conversation) || { seq: 0, epoch: null };
    if (frame.reset || (cursor.epoch && cursor.epoch !== this.serverEpoch)) {
      cursor.seq = 0;
      this.emit("reset", conversation);
    }
    cursor.epoch = this.serverEpoch;
    this.cursors.set(conversation, cursor);
    this.subscribedOn.set(conversation, this.generation);
    this.changed();
    this.emit("frame", frame);
    // The end of the replay (protocol §8.5): caught up once `last_seq` is applied — maybe already.
    if (typeof frame.last_seq === "number" && frame.last_seq > cursor.seq) this.replayEnds.set(conversation, frame.last_seq);
    else this.caughtUp(conversation);
    // Unacknowledged sends go again, in order, with the same client ids: the server stores each once.
    this.inFlight.delete(conversation);
    this.pump();
  }

  /** @param {string} conversation */
  caughtUp(conversation) {
    this.replayEnds.delete(conversation);
    this.emit("caughtUp", conversation);
  }

  /**
   * SSE: the stream has started (after `welcome` and `inbox`); the events of every conversation follow.
   * @param {Frame} frame
   */
  following(frame) {
    for (const [conversation, cursor] of this.cursors) {
      // A reset, or cursors from another store epoch: what we hold for them means nothing now.
      if (frame.reset || (cursor.epoch && cursor.epoch !== this.serverEpoch)) {
        cursor.seq = 0;
        this.emit("reset", conversation);
      }
      cursor.epoch = this.serverEpoch;
    }
    if (frame.reset) this.unclaimed.clear();
    this.followingOn = this.generation;
    this.attempt = 0; // a stream opened (protocol §18)
    this.changed();
    this.emit("frame", frame);
    // Unacknowledged sends go again, in order, with the same client ids: the server stores each once.
    this.inFlight.clear();
    this.pump();
  }

  /**
   * SSE: keeps an event of a conversation the page has not subscribed to (yet).
   * @param {EventFrame} event
   */
  hold(event) {
    const held = this.unclaimed.get(event.conversation) || [];
    if (!held.some((e) => e.seq === event.seq)) held.push(event);
    held.sort((a, b) => a.seq - b.seq);
    this.unclaimed.delete(event.conversation); // re-inserted last: most recently used
    this.unclaimed.set(event.conversation, held.slice(-MAX_UNCLAIMED_EVENTS));
    while (this.unclaimed.size > MAX_UNCLAIMED_CONVERSATIONS) this.unclaimed.delete(/** @type {string} */ (this.unclaimed.keys().next().value));
    this.changed();
  }

  /** @param {EventFrame} event */
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
        this.env.logger.warn(`kf: seq gap in ${event.conversation}: ${cursor.seq} -> ${event.seq}; replaying`);
        this.sseReplay();
        return;
      }
      // Should not happen within one subscription: resubscribe from the cursor and drop until the replay arrives.
      this.env.logger.warn(`kf: seq gap in ${event.conversation}: ${cursor.seq} -> ${event.seq}; resubscribing`);
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
    this.emit("event", event);
    const end = this.replayEnds.get(event.conversation);
    if (end !== undefined && event.seq >= end) this.caughtUp(event.conversation);
    this.changed();
  }

  /** @param {EventFrame} event */
  isMine(event) {
    return this.o.isMine ? this.o.isMine(event.author) : true;
  }

  // ---- opens ----

  /**
   * Opens a conversation (visitors, protocol §7.2) the way sends are made: the request is kept (and persisted)
   * with its client id until the server answers it, sent as soon as a session is open and again after every
   * reconnect or reload, retried after a refusal worth it (rate_limited, unavailable…) — so a lost answer never
   * opens a second conversation (§15). Resolves with the `opened` frame; rejects with a KfRequestError for a final
   * error (not_found, forbidden, invalid_frame…), or "stopped". The `opened` frame (or that error) also reaches
   * `onFrame`, which is where a page reloaded in between learns the answer.
   * @param {Partial<OpenRequest>} [request] `entry`, `fields` (pre-chat answers), `group`…; `client_id` to choose it
   * @returns {Promise<Frame>}
   */
  open(request = {}) {
    const clientId = request.client_id || newId();
    if (!this.opens.has(clientId)) {
      this.opens.set(clientId, { ...request, client_id: clientId });
      this.changed();
    }
    const answer = new Promise((resolve, reject) => {
      const waiting = this.openWaiters.get(clientId) || [];
      waiting.push({ resolve, reject });
      this.openWaiters.set(clientId, waiting);
    });
    this.pumpOpens();
    return /** @type {Promise<Frame>} */ (answer);
  }

  // Puts the pending opens on the wire (in order) unless they are there already or wait for a retry.
  pumpOpens() {
    if (!this.online || this.openRetryTimer) return;
    for (const open of this.opens.values()) {
      if (this.opensInFlight.has(open.client_id)) continue;
      const frame = { ...open, type: "open", id: `open:${open.client_id}` };
      if (this.transport === "sse") this.post(frame);
      else if (!this.transmit(frame)) return;
      this.opensInFlight.add(open.client_id);
    }
  }

  /**
   * An open is answered: drop it and settle whoever waits for it.
   * @param {string} clientId
   * @param {Frame | null} reply
   * @param {KfRequestError | null} error
   */
  settleOpen(clientId, reply, error) {
    if (reply || (error && error.code !== "stopped")) {
      if (this.opens.delete(clientId)) this.changed();
      this.opensInFlight.delete(clientId);
      this.openRetries.delete(clientId);
    }
    const waiting = this.openWaiters.get(clientId) || [];
    this.openWaiters.delete(clientId);
    for (const w of waiting) {
      if (reply) w.resolve(reply);
      else if (error) w.reject(error);
    }
  }

  // ---- sends ----

  /**
   * Sends a message; returns its client id. Works offline: it is kept (and persisted) and goes out once
   * connected, then again after every reconnect until acknowledged — always with this client id.
   * @param {string} conversation
   * @param {string} text may be "" when `attachments` are sent
   * @param {string[]} [attachments] ids of files uploaded to this conversation with `upload` (protocol §23)
   * @returns {string}
   */
  sendMessage(conversation, text, attachments = []) {
    /** @type {PendingSend} */
    const p = { conversation, client_id: newId(), body: { text } };
    if (attachments.length > 0) p.attachments = [...attachments];
    const limit = this.limits && this.limits.max_text_bytes > 0 ? this.limits.max_text_bytes : Infinity;
    const size = new TextEncoder().encode(text).length;
    if (size > limit) {
      this.emit("sendFailed", p.client_id, "too_large", `the message has ${size} bytes; at most ${limit}`, p);
      return p.client_id;
    }
    this.pending.set(p.client_id, p);
    this.changed();
    this.pump();
    return p.client_id;
  }

  /**
   * Uploads a file to a conversation (protocol §23.2); resolves with the attachment as the server recorded it, to
   * send with `sendMessage(conversation, text, [attachment.id])`. Rejects with a KfRequestError (`too_large`,
   * `conversation_full`, `unsupported_type`, `not_found`, `forbidden`, `invalid_token`, `unavailable`).
   * @param {string} conversation
   * @param {Blob | ArrayBuffer | Uint8Array} file
   * @param {string} [name] the file name (default: a File's own name, else "file")
   * @returns {Promise<Attachment>}
   */
  async upload(conversation, file, name) {
    if (!this.env.fetch) throw new KfRequestError("unavailable", "no fetch in this environment");
    const own = /** @type {{ name?: unknown }} */ (file).name;
    const fileName = name || (typeof own === "string" && own) || "file";
    const token = await this.o.getToken();
    return uploadFile(this.env.fetch, this.filesBase, token, conversation, file, fileName);
  }

  /**
   * A short-lived signed link to an attachment and its thumbnail (protocol §23.3), absolute URLs for `<img src>`
   * and `<a href>`; ask again once `expires_at` has passed.
   * @param {string} attachment
   * @returns {Promise<FileLink>}
   */
  async fileLink(attachment) {
    if (!this.env.fetch) throw new KfRequestError("unavailable", "no fetch in this environment");
    const token = await this.o.getToken();
    return fileLink(this.env.fetch, this.filesBase, token, attachment);
  }

  /**
   * Agents: the tenant's labels and attribute definitions (protocol §7.21).
   * @returns {Promise<DefinitionsFrame>}
   */
  definitions() {
    return /** @type {Promise<DefinitionsFrame>} */ (this.request({ type: "definitions" }));
  }

  /**
   * Agents: puts one of the tenant's labels on a conversation (protocol §7.22). Pass the same `clientId` to retry.
   * @param {string} conversation
   * @param {string} label
   * @param {string} [clientId]
   * @returns {Promise<AckFrame>}
   */
  label(conversation, label, clientId = newId()) {
    return /** @type {Promise<AckFrame>} */ (this.request({ type: "label", conversation, client_id: clientId, label }));
  }

  /**
   * Agents: takes a label off a conversation (protocol §7.22).
   * @param {string} conversation
   * @param {string} label
   * @param {string} [clientId]
   * @returns {Promise<AckFrame>}
   */
  unlabel(conversation, label, clientId = newId()) {
    return /** @type {Promise<AckFrame>} */ (this.request({ type: "unlabel", conversation, client_id: clientId, label }));
  }

  /**
   * Agents: sets (or, with `null`, removes) a declared attribute of a conversation or of its visitor
   * (protocol §7.23).
   * @param {string} conversation
   * @param {"visitor" | "conversation"} object
   * @param {string} key
   * @param {AttributeValue | null} value
   * @param {string} [clientId]
   * @returns {Promise<AckFrame>}
   */
  setAttribute(conversation, object, key, value, clientId = newId()) {
    return /** @type {Promise<AckFrame>} */ (
      this.request({ type: "set_attribute", conversation, client_id: clientId, object, key, value })
    );
  }

  /**
   * Agents: puts a conversation assigned to you on hold until `until` (ms since the epoch) or, with `null`, until
   * the visitor writes (protocol §7.24).
   * @param {string} conversation
   * @param {number | null} until
   * @param {string} [clientId]
   * @returns {Promise<AckFrame>}
   */
  snooze(conversation, until, clientId = newId()) {
    /** @type {Frame} */
    const frame = { type: "snooze", conversation, client_id: clientId };
    if (until !== null && until !== undefined) frame.until = until;
    return /** @type {Promise<AckFrame>} */ (this.request(frame));
  }

  /**
   * Agents: takes back a conversation you put on hold, before its time (protocol §7.24).
   * @param {string} conversation
   * @param {string} [clientId]
   * @returns {Promise<AckFrame>}
   */
  wake(conversation, clientId = newId()) {
    return /** @type {Promise<AckFrame>} */ (this.request({ type: "wake", conversation, client_id: clientId }));
  }

  /**
   * The same as sendMessage.
   * @param {string} conversation
   * @param {string} text
   * @returns {string}
   */
  send(conversation, text) {
    return this.sendMessage(conversation, text);
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

  /**
   * A pending send is done (acked, seen committed, or failed for good): drop it and let the next one go.
   * @param {string} clientId
   */
  settle(clientId) {
    const p = this.pending.get(clientId);
    if (!p) return;
    this.pending.delete(clientId);
    if (this.inFlight.get(p.conversation) === clientId) this.inFlight.delete(p.conversation);
    this.changed();
    this.pump();
  }

  /** @param {PendingSend} p */
  transmitSend(p) {
    /** @type {Frame} */
    const frame = { type: "send", id: `send:${p.client_id}`, conversation: p.conversation, client_id: p.client_id, body: p.body };
    if (p.attachments && p.attachments.length > 0) frame.attachments = p.attachments;
    if (this.transport === "sse") this.post(frame);
    else this.transmit(frame);
  }

  /**
   * A typing signal (ephemeral: sent only when online, errors ignored).
   * @param {string} conversation
   * @param {boolean} active
   */
  typing(conversation, active) {
    const frame = { type: "typing", id: "typing", conversation, active };
    if (this.transport !== "sse") this.transmit(frame);
    else if (this.online) this.postNow(frame); // not queued behind sends: it is stale by then
  }

  /**
   * The sends of a conversation not acknowledged yet, in order.
   * @param {string | null} conversation
   * @returns {PendingSend[]}
   */
  pendingFor(conversation) {
    return [...this.pending.values()].filter((p) => p.conversation === conversation);
  }

  /** @param {Frame} frame */
  acked(frame) {
    const clientId = String(frame.client_id);
    this.settle(clientId);
    this.changed();
    this.emit("ack", clientId, Number(frame.seq), String(frame.conversation));
  }

  /**
   * Handles errors that answer the client's own requests; returns true when consumed.
   * @param {ErrorFrame} frame
   * @returns {boolean}
   */
  errored(frame) {
    const id = frame.id || "";
    if (!frame.id) this.lastError = frame; // a refused hello, or a reason for the close that follows
    if (id === "typing") return true; // ephemeral: a refused or rate-limited typing signal is simply dropped
    if (id.startsWith("sub:") && frame.code === "bad_cursor") {
      // Our cursor is beyond the server's log (protocol §7.3): what we hold means nothing; replay from 0.
      const conversation = id.slice(4);
      const cursor = this.cursors.get(conversation);
      if (cursor) cursor.seq = 0;
      this.emit("reset", conversation);
      this.changed();
      this.sendSubscribe(conversation);
      return true;
    }
    if (id.startsWith("open:") && this.opens.has(id.slice(5))) {
      const clientId = id.slice(5);
      if (FINAL_SEND_ERRORS.has(frame.code)) {
        this.settleOpen(clientId, null, new KfRequestError(frame.code, frame.message, /** @type {Frame} */ (/** @type {unknown} */ (frame))));
        return false; // and to onFrame: after a reload nobody waits on the promise
      }
      const retries = (this.openRetries.get(clientId) || 0) + 1;
      this.openRetries.set(clientId, retries);
      this.opensInFlight.delete(clientId);
      this.env.timers.clearTimeout(this.openRetryTimer);
      this.openRetryTimer = this.env.timers.setTimeout(() => {
        this.openRetryTimer = null;
        this.pumpOpens();
      }, sendRetryDelay(retries, this.env.random));
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
        const conversation = p.conversation;
        if (this.inFlight.get(conversation) === clientId) this.inFlight.delete(conversation);
        this.env.timers.clearTimeout(this.resendTimers.get(conversation));
        this.resendTimers.set(
          conversation,
          this.env.timers.setTimeout(() => {
            this.resendTimers.delete(conversation);
            this.pump();
          }, sendRetryDelay(p.retries, this.env.random)),
        );
        this.changed();
      } else {
        this.settle(clientId);
        this.emit("sendFailed", clientId, frame.code, frame.message, p);
      }
      return true;
    }
    return false;
  }
}
