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
export function resolveEnv(options: KfClientOptions): Env;
/**
 * A fresh client id (protocol §15): a random UUID.
 * @returns {string}
 */
export function newId(): string;
/**
 * The WebSocket URL of `path` on this page's origin (ws: or wss: as the page).
 * @param {string} [path]
 * @returns {string}
 */
export function wsUrl(path?: string): string;
/**
 * The default base of the SSE endpoints: `/sse` on the origin of an absolute WebSocket URL (so a client pointed at
 * another origin talks to that origin over SSE too), else `/sse` on this page's origin.
 * @param {string | undefined} url
 * @returns {string}
 */
export function defaultSseBase(url: string | undefined): string;
export type KfClientOptions = import("./types.js").KfClientOptions;
export type Timers = import("./types.js").Timers;
export type Listenable = import("./types.js").Listenable;
export type Env = {
    WebSocket: typeof WebSocket | undefined;
    EventSource: typeof EventSource | undefined;
    fetch: typeof fetch | undefined;
    timers: Timers;
    random: () => number;
    now: () => number;
    window: Listenable | null;
    document: (Listenable & {
        visibilityState?: string;
    }) | null;
    navigator: {
        onLine?: boolean;
    } | null;
    logger: {
        warn: (...args: unknown[]) => void;
        error: (...args: unknown[]) => void;
    };
};
