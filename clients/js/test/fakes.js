// Test doubles for everything the client takes from its environment: a WebSocket and an EventSource whose
// "server side" the test drives, fetch, timers on a fake clock, window/document event targets and storage.
// No test in this file: `node --test test/` loads it and finds none.

import { KfClient, memoryArea } from "../src/index.js";

/** Timers on a fake clock: nothing runs until `advance`. */
export class FakeTimers {
  constructor() {
    this.time = 1_000_000;
    this.nextId = 1;
    /** @type {Map<number, {at: number, fn: () => void}>} */
    this.pending = new Map();
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.pending.set(id, { at: this.time + Math.max(0, ms || 0), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.pending.delete(id);
    };
    this.now = () => this.time;
  }

  /** Runs every timer due within `ms`, in time order (also those they schedule), then sets the clock. */
  advance(ms) {
    const end = this.time + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.pending) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
      if (!next) break;
      this.pending.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = end;
  }

  /** The delays (from now) of the timers waiting, shortest first. */
  delays() {
    return [...this.pending.values()].map((t) => t.at - this.time).sort((a, b) => a - b);
  }
}

/** A WebSocket class whose instances the test opens, feeds and closes. */
export function fakeWebSocketClass({ throws = false } = {}) {
  const instances = [];
  class FakeWebSocket {
    constructor(url) {
      if (throws) throw new Error("WebSockets are blocked here");
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      instances.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error("not open");
      this.sent.push(JSON.parse(data));
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      this.readyState = 3;
    }
    // ---- the server side ----
    open() {
      this.readyState = 1;
      if (this.onopen) this.onopen({});
    }
    receive(frame) {
      if (this.onmessage) this.onmessage({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
    }
    serverClose(code = 1006, reason = "") {
      this.readyState = 3;
      if (this.onerror) this.onerror({});
      if (this.onclose) this.onclose({ code, reason });
    }
    sentOf(type) {
      return this.sent.filter((f) => f.type === type);
    }
  }
  FakeWebSocket.instances = instances;
  return FakeWebSocket;
}

/** An EventSource class whose instances the test opens and feeds. */
export function fakeEventSourceClass() {
  const instances = [];
  class FakeEventSource {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.listeners = new Map();
      this.onopen = this.onmessage = this.onerror = null;
      this.closed = false;
      instances.push(this);
    }
    addEventListener(name, fn) {
      this.listeners.set(name, fn);
    }
    close() {
      this.closed = true;
      this.readyState = 2;
    }
    // ---- the server side ----
    open() {
      this.readyState = 1;
      if (this.onopen) this.onopen({});
    }
    receive(frame, lastEventId = "") {
      if (this.onmessage) this.onmessage({ data: JSON.stringify(frame), lastEventId });
    }
    heartbeat() {
      const fn = this.listeners.get("ping");
      if (fn) fn({ data: '{"type":"ping"}' });
    }
    fail(closed) {
      this.readyState = closed ? 2 : 0;
      if (this.onerror) this.onerror({});
    }
    get params() {
      return new URL(this.url).searchParams;
    }
  }
  FakeEventSource.instances = instances;
  return FakeEventSource;
}

/** fetch answering with `handler(path, frame body, headers)` -> {status, body}; calls are recorded. */
export function fakeFetch(handler) {
  const calls = [];
  const fetch = async (url, init) => {
    const body = init && init.body ? JSON.parse(init.body) : {};
    const call = { url, path: new URL(url).pathname, body, headers: init.headers, init };
    calls.push(call);
    const answer = (await handler(call)) || { status: 204 };
    if (answer.throws) throw new TypeError("Failed to fetch");
    const text = answer.body === undefined ? "" : JSON.stringify(answer.body);
    return { status: answer.status, ok: answer.status >= 200 && answer.status < 300, text: async () => text };
  };
  fetch.calls = calls;
  return fetch;
}

export const WELCOME = (epoch = "e1", limits = {}) => ({
  type: "welcome",
  v: 1,
  tenant: "t",
  principal: { role: "visitor", id: "v1" },
  epoch,
  limits: { max_frame_bytes: 65536, max_text_bytes: 100, ping_interval_ms: 25000, idle_timeout_ms: 60000, ...limits },
});

export const message = (conversation, seq, text, extra = {}) => ({
  type: "event",
  conversation,
  seq,
  at: 0,
  author: { role: "visitor", id: "v1" },
  data: { type: "message", body: { text } },
  ...extra,
});

/** Lets promises (getToken, fetch) settle. */
export const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

/**
 * A client wired to fakes, with everything it emits recorded.
 * @param {object} [options] KfClient options to add or override
 */
export function setup(options = {}) {
  const timers = new FakeTimers();
  const WebSocket = fakeWebSocketClass(options.wsThrows ? { throws: true } : {});
  const EventSource = fakeEventSourceClass();
  const fetch = options.fetch || fakeFetch(() => ({ status: 204 }));
  const window = new EventTarget();
  const document = new EventTarget();
  document.visibilityState = "visible";
  const area = options.area || memoryArea();
  const warnings = [];
  const log = { statuses: [], events: [], frames: [], resets: [], acks: [], failed: [], caughtUp: [], transports: [] };
  const { wsThrows, area: _area, ...rest } = options;
  void wsThrows;
  void _area;
  const client = new KfClient({
    transport: "ws",
    url: "ws://kf.test/ws",
    sseBase: "http://kf.test/sse",
    getToken: async () => "tok",
    WebSocket,
    EventSource,
    fetch,
    timers,
    now: timers.now,
    random: () => 0.5,
    window,
    document,
    navigator: { onLine: true },
    logger: { warn: (...args) => warnings.push(args.map(String).join(" ")), error: (...args) => warnings.push(args.map(String).join(" ")) },
    storage: { key: "kf.test", area },
    onStatus: (status, detail) => log.statuses.push({ status, ...detail }),
    onEvent: (event) => log.events.push(event),
    onFrame: (frame) => log.frames.push(frame),
    onReset: (conversation) => log.resets.push(conversation),
    onAck: (clientId, seq) => log.acks.push({ clientId, seq }),
    onSendFailed: (clientId, code) => log.failed.push({ clientId, code }),
    onCaughtUp: (conversation) => log.caughtUp.push(conversation),
    onTransport: (transport, why) => log.transports.push({ transport, why }),
    ...rest,
  });
  return { client, timers, WebSocket, EventSource, fetch, window, document, area, warnings, log };
}

/** Starts the client and brings its WebSocket to `welcome`; returns the socket. */
export async function connectWs(t, { epoch = "e1", limits = {} } = {}) {
  if (t.client.stopped) t.client.start();
  await flush();
  const ws = t.WebSocket.instances.at(-1);
  ws.open();
  ws.receive(WELCOME(epoch, limits));
  return ws;
}
