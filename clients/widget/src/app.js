// app.js: the kf chat widget (loaded by widget.js with `boot(options, kf)`).
//
// It asks the server for the widget's configuration (GET {base}config) and a visitor session (POST {base}session),
// loads the protocol client package ({base}client/index.js) and runs one conversation in a panel (ui.js):
// the welcome message, an optional pre-chat form, the queue position, the offline form outside working hours,
// typing both ways, "seen" receipts, the end of a conversation and a new one; unread count, sound and desktop
// notification while minimised; the visit's context and page views; the JS API on `window.kf`.
//
// What it keeps in localStorage (namespaced by server, tenant and identity; nothing else is written):
// the visitor id and key, the token, the current conversation (record, recent events), the client's cursors and
// unsent messages, the last seq the visitor has seen, and whether the panel was open.
import { pickLang, translator } from "./i18n.js";
import { WidgetUI } from "./ui.js";
import { visit, contextFrame, pageFrame, watchNavigation } from "./context.js";
import { unlockSound, beep, notify, askPermission } from "./notify.js";

const MAX_CACHED_EVENTS = 300;
const TOKEN_MARGIN_MS = 60_000;
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_EXPIRY_MS = 6000;
// Errors of an `open` worth trying again with the same client id.
const RETRY_OPEN = new Set(["rate_limited", "unavailable", "internal"]);

/**
 * @typedef {object} Options
 * @property {string} base       URL of the directory widget.js came from, with a trailing slash
 * @property {string} tenant
 * @property {string | null} entry
 * @property {string | null} lang
 * @property {string} position   "right" (default) or "left"
 * @property {string | null} color
 * @property {string | null} userId
 * @property {string | null} userHash
 * @property {string | null} userName
 * @property {string | null} userEmail
 * @property {boolean} open     open the panel at load
 */

/**
 * @typedef {{user_id: string, user_hash: string, name?: string, email?: string}} Identity
 */

/** An error that stops the widget until the visitor retries (or for good). */
class WidgetError extends Error {
  /**
   * @param {string} code  forbidden_origin | not_found | invalid_identity | unreachable | …
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** @returns {string} */
function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** @param {string | undefined | null} id */
function titleCase(id) {
  return id ? id.charAt(0).toUpperCase() + id.slice(1) : "";
}

/**
 * @param {number} ms
 * @param {string} lang
 */
function timeOf(ms, lang) {
  return new Date(ms).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
}

/**
 * The persisted part of the widget's state, empty.
 * @returns {{visitorId: string | null, visitorKey: string | null, userHash: string | null, token: string | null,
 *   tokenExpiresAt: number, conversation: string | null, record: any, events: any[], openClientId: string | null,
 *   openFields: Record<string, string> | null, queued: {id: string, text: string}[], client: any, lastSeen: number,
 *   dismissed: string[], emailGiven: string | null, offlineSent: boolean, panelOpen: boolean}}
 */
function emptyState() {
  return {
    visitorId: null,
    visitorKey: null,
    userHash: null, // the identity the token was issued for
    token: null,
    tokenExpiresAt: 0,
    conversation: null, // the conversation on screen
    record: null, // its record as last known
    events: [], // its committed events, by seq
    openClientId: null, // an `open` not answered yet
    openFields: null, // its pre-chat answers
    queued: [], // texts written before the conversation existed, or before the client started: [{id, text}]
    client: null, // the protocol client's snapshot (cursors, unsent messages)
    lastSeen: 0, // the highest seq the visitor has seen in the open panel
    dismissed: [], // closed conversations the visitor left with "start a new conversation"
    emailGiven: null,
    offlineSent: false,
    panelOpen: false,
  };
}

/**
 * Starts the widget.
 * @param {Options} options
 * @param {any} kf the `window.kf` function made by widget.js
 */
export function boot(options, kf) {
  const widget = new Widget(options, kf);
  widget.start();
  return widget;
}

export class Widget {
  /**
   * @param {Options} options
   * @param {any} kf
   */
  constructor(options, kf) {
    this.o = options;
    this.kf = kf;
    this.lang = pickLang(options.lang);
    this.t = translator(this.lang);
    this.origin = new URL(options.base).origin;
    this.namespace = `kf:${options.base}:${options.tenant}`;
    /** @type {Identity | null} */
    this.identity =
      options.userId && options.userHash
        ? { user_id: options.userId, user_hash: options.userHash, ...(options.userName ? { name: options.userName } : {}), ...(options.userEmail ? { email: options.userEmail } : {}) }
        : null;
    this.state = this.load();
    // On a phone the open panel covers the page: it does not reopen by itself on the next page.
    if (window.matchMedia && window.matchMedia("(max-width: 480px)").matches) this.state.panelOpen = false;
    if (options.open) this.state.panelOpen = true;
    // Not persisted.
    this.live = {
      online: false,
      status: "connecting",
      acked: new Set(),
      /** @type {{client_id: string, text: string, reason: string}[]} */
      failed: [],
      /** @type {{id: string, name: string}[]} files being uploaded */
      uploading: [],
      /** @type {Map<string, any>} attachments uploaded by this page, by id (shown while their message is pending) */
      uploaded: new Map(),
      /** @type {{who: string, until: number} | null} */
      typing: null,
      /** @type {any} */
      position: null,
      agentRead: 0,
      readSent: 0,
      notice: "",
      /** @type {{conversation: string, clientId: string, state: string, score: number, comment: string} | null} */
      rating: null, // the rating being sent, or how it ended (a committed one shows as a `rated` event)
    };
    /** @type {any} */
    this.config = null;
    /** @type {{text: string, retry: boolean} | null} */
    this.fatal = null;
    /** @type {any} */
    this.client = null;
    /** @type {any} */
    this.clientModule = null;
    this.transport = "auto";
    this.wsFailures = 0;
    this.everOnline = false;
    this.probing = false;
    this.readyFired = false;
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    this.visit = visit(this.namespace);
    this.pageSentUrl = null;
    this.typingActive = false;
    this.typingSentAt = 0;
    /** @type {any} */
    this.typingIdle = null;
    /** @type {any} */
    this.readTimer = null;
    this.lastUnread = -1;
    this.renderQueued = false;
    this.unwatch = null;
    /** @type {any} */
    this.pageTimer = null;
    this.autoRetries = 0;
    /** @type {any} */
    this.retryTimer = null;
    this.starting = false;
    this.identityChanged = false;
    this.ui = new WidgetUI(
      { t: this.t, lang: this.lang, position: options.position, color: this.safeColor(options.color) },
      {
        toggle: () => this.toggle(),
        close: () => this.close(),
        send: (text) => this.send(text),
        attach: (file) => this.attach(file),
        fileLink: (id) => (this.client ? this.client.fileLink(id) : Promise.reject(new Error("not connected"))),
        typing: (active) => this.typing(active),
        endChat: () => this.endChat(),
        newConversation: () => this.newConversation(),
        rate: (score, comment) => this.rate(score, comment),
        prechat: (fields) => this.submitPrechat(fields),
        offline: (message, email, fields) => this.submitOffline(message, email, fields),
        offlineEmail: (email) => this.giveEmail(email),
        retry: () => this.retry(),
        gesture: () => unlockSound(),
      },
    );
  }

