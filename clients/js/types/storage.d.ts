/**
 * A Storage-like area in memory: what the client uses where there is no localStorage (Node, some webviews).
 * @returns {StorageArea & { data: Map<string, string> }}
 */
export function memoryArea(): StorageArea & {
    data: Map<string, string>;
};
/**
 * localStorage when this environment has a usable one. Merely touching it throws in some privacy modes, hence
 * the probe.
 * @returns {StorageArea | null}
 */
export function defaultArea(): StorageArea | null;
/**
 * Keeps the parts of a stored state that have the right shape, and names those that did not (so a damaged item
 * costs at most what is damaged: bad cursors replay from seq 1, which dedupe makes harmless).
 * @param {Record<string, unknown>} value
 * @returns {{ state: ClientState, dropped: string[] }}
 */
export function sanitizeState(value: Record<string, unknown>): {
    state: ClientState;
    dropped: string[];
};
/** @typedef {import("./types.js").ClientState} ClientState */
/** @typedef {import("./types.js").Cursor} Cursor */
/** @typedef {import("./types.js").PendingSend} PendingSend */
/** @typedef {import("./types.js").EventFrame} EventFrame */
/** @typedef {import("./types.js").OpenRequest} OpenRequest */
/** @typedef {import("./types.js").StorageArea} StorageArea */
/** @typedef {import("./types.js").StorageOption} StorageOption */
/** @typedef {{ warn: (...args: unknown[]) => void }} Warn */
/** The format of the stored item; another number is not read (a client of another version wrote it). */
export const STATE_VERSION: 1;
export class StateStore {
    /**
     * @param {StorageOption} option
     * @param {Warn} logger
     */
    constructor(option: StorageOption, logger: Warn);
    key: string;
    /** @type {StorageArea} */
    area: StorageArea;
    logger: Warn;
    writeFailed: boolean;
    /**
     * The stored state, or null when there is none. Corrupt data is removed and reported, never thrown.
     * @returns {ClientState | null}
     */
    load(): ClientState | null;
    /** @param {ClientState} state */
    save(state: ClientState): void;
    clear(): void;
}
export type ClientState = import("./types.js").ClientState;
export type Cursor = import("./types.js").Cursor;
export type PendingSend = import("./types.js").PendingSend;
export type EventFrame = import("./types.js").EventFrame;
export type OpenRequest = import("./types.js").OpenRequest;
export type StorageArea = import("./types.js").StorageArea;
export type StorageOption = import("./types.js").StorageOption;
export type Warn = {
    warn: (...args: unknown[]) => void;
};
