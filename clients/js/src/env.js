// env.js: everything the client takes from its environment, with the browser's globals as defaults. Each can be
// injected through the options, so that the client runs (and is tested) in Node without a DOM.

/** @typedef {import("./types.js").KfClientOptions} KfClientOptions */
/** @typedef {import("./types.js").Timers} Timers */
/** @typedef {import("./types.js").Listenable} Listenable */

/**
 * @typedef {object} Env
 * @property {typeof WebSocket | undefined} WebSocket
 * @property {typeof EventSource | undefined} EventSource
 * @property {typeof fetch | undefined} fetch
 * @property {Timers} timers
 * @property {() => number} random
 * @property {() => number} now
 * @property {Listenable | null} window
 * @property {(Listenable & { visibilityState?: string }) | null} document
 * @property {{ onLine?: boolean } | null} navigator
 * @property {{ warn: (...args: unknown[]) => void, error: (...args: unknown[]) => void }} logger
 */

/**
 * @param {KfClientOptions} options
 * @returns {Env}
 */
export function resolveEnv(options) {
  const g = /** @type {Record<string, any>} */ (globalThis); // the globals may be absent (Node): read them loosely
  return {
    WebSocket: options.WebSocket || g.WebSocket,
    EventSource: options.EventSource || g.EventSource,
    // Bound: a bare `fetch` called as a method of another object throws "Illegal invocation" in browsers.
    fetch: options.fetch || (typeof g.fetch === "function" ? g.fetch.bind(globalThis) : undefined),
    timers: options.timers || { setTimeout: (callback, ms) => setTimeout(callback, ms), clearTimeout: (handle) => clearTimeout(/** @type {number} */ (handle)) },
    random: options.random || Math.random,
    now: options.now || Date.now,
    window: options.window || (g.window && typeof g.window.addEventListener === "function" ? g.window : null),
    document: options.document || (g.document && typeof g.document.addEventListener === "function" ? g.document : null),
    navigator: options.navigator || g.navigator || null,
    logger: options.logger || console,
  };
}

/**
 * A fresh client id (protocol §15): a random UUID.
 * @returns {string}
 */
export function newId() {
  if (globalThis.crypto && typeof globalThis.crypto.randomUUID === "function") return globalThis.crypto.randomUUID();
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The WebSocket URL of `path` on this page's origin (ws: or wss: as the page).
 * @param {string} [path]
 * @returns {string}
 */
export function wsUrl(path = "/ws") {
  const location = globalThis.location;
  if (!location) throw new TypeError("kf: no page location here; pass an absolute `url`");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/**
 * The default base of the SSE endpoints: `/sse` on the origin of an absolute WebSocket URL (so a client pointed at
 * another origin talks to that origin over SSE too), else `/sse` on this page's origin.
 * @param {string | undefined} url
 * @returns {string}
 */
export function defaultSseBase(url) {
  if (url && /^wss?:\/\//i.test(url)) {
    const parsed = new URL(url);
    return `${parsed.protocol === "wss:" ? "https:" : "http:"}//${parsed.host}/sse`;
  }
  return "/sse";
}