  // ---- start-up ----

  start() {
    this.installApi();
    this.ui.mount();
    this.draw();
    document.addEventListener("visibilitychange", () => {
      this.markSeen();
      this.render();
    });
    // The browser knows the network is gone (airplane mode): a WebSocket can look open for a while yet, and
    // messages would show as "sending" until the client's liveness timer gives up on it. Let the client reconnect
    // now; it waits for the network (and the `online` event) from there.
    window.addEventListener("online", () => {
      if (this.fatal && this.fatal.retry) this.retry();
    });
    window.addEventListener("offline", () => {
      const client = this.client;
      if (!client || !this.live.online || "mode" in client) return; // (the client package does it itself)
      if (typeof client.dropConnection === "function") client.dropConnection();
      else {
        // A client without that method: a new one, from the same state (cursors, unsent messages).
        this.stopClient();
        this.startClient();
      }
    });
    this.init();
  }

  async init() {
    this.fatal = null;
    this.starting = true;
    this.render();
    try {
      if (!this.o.tenant) throw new WidgetError("not_found", "data-tenant is missing");
      this.config = await this.fetchConfig();
      this.render();
      await this.ensureSession(!this.state.token);
      if (!this.clientModule) this.clientModule = await this.loadClient();
      // kf.identify() / kf.logout() called meanwhile (e.g. replayed from the pre-load queue): that identity's session.
      while (this.identityChanged) {
        this.identityChanged = false;
        await this.ensureSession(true);
      }
    } catch (error) {
      this.starting = false;
      this.fail(error);
      return;
    } finally {
      this.identityChanged = false;
    }
    this.starting = false;
    this.autoRetries = 0;
    this.startClient();
    // One `page` per navigation that settles (an app rewriting its URL as the visitor types sends one).
    if (!this.unwatch) {
      this.unwatch = watchNavigation(() => {
        clearTimeout(this.pageTimer);
        this.pageTimer = setTimeout(() => this.sendPage(), 1000);
      });
    }
    if (!this.readyFired) {
      this.readyFired = true;
      this.emit("ready", undefined);
    }
  }

  async loadClient() {
    try {
      return await import(`${this.o.base}client/index.js`);
    } catch (error) {
      console.error("kf widget: cannot load the client package", error);
      throw new WidgetError("unreachable", "cannot load the client package");
    }
  }

  /** @param {string | null} color */
  safeColor(color) {
    return color && typeof CSS !== "undefined" && CSS.supports("color", color) ? color : null;
  }

  /**
   * A JSON request to the widget's server; throws a WidgetError.
   * @param {string} path under the base
   * @param {RequestInit} [init]
   */
  async api(path, init) {
    let response;
    try {
      response = await fetch(`${this.o.base}${path}`, { ...init, credentials: "omit", mode: "cors" });
    } catch (error) {
      // No answer, or an answer the browser hides from this page (CORS: the origin is not allowed).
      throw new WidgetError("unreachable", String(error));
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const code = (body && (body.error || body.code)) || `http_${response.status}`;
      throw new WidgetError(response.status === 403 && code.startsWith("http_") ? "forbidden_origin" : code, (body && body.message) || `HTTP ${response.status}`);
    }
    return body;
  }

  async fetchConfig() {
    const params = new URLSearchParams({ tenant: this.o.tenant });
    if (this.o.entry) params.set("entry", this.o.entry);
    return this.api(`config?${params}`);
  }

  /**
   * Makes sure a valid token is at hand: asks for a session when there is none or it is about to expire.
   * @param {boolean} force ask even when the stored token is still valid
   */
  async ensureSession(force) {
    const s = this.state;
    const fresh = s.token && s.tokenExpiresAt > Date.now() + TOKEN_MARGIN_MS && (!this.identity || s.userHash === this.identity.user_hash);
    if (fresh && !force) return;
    if (this.sessionPromise) return this.sessionPromise;
    this.sessionPromise = this.askSession().finally(() => (this.sessionPromise = null));
    return this.sessionPromise;
  }

  async askSession() {
    const s = this.state;
    /** @type {Record<string, string>} */
    const body = { tenant: this.o.tenant };
    if (this.identity) Object.assign(body, this.identity);
    else if (s.visitorId && s.visitorKey) Object.assign(body, { visitor_id: s.visitorId, visitor_key: s.visitorKey });
    const ask = () => this.api("session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    let answer;
    try {
      answer = await ask();
    } catch (error) {
      if (!(error instanceof WidgetError) || error.code !== "invalid_visitor_key") throw error;
      // The stored visitor is not ours (or not the server's any more): start as a new visitor.
      delete body.visitor_id;
      delete body.visitor_key;
      this.resetVisitor();
      answer = await ask();
    }
    if (s.visitorId && s.visitorId !== answer.visitor_id) this.resetConversation();
    s.visitorId = answer.visitor_id;
    s.visitorKey = answer.visitor_key || s.visitorKey;
    s.userHash = this.identity ? this.identity.user_hash : null;
    s.token = answer.token;
    s.tokenExpiresAt = Date.now() + (Number(answer.expires_in) || 3600) * 1000;
    this.save();
  }

  /** The token for the client (getToken). */
  async getToken() {
    try {
      await this.ensureSession(false);
      return this.state.token;
    } catch (error) {
      if (error instanceof WidgetError && error.code !== "unreachable" && !error.code.startsWith("http_5")) this.fail(error);
      throw error;
    }
  }

  /** @param {any} error */
  fail(error) {
    const t = this.t;
    const code = error && error.code;
    let text;
    let retry = false;
    if (code === "forbidden_origin") text = t("errorOrigin");
    else if (code === "not_found") text = t("errorTenant");
    else if (code === "invalid_identity") text = t("errorIdentity");
    else if (code === "unreachable") {
      text = t("errorUnreachable");
      retry = true;
    } else {
      text = t("errorSession", (error && error.message) || String(error));
      retry = true;
    }
    console.warn(`kf widget: ${code || "error"}: ${(error && error.message) || error}`);
    this.fatal = { text, retry };
    this.stopClient();
    this.render();
    // A server out of reach (or a network down at page load) may come back: try again by itself a few times,
    // further and further apart, and at once when the browser says the network is back.
    if (code === "unreachable" && this.autoRetries < 5) {
      const delay = 5000 * 2 ** this.autoRetries;
      this.autoRetries += 1;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.fatal && this.retry(), delay);
    }
  }

