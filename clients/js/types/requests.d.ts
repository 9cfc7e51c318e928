/** @typedef {import("./types.js").Frame} Frame */
/** @typedef {import("./types.js").Timers} Timers */
/** A request that failed: the server's `error` frame, or a local reason (offline, disconnected, timeout). */
export class KfRequestError extends Error {
    /**
     * @param {string} code the protocol error code (§10), or "offline" / "disconnected" / "timeout"
     * @param {string} [message]
     * @param {Frame} [frame] the `error` frame, when the server sent one
     */
    constructor(code: string, message?: string, frame?: Frame);
    code: string;
    frame: import("./types.js").Frame | undefined;
}
/**
 * @typedef {object} Waiting
 * @property {(frame: Frame) => void} resolve
 * @property {(error: KfRequestError) => void} reject
 * @property {unknown} timer
 */
export class Requests {
    /** @param {Timers} timers */
    constructor(timers: Timers);
    timers: import("./types.js").Timers;
    /** @type {Map<string, Waiting[]>} request id -> requests waiting under it, oldest first */
    waiting: Map<string, Waiting[]>;
    /**
     * Waits for the reply to a request already given `id`; rejects after `timeoutMs` without one.
     * @param {string} id
     * @param {number} timeoutMs
     * @returns {Promise<Frame>}
     */
    wait(id: string, timeoutMs: number): Promise<Frame>;
    /**
     * Settles the oldest request waiting under the frame's id, if any: resolved with a reply, rejected with an
     * `error`. Returns whether one was waiting.
     * @param {Frame} frame
     * @returns {boolean}
     */
    settle(frame: Frame): boolean;
    /**
     * Fails every waiting request: their connection is gone, and a reply sent on it will never come (§10: only a
     * dropped connection fails requests that had no answer).
     * @param {string} code
     * @param {string} message
     */
    failAll(code: string, message: string): void;
    /** @param {string} id @param {Waiting} entry */
    remove(id: string, entry: Waiting): void;
}
export type Frame = import("./types.js").Frame;
export type Timers = import("./types.js").Timers;
export type Waiting = {
    resolve: (frame: Frame) => void;
    reject: (error: KfRequestError) => void;
    timer: unknown;
};
