// kf-client: the kf protocol client for browsers (and anything with WebSocket / EventSource / fetch).
// See README.md; the protocol itself is docs/protocol.md in the kf repository.

export { KfClient, PROTOCOL_VERSION, WS_FAILURES_BEFORE_FALLBACK, DEFAULT_WS_RETRY_AFTER_MS } from "./client.js";
export { KfRequestError } from "./requests.js";
export { newId, wsUrl } from "./env.js";
export { memoryArea } from "./storage.js";
export { defaultFilesBase } from "./files.js";
export { reconnectDelay, crowdedDelay, sendRetryDelay } from "./backoff.js";

/** @typedef {import("./types.js").KfClientOptions} KfClientOptions */
/** @typedef {import("./types.js").ClientState} ClientState */
/** @typedef {import("./types.js").Frame} Frame */
/** @typedef {import("./types.js").EventFrame} EventFrame */
/** @typedef {import("./types.js").ErrorFrame} ErrorFrame */
/** @typedef {import("./types.js").PendingSend} PendingSend */
/** @typedef {import("./types.js").Cursor} Cursor */
/** @typedef {import("./types.js").Status} Status */
/** @typedef {import("./types.js").StatusDetail} StatusDetail */
/** @typedef {import("./types.js").StorageArea} StorageArea */
/** @typedef {import("./types.js").StorageOption} StorageOption */
/** @typedef {import("./types.js").Timers} Timers */
/** @typedef {import("./types.js").Actor} Actor */
/** @typedef {import("./types.js").Attachment} Attachment */
/** @typedef {import("./types.js").FileLink} FileLink */
/** @typedef {import("./client.js").ClientEvents} ClientEvents */