  retry() {
    clearTimeout(this.retryTimer);
    this.fatal = null;
    this.stopClient();
    this.init();
  }

  // ---- the protocol client ----

  startClient() {
    const { KfClient } = this.clientModule;
    const config = /** @type {any} */ (this.config || {});
    const wsOrigin = this.origin.replace(/^http/, "ws");
    const client = new KfClient({
      transport: this.transport,
      url: `${wsOrigin}${config.ws_path || "/ws"}`,
      sseBase: `${this.origin}${config.sse_path || "/sse"}`,
      state: this.state.client || undefined,
      getToken: () => this.getToken(),
      isMine: (/** @type {any} */ author) => this.isMine(author),
      onAuthError: async () => {
        if (client !== this.client) return false;
        this.state.token = null;
        this.save();
        return true;
      },
      onStatus: (/** @type {string} */ status, /** @type {any} */ detail) => client === this.client && this.onStatus(status, detail),
      onFrame: (/** @type {any} */ frame) => client === this.client && this.onFrame(frame),
      onEvent: (/** @type {any} */ event) => client === this.client && this.onEvent(event),
      // Seen marks are kept by the server (protocol §6.6): after a reload the agent's "seen" comes back with the
      // inbox and `subscribed`, and our own mark tells us which receipt need not go again.
      onSeen: (/** @type {string} */ conversation, /** @type {any} */ from, /** @type {number} */ seq) => {
        if (client !== this.client || conversation !== this.state.conversation || !from) return;
        if (from.role === "agent" && seq > this.live.agentRead) {
          this.live.agentRead = seq;
          this.render();
        } else if (from.role === "visitor") this.live.readSent = Math.max(this.live.readSent, seq);
      },
      onReset: (/** @type {string} */ conversation) => {
        if (client !== this.client || conversation !== this.state.conversation) return;
        this.state.events = [];
        this.render();
      },
      onAck: (/** @type {string} */ clientId) => {
        if (client !== this.client) return;
        this.live.acked.add(clientId);
        this.render();
      },
      onSendFailed: (/** @type {string} */ clientId, /** @type {string} */ code, /** @type {string} */ message, /** @type {any} */ p) => {
        if (client !== this.client) return;
        this.live.failed.push({ client_id: clientId, text: p && p.body ? p.body.text : "", reason: message || code });
        this.render();
      },
      onChange: () => client === this.client && this.save(),
    });
    this.client = client;
    const s = this.state;
    if (s.conversation) {
      client.subscribe(s.conversation);
      // Written before the client started: after the unsent messages of its snapshot, which came first. Handed
      // over and saved in one write, so a reload in between neither loses nor repeats them.
      const written = s.queued;
      s.queued = [];
      for (const item of written) client.sendMessage(s.conversation, item.text);
      if (written.length) this.save();
    }
    client.start();
    this.render(); // what it holds from before (unsent messages) shows now
  }

  stopClient() {
    const client = this.client;
    if (!client) return;
    this.client = null;
    try {
      this.state.client = client.snapshot ? client.snapshot() : this.state.client;
      client.stop();
    } catch {
      // already stopped
    }
    this.live.online = false;
    this.save();
  }

  /**
   * @param {string} status connecting | online | offline | stopped
   * @param {any} detail
   */
  onStatus(status, detail) {
    this.live.status = status;
    this.live.online = status === "online";
    if (status === "online") {
      this.wsFailures = 0;
      this.everOnline = true;
    } else if (status === "offline") {
      this.live.online = false;
      this.maybeFallBack();
    } else if (status === "stopped" && !this.fatal) {
      this.fatal = { text: this.t("errorStopped", detail && detail.why), retry: true };
    }
    this.render();
  }

  /**
   * WebSocket attempts keep failing while the server answers plain HTTP: something between the visitor and the
   * server breaks WebSockets. Go on over SSE (events) + POST (requests). A client package that falls back by itself
   * (`transport: "auto"`) reports `transport === "sse"` by then and this does nothing.
   */
  async maybeFallBack() {
    const client = this.client;
    if (!client || this.transport === "sse" || client.transport === "sse" || this.probing) return;
    // The client package falls back by itself when WebSockets never worked; this covers WebSockets that stop
    // working later (a proxy, a network that changed), which it counts as outages.
    if ("mode" in client && !this.everOnline) return;
    this.wsFailures += 1;
    if (this.wsFailures < (this.everOnline ? 3 : 2)) return;
    this.probing = true;
    try {
      const config = /** @type {any} */ (this.config || {});
      const response = await fetch(`${this.origin}${config.sse_path || "/sse"}/ping`, {
        method: "POST",
        headers: { Authorization: `Bearer ${this.state.token || ""}` },
        credentials: "omit",
      });
      if (client !== this.client || client.transport === "sse" || this.live.online) return;
      if (response.status >= 500) return; // the server itself is in trouble: keep trying the WebSocket
      console.info("kf widget: WebSocket connections fail while HTTP works; switching to SSE");
      this.transport = "sse";
      this.stopClient();
      this.startClient();
    } catch {
      // the server does not answer at all: it is away, not the WebSocket; keep trying
    } finally {
      this.probing = false;
    }
  }

