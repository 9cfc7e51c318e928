// requests.js: matching replies to requests by `id` (protocol §3). The server copies a request's id into its
// reply or its `error`; replies on one connection come in request order, so several requests waiting under the
// same id are answered first come, first served.

/** @typedef {import("./types.js").Frame} Frame */
/** @typedef {import("./types.js").Timers} Timers */

/** A request that failed: the server's `error` frame, or a local reason (offline, disconnected, timeout). */
export class KfRequestError extends Error {
  /**
   * @param {string} code the protocol error code (§10), or "offline" / "disconnected" / "timeout"
   * @param {string} [message]
   * @param {Frame} [frame] the `error` frame, when the server sent one
   */
  constructor(code, message, frame) {
    super(message ? `${code}: ${message}` : code);
    this.name = "KfRequestError";
    this.code = code;
    this.frame = frame;
  }
}

/**
 * @typedef {object} Waiting
 * @property {(frame: Frame) => void} resolve
 * @property {(error: KfRequestError) => void} reject
 * @property {unknown} timer
 */

export class Requests {
  /** @param {Timers} timers */
  constructor(timers) {
    this.timers = timers;
    /** @type {Map<string, Waiting[]>} request id -> requests waiting under it, oldest first */
    this.waiting = new Map();
  }

  /**
   * Waits for the reply to a request already given `id`; rejects after `timeoutMs` without one.
   * @param {string} id
   * @param {number} timeoutMs
   * @returns {Promise<Frame>}
   */
  wait(id, timeoutMs) {
    return new Promise((resolve, reject) => {
      /** @type {Waiting} */
      const entry = { resolve, reject, timer: null };
      entry.timer = this.timers.setTimeout(() => {
        this.remove(id, entry);
        reject(new KfRequestError("timeout", `no reply to request ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      const queue = this.waiting.get(id) || [];
      queue.push(entry);
      this.waiting.set(id, queue);
    });
  }

  /**
   * Settles the oldest request waiting under the frame's id, if any: resolved with a reply, rejected with an
   * `error`. Returns whether one was waiting.
   * @param {Frame} frame
   * @returns {boolean}
   */
  settle(frame) {
    if (typeof frame.id !== "string") return false;
    const queue = this.waiting.get(frame.id);
    if (!queue || !queue.length) return false;
    const entry = /** @type {Waiting} */ (queue.shift());
    if (!queue.length) this.waiting.delete(frame.id);
    this.timers.clearTimeout(entry.timer);
    if (frame.type === "error") entry.reject(new KfRequestError(String(frame.code), typeof frame.message === "string" ? frame.message : undefined, frame));
    else entry.resolve(frame);
    return true;
  }

  /**
   * Fails every waiting request: their connection is gone, and a reply sent on it will never come (§10: only a
   * dropped connection fails requests that had no answer).
   * @param {string} code
   * @param {string} message
   */
  failAll(code, message) {
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    for (const entry of all) {
      this.timers.clearTimeout(entry.timer);
      entry.reject(new KfRequestError(code, message));
    }
  }

  /** @param {string} id @param {Waiting} entry */
  remove(id, entry) {
    const queue = this.waiting.get(id);
    if (!queue) return;
    const index = queue.indexOf(entry);
    if (index >= 0) queue.splice(index, 1);
    if (!queue.length) this.waiting.delete(id);
  }
}
