// storage.js: the client's own persistence. The state (cursors, pending sends, the SSE cursor, unclaimed events,
// the transport chosen) is kept as one JSON item, read once at construction and written after every change, so
// that a reload or an offline period loses nothing and resends pending messages with their client ids.
//
// Storage is best effort by nature (private modes, quotas, another script writing garbage): a failure never stops
// the client. Unreadable data starts it clean (with a warning); a failed write is warned about once and the
// state lives on in memory.

/** @typedef {import("./types.js").ClientState} ClientState */
/** @typedef {import("./types.js").Cursor} Cursor */
/** @typedef {import("./types.js").PendingSend} PendingSend */
/** @typedef {import("./types.js").EventFrame} EventFrame */
/** @typedef {import("./types.js").OpenRequest} OpenRequest */
/** @typedef {import("./types.js").StorageArea} StorageArea */
/** @typedef {import("./types.js").StorageOption} StorageOption */
/** @typedef {{ warn: (...args: unknown[]) => void }} Warn */

/** The format of the stored item; another number is not read (a client of another version wrote it). */
export const STATE_VERSION = 1;

/**
 * A Storage-like area in memory: what the client uses where there is no localStorage (Node, some webviews).
 * @returns {StorageArea & { data: Map<string, string> }}
 */
export function memoryArea() {
  const data = new Map();
  return {
    data,
    getItem: (key) => (data.has(key) ? data.get(key) : null),
    setItem: (key, value) => void data.set(key, String(value)),
    removeItem: (key) => void data.delete(key),
  };
}

/**
 * localStorage when this environment has a usable one. Merely touching it throws in some privacy modes, hence
 * the probe.
 * @returns {StorageArea | null}
 */
export function defaultArea() {
  try {
    const area = globalThis.localStorage;
    if (!area) return null;
    const probe = "kf.probe";
    area.setItem(probe, "1");
    area.removeItem(probe);
    return area;
  } catch {
    return null;
  }
}

export class StateStore {
  /**
   * @param {StorageOption} option
   * @param {Warn} logger
   */
  constructor(option, logger) {
    if (!option || typeof option.key !== "string" || !option.key) throw new TypeError("storage.key must be a non-empty string");
    this.key = option.key;
    /** @type {StorageArea} */
    this.area = option.area || defaultArea() || memoryArea();
    this.logger = logger;
    this.writeFailed = false;
  }

  /**
   * The stored state, or null when there is none. Corrupt data is removed and reported, never thrown.
   * @returns {ClientState | null}
   */
  load() {
    let text;
    try {
      text = this.area.getItem(this.key);
    } catch (error) {
      this.logger.warn(`kf: cannot read the stored state (${this.key}); starting clean`, error);
      return null;
    }
    if (text === null || text === undefined) return null;
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      this.logger.warn(`kf: the stored state (${this.key}) is not JSON; starting clean`);
      this.clear();
      return null;
    }
    if (!value || typeof value !== "object" || value.v !== STATE_VERSION) {
      this.logger.warn(`kf: the stored state (${this.key}) is not one this client reads; starting clean`);
      this.clear();
      return null;
    }
    const { state, dropped } = sanitizeState(value);
    if (dropped.length) this.logger.warn(`kf: ignoring damaged parts of the stored state (${this.key}): ${dropped.join(", ")}`);
    return state;
  }

  /** @param {ClientState} state */
  save(state) {
    try {
      this.area.setItem(this.key, JSON.stringify({ v: STATE_VERSION, ...state }));
      this.writeFailed = false;
    } catch (error) {
      // A full quota (or a storage that went away): keep running from memory; say it once, not per event.
      if (!this.writeFailed) this.logger.warn(`kf: cannot save the client state (${this.key}); it is kept in memory only`, error);
      this.writeFailed = true;
    }
  }

  clear() {
    try {
      this.area.removeItem(this.key);
    } catch {
      // nothing more to do: the next save overwrites it
    }
  }
}

/** @param {unknown} value @returns {value is Record<string, unknown>} */
const isObject = (value) => !!value && typeof value === "object" && !Array.isArray(value);
/** @param {unknown} value @returns {value is number} */
const isSeq = (value) => Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;

/**
 * Keeps the parts of a stored state that have the right shape, and names those that did not (so a damaged item
 * costs at most what is damaged: bad cursors replay from seq 1, which dedupe makes harmless).
 * @param {Record<string, unknown>} value
 * @returns {{ state: ClientState, dropped: string[] }}
 */
export function sanitizeState(value) {
  /** @type {ClientState} */
  const state = {};
  /** @type {string[]} */
  const dropped = [];
  if (value.cursors !== undefined) {
    /** @type {Record<string, Cursor>} */
    const cursors = {};
    if (isObject(value.cursors)) {
      for (const [conversation, cursor] of Object.entries(value.cursors)) {
        if (isObject(cursor) && isSeq(cursor.seq) && (cursor.epoch === null || cursor.epoch === undefined || typeof cursor.epoch === "string")) {
          cursors[conversation] = { seq: cursor.seq, epoch: typeof cursor.epoch === "string" ? cursor.epoch : null };
        } else dropped.push(`cursor of ${conversation}`);
      }
    } else dropped.push("cursors");
    state.cursors = cursors;
  }
  if (value.pending !== undefined) {
    /** @type {PendingSend[]} */
    const pending = [];
    if (Array.isArray(value.pending)) {
      for (const p of value.pending) {
        if (isObject(p) && typeof p.conversation === "string" && typeof p.client_id === "string" && isObject(p.body) && typeof p.body.text === "string") {
          /** @type {PendingSend} */
          const send = { conversation: p.conversation, client_id: p.client_id, body: { text: p.body.text } };
          if (isSeq(p.retries)) send.retries = p.retries;
          if (Array.isArray(p.attachments) && p.attachments.every((id) => typeof id === "string")) send.attachments = [...p.attachments];
          pending.push(send);
        } else dropped.push("a pending send");
      }
    } else dropped.push("pending");
    state.pending = pending;
  }
  if (typeof value.sseCursor === "string" || value.sseCursor === null) state.sseCursor = value.sseCursor;
  else if (value.sseCursor !== undefined) dropped.push("sseCursor");
  if (value.unclaimed !== undefined) {
    /** @type {Record<string, EventFrame[]>} */
    const unclaimed = {};
    if (isObject(value.unclaimed)) {
      for (const [conversation, events] of Object.entries(value.unclaimed)) {
        if (Array.isArray(events) && events.every((e) => isObject(e) && isSeq(e.seq) && e.conversation === conversation && isObject(e.data))) {
          unclaimed[conversation] = /** @type {EventFrame[]} */ (events);
        } else dropped.push(`unclaimed events of ${conversation}`);
      }
    } else dropped.push("unclaimed");
    state.unclaimed = unclaimed;
  }
  if (value.opens !== undefined) {
    if (Array.isArray(value.opens)) {
      state.opens = [];
      for (const o of value.opens) {
        const valid = isObject(o) && typeof o.client_id === "string" && (o.fields === undefined || (isObject(o.fields) && Object.values(o.fields).every((f) => typeof f === "string")));
        if (valid) state.opens.push(/** @type {OpenRequest} */ (/** @type {unknown} */ (o)));
        else dropped.push("a pending open");
      }
    } else dropped.push("opens");
  }
  if (isSeq(value.fallbackAt)) state.fallbackAt = value.fallbackAt;
  else if (value.fallbackAt !== undefined) dropped.push("fallbackAt");
  return { state, dropped };
}