  /**
   * Sends a request frame; replies come back through onFrame (also from a client whose `request` returns a
   * promise of the reply). False when it could not be sent now.
   * @param {Record<string, any>} frame
   */
  request(frame) {
    const client = this.client;
    if (!client) return false;
    let result;
    try {
      result = client.request(frame);
    } catch {
      return false;
    }
    if (result && typeof result.then === "function") {
      result.then(
        (/** @type {any} */ reply) => {
          if (client === this.client && reply && typeof reply === "object" && reply.type) this.onFrame(reply);
        },
        (/** @type {any} */ error) => {
          if (client === this.client) this.onFrame({ type: "error", id: frame.id, code: (error && error.code) || "unavailable", message: String((error && error.message) || error) });
        },
      );
      return true;
    }
    return result !== false;
  }

  /** @param {any} author */
  isMine(author) {
    return !!author && author.role === "visitor" && author.id === this.state.visitorId;
  }

  // ---- frames ----

  /** @param {any} frame */
  onFrame(frame) {
    const s = this.state;
    switch (frame.type) {
      case "welcome":
        if (frame.principal && frame.principal.id && frame.principal.id !== s.visitorId) {
          s.visitorId = frame.principal.id;
          this.save();
        }
        // Before anything is opened, so that a new conversation is stored with this context (protocol §7.10).
        this.request({ ...contextFrame(this.visit), id: "context" });
        if (this.pageSentUrl !== location.href) this.sendPage();
        break;
      case "inbox":
        this.chooseConversation(frame.conversations || []);
        break;
      case "opened":
        if (frame.id === `open:${s.openClientId}`) {
          s.openClientId = null;
          s.openFields = null;
          this.adopt(frame.conversation);
          const queued = s.queued;
          s.queued = [];
          for (const item of queued) this.client && this.client.sendMessage(frame.conversation.id, item.text);
          this.save();
        }
        break;
      case "position":
        this.live.position = frame;
        break;
      case "typing":
        if (frame.conversation === s.conversation && frame.from && frame.from.role !== "visitor") {
          this.live.typing = frame.active ? { who: frame.from.id, until: Date.now() + TYPING_EXPIRY_MS } : null;
          if (frame.active) setTimeout(() => this.render(), TYPING_EXPIRY_MS + 100);
        }
        break;
      case "read":
        if (frame.conversation === s.conversation && frame.from && frame.from.role === "agent") this.live.agentRead = Math.max(this.live.agentRead, frame.seq || 0);
        break;
      case "error":
        this.onError(frame);
        break;
      default:
        break;
    }
    this.render();
  }

  /** @param {any} frame */
  onError(frame) {
    const s = this.state;
    const id = frame.id || "";
    if (["context", "page", "read", "typing"].includes(id)) {
      if (id !== "typing") console.info(`kf widget: ${id} refused: ${frame.code} ${frame.message || ""}`);
      return;
    }
    if (id.startsWith("open:")) {
      if (id !== `open:${s.openClientId}`) return;
      if (RETRY_OPEN.has(frame.code)) {
        if (this.client && typeof this.client.open === "function") return; // the client package retries it
        const clientId = s.openClientId;
        setTimeout(() => s.openClientId === clientId && this.sendOpen(), 1500 + Math.random() * 1500);
        return;
      }
      // Refused for good: what was written before the conversation existed cannot go anywhere.
      for (const item of s.queued) this.live.failed.push({ client_id: item.id, text: item.text, reason: frame.message || frame.code });
      s.queued = [];
      s.openClientId = null;
      s.openFields = null;
      this.save();
      return;
    }
    if (id.startsWith("sub:") && (frame.code === "not_found" || frame.code === "forbidden")) {
      // The server does not know this conversation (its data was replaced): start afresh.
      this.resetConversation();
      return;
    }
    if (id === "end") {
      this.showNotice(["offline", "disconnected", "timeout"].includes(frame.code) ? this.t("reconnecting") : frame.message || frame.code);
      return;
    }
    // Anything else (a refused hello, an answer to a request of the client package's own): the client acts on it
    // and the connection status shows what matters.
    console.info(`kf widget: ${frame.code}: ${frame.message || ""}`);
  }

  /** @param {string} text */
  showNotice(text) {
    this.live.notice = text;
    this.render();
    setTimeout(() => {
      if (this.live.notice === text) {
        this.live.notice = "";
        this.render();
      }
    }, 6000);
  }

  /**
   * After `inbox`: keep the conversation on screen, else adopt the visitor's open one (another tab or device may
   * have opened it), else the most recent closed one it did not dismiss; an `open` not answered yet goes again.
   * @param {any[]} conversations
   */
  chooseConversation(conversations) {
    const s = this.state;
    const current = conversations.find((c) => c.id === s.conversation);
    if (current) this.adopt(current);
    else if (s.conversation) this.resetConversation(); // unknown to the server now
    if (s.openClientId) {
      this.sendOpen();
      return;
    }
    if (s.conversation) return;
    const group = this.config && this.config.group;
    const usable = conversations.filter((c) => !s.dismissed.includes(c.id));
    const pick =
      usable.find((c) => c.status !== "closed" && c.group === group) ||
      usable.find((c) => c.status !== "closed") ||
      usable.find((c) => c.group === group && s.queued.length === 0);
    if (pick) this.adopt(pick);
  }

  /** @param {any} conversation */
  adopt(conversation) {
    const s = this.state;
    if (s.conversation && s.conversation !== conversation.id) this.resetConversation();
    const known = s.record && s.record.id === conversation.id ? s.record : null;
    s.conversation = conversation.id;
    s.record = known && (known.last_seq || 0) > (conversation.last_seq || 0) ? known : conversation;
    this.save();
    if (this.client) this.client.subscribe(conversation.id);
    this.markSeen();
  }

  /** Forgets the conversation on screen (what was written for it and not sent goes with it). */
  resetConversation() {
    const s = this.state;
    if (s.conversation && this.client && this.client.forget) this.client.forget(s.conversation);
    s.conversation = null;
    s.record = null;
    s.events = [];
    s.lastSeen = 0;
    s.offlineSent = false;
    this.live.failed = [];
    this.live.position = null;
    this.live.agentRead = 0;
    this.live.readSent = 0;
    this.live.typing = null;
    this.save();
  }

  resetVisitor() {
    const fresh = emptyState();
    fresh.panelOpen = this.state.panelOpen;
    fresh.queued = this.state.queued;
    this.state = fresh;
    this.live.failed = [];
    this.save();
  }

  /** @param {any} event */
  onEvent(event) {
    const s = this.state;
    if (event.conversation !== s.conversation) return;
    const last = s.events.length ? s.events[s.events.length - 1].seq : 0;
    if (event.seq <= last && s.events.some((e) => e.seq === event.seq)) return; // shown already
    s.events.push(event);
    if (event.seq < last) s.events.sort((a, b) => a.seq - b.seq);
    this.applyToRecord(event);
    const kind = event.data && event.data.type;
    if (kind === "message") {
      const author = event.author || {};
      if (author.role === "agent" && this.live.typing && this.live.typing.who === author.id) this.live.typing = null;
      this.emit("message", {
        conversation: event.conversation,
        seq: event.seq,
        at: event.at,
        text: event.data.body ? event.data.body.text : "",
        author: { role: author.role, id: author.id },
      });
      if (author.role === "agent") this.incoming(event);
    }
    this.markSeen();
    this.render();
  }

  /**
   * An agent's message: said to screen readers when the panel is open; a beep and a desktop notification when
   * the visitor cannot see it (minimised, or another tab) and it is new (not history replayed after a reload).
   * @param {any} event
   */
  incoming(event) {
    const who = titleCase(event.author.id) || this.t("agentFallback");
    const text = event.data.body ? event.data.body.text : "";
    const visible = this.state.panelOpen && document.visibilityState === "visible";
    if (this.state.panelOpen) this.ui.announce(`${who}: ${text}`);
    const fresh = event.seq > this.state.lastSeen && Date.now() - event.at < 120_000;
    if (!visible && fresh) {
      beep();
      notify(this.t("notificationTitle", who), text, `kf-${event.conversation}`, () => this.open());
    }
  }

  /** @param {any} event */
  applyToRecord(event) {
    const s = this.state;
    if (!s.record) return;
    const kind = event.data && event.data.type;
    let record = { ...s.record };
    if (kind === "assigned") record = { ...record, status: "assigned", agent: event.data.agent, last_agent: event.data.agent };
    else if (kind === "closed") record = { ...record, status: "closed", agent: undefined };
    else if (kind === "reopened") record = { ...record, status: "queued", agent: undefined };
    else if (kind === "offline") record = { ...record, status: "offline" };
    else if (kind === "snoozed") record = { ...record, status: "on_hold" };
    else if (kind === "woken") record = { ...record, status: "queued", agent: undefined };
    else if (kind === "rated") record = { ...record, rating: event.data.score };
    else if (kind === "transferred" && event.data.agent) record = { ...record, status: "assigned", agent: event.data.agent, last_agent: event.data.agent };
    else if (kind === "transferred") record = { ...record, status: "queued", agent: undefined };
    record.last_seq = Math.max(record.last_seq || 0, event.seq);
    s.record = record;
    if (record.status !== "queued") this.live.position = null; // no `position` says it left the queue: this does
  }

  // ---- visitor actions ----

  /** @param {string} text */
  send(text) {
    const s = this.state;
    if (this.fatal) return false;
    if (s.events.length === 0 && s.queued.length === 0) askPermission(); // a user gesture: the first message
    if (!s.conversation) {
      s.queued.push({ id: newId(), text });
      if (!s.openClientId) this.openConversation(null);
      this.save();
      this.render();
      return true;
    }
    if (!this.client) {
      // The client has not started yet (a reload while the server is out of reach): kept with the state, and
      // handed to the client, in the order written, when it starts.
      s.queued.push({ id: newId(), text });
      this.save();
      this.render();
      return true;
    }
    this.client.sendMessage(s.conversation, text);
    this.render();
    return true;
  }

  /**
   * Uploads a file the visitor picked and sends it as a message of its own (protocol §23). A refusal (type, size)
   * shows as a message not sent, with the server's reason.
   * @param {File} file
   */
  async attach(file) {
    const s = this.state;
    const client = this.client;
    if (!client || !s.conversation) return;
    const conversation = s.conversation;
    const uploadId = newId();
    this.live.uploading.push({ id: uploadId, name: file.name });
    this.render();
    try {
      const attachment = await client.upload(conversation, file, file.name);
      this.live.uploaded.set(attachment.id, attachment);
      client.sendMessage(conversation, "", [attachment.id]);
    } catch (error) {
      const reason = error && typeof error === "object" && "message" in error ? String(error.message) : String(error);
      this.live.failed.push({ client_id: uploadId, text: file.name, reason });
    } finally {
      this.live.uploading = this.live.uploading.filter((u) => u.id !== uploadId);
      this.render();
    }
  }

  /** @param {Record<string,string> | null} fields pre-chat answers */
  openConversation(fields) {
    const s = this.state;
    s.openClientId = newId();
    s.openFields = fields && Object.keys(fields).length ? fields : null;
    this.save();
    this.sendOpen();
  }

  sendOpen() {
    const s = this.state;
    const client = this.client;
    if (!s.openClientId || !client) return;
    /** @type {Record<string, any>} */
    const request = { client_id: s.openClientId };
    if (this.o.entry) request.entry = this.o.entry;
    if (s.openFields) request.fields = s.openFields;
    if (typeof client.open === "function") {
      // The client package keeps the open (persisted, with its client id) until it is answered, resends it after
      // reconnects and retries it after refusals worth it; it rejects only for good (or when it is stopped).
      // Asking again with the same client id only waits for the same answer.
      client.open(request).then(
        (/** @type {any} */ frame) => {
          if (client === this.client && frame) this.onFrame(frame);
        },
        (/** @type {any} */ error) => {
          const code = (error && error.code) || "unavailable";
          if (client !== this.client || ["stopped", "offline", "disconnected", "timeout"].includes(code)) return;
          this.onFrame({ type: "error", id: `open:${request.client_id}`, code, message: (error && error.message) || code });
        },
      );
      return;
    }
    this.request({ type: "open", id: `open:${s.openClientId}`, ...request }); // offline: sent again after the next `inbox`
  }

  /** @param {Record<string,string>} fields */
  submitPrechat(fields) {
    this.openConversation(fields);
    this.render();
    queueMicrotask(() => this.ui.focusPanel());
  }

  /**
   * The offline form: a conversation opened outside working hours (the server makes it an offline message) with
   * the visitor's message and email in it.
   * @param {string} message
   * @param {string} email
   * @param {Record<string,string>} fields answers to the entry point's pre-chat fields shown in the form
   */
  submitOffline(message, email, fields) {
    const s = this.state;
    const prechat = (this.config && this.config.prechat) || [];
    const answers = { ...fields };
    if (prechat.some((/** @type {any} */ f) => f.name === "email")) answers.email = email;
    s.emailGiven = email;
    s.offlineSent = true;
    s.queued.push({ id: newId(), text: `${message}\n\n${this.t("offlineEmailLine", email)}` });
    this.openConversation(prechat.length ? answers : null);
    this.render();
    queueMicrotask(() => this.ui.focusPanel());
  }

  /** @param {string} email */
  giveEmail(email) {
    this.state.emailGiven = email;
    this.send(this.t("offlineEmailLine", email));
    this.save();
    this.render();
  }

  /** @param {boolean} active */
  typing(active) {
    const conversation = this.state.conversation;
    if (!conversation || !this.client) return;
    const now = Date.now();
    clearTimeout(this.typingIdle);
    if (active) {
      if (!this.typingActive || now - this.typingSentAt > TYPING_REFRESH_MS) {
        this.typingActive = true;
        this.typingSentAt = now;
        this.client.typing(conversation, true);
      }
      this.typingIdle = setTimeout(() => this.typing(false), TYPING_IDLE_MS);
    } else if (this.typingActive) {
      this.typingActive = false;
      this.client.typing(conversation, false);
    }
  }

  endChat() {
    const conversation = this.state.conversation;
    if (!conversation) return;
    if (!this.request({ type: "close", id: "end", conversation })) this.showNotice(this.t("reconnecting"));
  }

  /**
   * Rates the closed conversation on screen (protocol §7.19): once. A retry after a failure keeps its client id,
   * so the server stores one rating whatever reached it; a refusal (not closed any more, rated elsewhere) puts
   * the form away.
   * @param {number} score 1 to 5
   * @param {string} comment
   */
  rate(score, comment) {
    const conversation = this.state.conversation;
    const client = this.client;
    if (!conversation || !client) return;
    const earlier = this.live.rating && this.live.rating.conversation === conversation ? this.live.rating : null;
    if (earlier && earlier.state === "sending") return;
    const clientId = earlier ? earlier.clientId : newId();
    const rating = { conversation, clientId, state: "sending", score, comment };
    this.live.rating = rating;
    /** @type {Record<string, any>} */
    const frame = { type: "rate", id: "rate", conversation, client_id: clientId, score };
    if (comment.trim()) frame.comment = comment.trim();
    const settle = (/** @type {string} */ state) => {
      if (this.live.rating !== rating) return;
      rating.state = state;
      this.render();
    };
    /** @type {Promise<any>} */
    let reply;
    try {
      reply = Promise.resolve(client.request(frame));
    } catch (error) {
      reply = Promise.reject(error);
    }
    reply.then(
      () => settle("done"),
      (/** @type {any} */ error) => {
        const code = (error && error.code) || "unavailable";
        settle(["offline", "disconnected", "timeout", "unavailable", "rate_limited", "stopped"].includes(code) ? "failed" : "refused");
      },
    );
    this.render();
  }

  /** Where the rating of the closed conversation on screen stands: `form`, `sending`, `failed`, `done`, `refused`. */
  ratingView() {
    const s = this.state;
    const rated = (!!s.record && typeof s.record.rating === "number") || s.events.some((e) => e.data && e.data.type === "rated");
    const rating = this.live.rating && this.live.rating.conversation === s.conversation ? this.live.rating : null;
    if (rated || (rating && rating.state === "done")) return { state: "done" };
    if (rating) return { state: rating.state, score: rating.score, comment: rating.comment };
    return { state: "form", score: 0, comment: "" };
  }

  newConversation() {
    const s = this.state;
    if (s.conversation) s.dismissed = [...s.dismissed, s.conversation].slice(-20);
    this.resetConversation();
    this.render();
    queueMicrotask(() => this.ui.focusPanel());
  }

  // ---- the panel ----

  open() {
    if (this.state.panelOpen) return;
    this.state.panelOpen = true;
    this.markSeen();
    this.save();
    this.draw();
    this.ui.focusPanel();
    this.emit("state", "open");
  }

  close() {
    if (!this.state.panelOpen) return;
    const hadFocus = this.ui.shadow.activeElement && this.ui.panel.contains(this.ui.shadow.activeElement);
    this.state.panelOpen = false;
    this.save();
    this.draw();
    if (hadFocus || document.activeElement === this.ui.host) this.ui.focusLauncher();
    this.emit("state", "closed");
  }

  toggle() {
    if (this.state.panelOpen) this.close();
    else this.open();
  }

  /** The visitor sees the conversation: remember up to where, and tell the agent (a `read`, at most 1/s). */
  markSeen() {
    const s = this.state;
    if (!s.panelOpen || document.visibilityState !== "visible" || !s.conversation || s.events.length === 0) return;
    const last = s.events[s.events.length - 1].seq;
    if (last > s.lastSeen) {
      s.lastSeen = last;
      this.save();
    }
    if (last > this.live.readSent && !this.readTimer) {
      this.readTimer = setTimeout(() => {
        this.readTimer = null;
        const seq = this.state.lastSeen;
        if (this.state.conversation && seq > this.live.readSent && this.live.online) {
          if (this.request({ type: "read", id: "read", conversation: this.state.conversation, seq })) this.live.readSent = seq;
        }
      }, 400);
    }
  }

  unread() {
    const s = this.state;
    let count = 0;
    for (const e of s.events) if (e.seq > s.lastSeen && e.data && e.data.type === "message" && e.author && e.author.role === "agent") count++;
    return count;
  }

  sendPage() {
    const frame = pageFrame();
    if (!frame || !this.client || !this.live.online) return;
    if (this.request({ ...frame, id: "page" })) this.pageSentUrl = location.href;
  }

  // ---- storage ----

  storageKey() {
    return `${this.namespace}:${this.identity ? `user:${this.identity.user_id}` : "anon"}`;
  }

  /** @returns {ReturnType<typeof emptyState>} */
  load() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.storageKey()) || "null");
      if (saved && typeof saved === "object") return { ...emptyState(), ...saved };
    } catch {
      // nothing usable
    }
    return emptyState();
  }

  save() {
    const s = this.state;
    if (this.client && this.client.snapshot) s.client = this.client.snapshot();
    const data = { ...s, events: s.events.slice(-MAX_CACHED_EVENTS) };
    try {
      localStorage.setItem(this.storageKey(), JSON.stringify(data));
    } catch {
      // storage full or refused: the chat works, a reload starts afresh
    }
  }

  // ---- rendering ----

  render() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.draw();
    });
  }

  draw() {
    this.ui.render(this.view());
    const unread = this.unread();
    if (unread !== this.lastUnread) {
      this.lastUnread = unread;
      this.emit("unread", unread);
    }
  }

  /** What the panel shows now (see ui.js `render`). */
  view() {
    const s = this.state;
    const t = this.t;
    const live = this.live;
    const config = this.config;
    const team = (config && config.group_name) || t("defaultTeam");
    const status = s.record ? s.record.status : null;
    const agentId = s.record && (s.record.agent || s.record.last_agent);
    const agentName = status === "assigned" && agentId ? titleCase(agentId) : null;
    const closedHours = !!config && config.open === false;
    /** @type {any} */
    const view = {
      open: s.panelOpen,
      unread: this.unread(),
      team,
      agentName,
      subtitle:
        status === "assigned" && agentName
          ? t("subtitleAgent", agentName)
          : status === "closed"
            ? t("subtitleClosed")
            : status === "offline" || (!s.conversation && closedHours)
              ? t("subtitleOffline")
              : status === "on_hold"
                ? t("subtitleOnHold")
                : status === "queued"
                ? t("subtitleQueued")
                : t("subtitleDefault"),
      canEnd: !!s.conversation && status !== "closed" && !this.fatal,
      connection: null,
      error: this.fatal ? this.fatal.text : null,
      retry: this.fatal ? this.fatal.retry : false,
      form: null,
      items: [],
      typing: null,
      closed: false,
      askEmail: false,
      notice: live.notice || null,
      noticeId: null,
      composer: false,
    };
    if (this.fatal) {
      view.subtitle = "";
      return view;
    }
    if (!config) {
      view.connection = t("connecting");
      return view;
    }
    if (!live.online) view.connection = this.everOnline ? t("reconnecting") : t("connecting");

    const waitingForOpen = !s.conversation && (s.openClientId || s.queued.length > 0);
    if (!s.conversation && !waitingForOpen) {
      const prechat = Array.isArray(config.prechat) ? config.prechat : [];
      if (closedHours) {
        view.form = {
          kind: "offline",
          key: "offline",
          intro: [t("offlineTitle"), t("offlineIntro")],
          note: config.next_opening ? t("offlineNextOpening", new Date(config.next_opening).toLocaleString(this.lang, { weekday: "long", hour: "2-digit", minute: "2-digit" })) : null,
          fields: [
            ...prechat.filter((/** @type {any} */ f) => f.name !== "email"),
            { name: "__message", label: t("offlineMessage"), kind: "textarea", required: true },
            { name: "__email", label: t("offlineEmail"), kind: "email", required: true },
          ],
          values: s.emailGiven ? { __email: s.emailGiven } : {},
        };
        return view;
      }
      if (prechat.length > 0) {
        view.form = { kind: "prechat", key: "prechat", intro: [t("prechatIntro")], fields: prechat, values: {} };
        if (config.welcome) view.form.intro.unshift(config.welcome);
        return view;
      }
    }

    // The transcript.
    /** @type {any[]} */
    const items = [];
    const events = s.conversation ? s.events : [];
    const hasWelcome = events.some((e) => e.data && e.data.type === "message" && e.author && e.author.role === "system");
    if (config.welcome && !hasWelcome) items.push({ kind: "message", mine: false, author: team, text: config.welcome });
    else if (!config.welcome && !s.conversation && !waitingForOpen) items.push({ kind: "system", intro: true, text: t("emptyIntro") });
    let lastMine = -1;
    for (const event of events) {
      const data = event.data || {};
      if (data.type === "message") {
        const author = event.author || {};
        const mine = author.role === "visitor";
        const item = {
          kind: "message",
          mine,
          seq: event.seq,
          clientId: event.client_id || null,
          author: author.role === "agent" ? titleCase(author.id) : author.role === "system" ? team : null,
          text: data.body ? data.body.text : "",
          attachments: data.body && Array.isArray(data.body.attachments) ? data.body.attachments : [],
          meta: timeOf(event.at, this.lang),
          seen: false,
        };
        if (mine) lastMine = items.length;
        items.push(item);
      } else {
        const text = this.systemText(event);
        if (text) items.push({ kind: "system", seq: event.seq, text });
      }
    }
    if (lastMine >= 0 && live.agentRead >= items[lastMine].seq) {
      items[lastMine].meta = `${items[lastMine].meta} · ${t("seen")}`;
      items[lastMine].seen = true;
    }
    const shown = new Set(events.map((e) => e.client_id).filter(Boolean));
    const pendingMeta = live.online ? t("sending") : t("pending");
    if (s.conversation) {
      // Before the client has started (a reload), its unsent messages are in the saved snapshot.
      /** @type {any[]} */
      const unsent =
        this.client && this.client.pendingFor
          ? this.client.pendingFor(s.conversation)
          : ((s.client && s.client.pending) || []).filter((/** @type {any} */ p) => p.conversation === s.conversation);
      for (const p of unsent) {
        if (shown.has(p.client_id)) continue;
        const files = (p.attachments || []).map((/** @type {string} */ id) => live.uploaded.get(id)).filter(Boolean);
        items.push({ kind: "message", mine: true, pending: true, clientId: p.client_id, text: p.body.text, attachments: files, meta: live.acked.has(p.client_id) ? t("sent") : pendingMeta });
      }
    }
    for (const q of s.queued) items.push({ kind: "message", mine: true, pending: true, clientId: q.id, text: q.text, meta: pendingMeta });
    for (const u of live.uploading) items.push({ kind: "message", mine: true, pending: true, clientId: u.id, text: t("uploading", u.name), meta: pendingMeta });
    for (const f of live.failed) items.push({ kind: "message", mine: true, failed: true, clientId: f.client_id, text: f.text, meta: t("notSent", f.reason) });
    view.items = items;

    const typing = live.typing && live.typing.until > Date.now() ? live.typing : null;
    if (typing && status !== "closed") view.typing = t("typing", titleCase(typing.who) || t("agentFallback"));

    if (status === "closed") {
      view.closed = true;
      view.rating = this.ratingView();
    } else if (status === "offline" || (waitingForOpen && closedHours)) {
      if (s.offlineSent) view.notice = view.notice || t("offlineThanks");
      else if (!s.emailGiven) view.askEmail = true;
      view.composer = true;
    } else {
      view.composer = true;
      view.canAttach = !!s.conversation && !!this.client;
      if (status === "queued" && !view.notice) {
        const place = live.position && live.position.conversation === s.conversation ? live.position : null;
        let text = t("queueWaiting");
        if (place) {
          text += ` ${t("queuePosition", place.position)}`;
          if (typeof place.estimated_wait_ms === "number") text += ` ${t("queueWait", Math.max(1, Math.round(place.estimated_wait_ms / 60_000)))}`;
        }
        view.notice = text;
        view.noticeId = "kf-queue";
      }
    }
    return view;
  }

  /** @param {any} event */
  systemText(event) {
    const t = this.t;
    const data = event.data || {};
    const author = event.author || {};
    const who = author.role === "agent" ? titleCase(author.id) : author.role === "visitor" ? t("you") : null;
    switch (data.type) {
      case "assigned":
        return t("assigned", titleCase(data.agent));
      case "closed":
        return who ? t("closedBy", who) : t("closedSystem");
      case "reopened":
        return t("reopened");
      case "transferred":
        return data.agent ? t("transferredAgent", titleCase(data.agent)) : t("transferredQueue");
      case "offline":
        return t("offlineEvent");
      // On hold (an agent snoozed it): the visitor learns the team will come back and that writing brings it
      // back at once. `woken` says nothing of its own: the `assigned` that follows it names who is back.
      case "snoozed":
        return t("snoozed");
      default:
        return null; // created, woken, missed (for agents), kinds this widget does not know
    }
  }

  // ---- the JS API (window.kf) ----

  installApi() {
    const kf = this.kf;
    /** @type {Record<string, Function>} */
    const api = {
      open: () => this.open(),
      close: () => this.close(),
      toggle: () => this.toggle(),
      identify: (/** @type {Identity} */ identity) => this.identify(identity),
      logout: () => this.logout(),
      on: (/** @type {string} */ event, /** @type {Function} */ fn) => this.on(event, fn),
      off: (/** @type {string} */ event, /** @type {Function} */ fn) => this.off(event, fn),
      debug: () => this.debug(),
    };
    const queued = Array.isArray(kf.q) ? kf.q.splice(0) : [];
    for (const [name, fn] of Object.entries(api)) kf[name] = fn;
    kf.__call = (/** @type {string} */ name, /** @type {any[]} */ ...args) => {
      const fn = api[name];
      if (!fn) {
        console.warn(`kf widget: unknown call kf("${name}")`);
        return undefined;
      }
      return fn(...args);
    };
    for (const call of queued) {
      const [name, ...args] = Array.from(call);
      try {
        kf.__call(name, ...args);
      } catch (error) {
        console.error(`kf widget: kf("${name}") failed`, error);
      }
    }
  }

  /**
   * @param {string} event ready | unread | state | message
   * @param {Function} fn
   */
  on(event, fn) {
    if (typeof fn !== "function") return;
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    /** @type {Set<Function>} */ (this.listeners.get(event)).add(fn);
    if (event === "ready" && this.readyFired) queueMicrotask(() => fn());
  }

  /**
   * @param {string} event
   * @param {Function} fn
   */
  off(event, fn) {
    const set = this.listeners.get(event);
    if (set) set.delete(fn);
  }

  /**
   * @param {string} event
   * @param {any} value
   */
  emit(event, value) {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(value);
      } catch (error) {
        console.error(`kf widget: a "${event}" listener failed`, error);
      }
    }
  }

  /**
   * Continues as a signed-in user of the host site: a new session for that user (verified by the server with
   * `user_hash`), with that user's conversations on every device.
   * @param {Identity} identity
   */
  async identify(identity) {
    if (!identity || typeof identity.user_id !== "string" || typeof identity.user_hash !== "string") {
      throw new TypeError("kf.identify needs {user_id, user_hash}");
    }
    const same = this.identity && this.identity.user_id === identity.user_id && this.identity.user_hash === identity.user_hash;
    if (same && !this.fatal) return;
    await this.switchIdentity({ ...identity });
  }

  /** Back to an anonymous visitor (e.g. when the user signs out of the host site). */
  async logout() {
    if (!this.identity) return;
    localStorage.removeItem(this.storageKey());
    await this.switchIdentity(null);
  }

  /** @param {Identity | null} identity */
  async switchIdentity(identity) {
    if (this.starting) {
      // init() is under way: it picks this identity up before it connects.
      const panelOpen = this.state.panelOpen;
      this.identity = identity;
      this.state = this.load();
      this.state.panelOpen = panelOpen;
      this.identityChanged = true;
      this.render();
      return;
    }
    this.stopClient();
    const panelOpen = this.state.panelOpen;
    this.identity = identity;
    this.state = this.load();
    this.state.panelOpen = panelOpen;
    this.live.failed = [];
    this.live.position = null;
    this.live.agentRead = 0;
    this.live.readSent = 0;
    this.live.typing = null;
    this.transport = "auto";
    this.wsFailures = 0;
    this.pageSentUrl = null;
    this.ui.formKey = null;
    this.fatal = null;
    this.render();
    try {
      if (!this.config) this.config = await this.fetchConfig();
      await this.ensureSession(true);
      if (!this.clientModule) this.clientModule = await this.loadClient();
    } catch (error) {
      this.fail(error);
      return;
    }
    this.startClient();
    this.render();
  }

  /** A summary of the widget's state, for debugging (and the browser check). */
  debug() {
    const s = this.state;
    const client = this.client;
    return {
      visitorId: s.visitorId,
      identified: !!this.identity,
      conversation: s.conversation,
      status: s.record ? s.record.status : null,
      transport: client ? client.transport : null,
      online: this.live.online,
      fatal: this.fatal ? this.fatal.text : null,
      seqs: s.events.map((e) => e.seq),
      texts: s.events.filter((e) => e.data && e.data.type === "message").map((e) => e.data.body.text),
      pending: client && client.pendingFor && s.conversation ? client.pendingFor(s.conversation).map((/** @type {any} */ p) => p.body.text) : [],
      queued: s.queued.map((q) => q.text),
      fields: ((s.events.find((e) => e.data && e.data.type === "created") || {}).data || {}).fields || null,
      unread: this.unread(),
      panelOpen: s.panelOpen,
      lang: this.lang,
    };
  }
}
