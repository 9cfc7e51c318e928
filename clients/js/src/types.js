// types.js: the shapes the client exchanges with the page and the server, as JSDoc types (no code).
// Frame fields follow docs/protocol.md §6–§8; only the fields the client itself reads are spelled out, the rest
// ride along in the index signature (the protocol lets the server add fields at any time, §2).

/**
 * Who wrote an event or a frame (protocol §6.2).
 * @typedef {object} Actor
 * @property {"visitor" | "agent" | "system" | string} role
 * @property {string} [id]
 */

/**
 * Any server or client frame: a JSON object with a `type` (protocol §3).
 * @typedef {{ type: string, id?: string, [field: string]: unknown }} Frame
 */

/**
 * A committed event of a conversation (protocol §6.4, §8.6).
 * @typedef {object} EventFrame
 * @property {"event"} type
 * @property {string} conversation
 * @property {number} seq
 * @property {number} [at]
 * @property {Actor} [author]
 * @property {{ type: string, [field: string]: unknown }} data
 * @property {string} [client_id]
 */

/**
 * A typed attribute value (protocol §6.5): exactly one of its fields.
 * @typedef {{ string: string } | { number: number } | { bool: boolean } | { date: string }} AttributeValue
 */

/**
 * A label of the tenant (protocol §6.5).
 * @typedef {object} Label
 * @property {string} tenant
 * @property {string} name
 * @property {string} color `#rrggbb`
 */

/**
 * A declared attribute (protocol §6.5).
 * @typedef {object} AttributeDefinition
 * @property {string} tenant
 * @property {"visitor" | "conversation"} object
 * @property {string} key
 * @property {"string" | "number" | "bool" | "date"} kind
 * @property {string} [name]
 */

/**
 * The answer to `definitions` (protocol §8.27).
 * @typedef {object} DefinitionsFrame
 * @property {"definitions"} type
 * @property {string} [id]
 * @property {Label[]} labels
 * @property {AttributeDefinition[]} attributes
 */

/**
 * An `ack` (protocol §8.7).
 * @typedef {object} AckFrame
 * @property {"ack"} type
 * @property {string} [id]
 * @property {string} conversation
 * @property {string} client_id
 * @property {number} seq
 * @property {boolean} duplicate
 */

/**
 * An `error` frame (protocol §8.12).
 * @typedef {object} ErrorFrame
 * @property {"error"} type
 * @property {string} [id]
 * @property {string} code
 * @property {string} [message]
 */

/**
 * A message written here and not yet acknowledged; resent with the same `client_id` until it is (protocol §15).
 * @typedef {object} PendingSend
 * @property {string} conversation
 * @property {string} client_id
 * @property {{ text: string }} body
 * @property {string[]} [attachments] ids of uploaded files sent with it (protocol §23)
 * @property {number} [retries] refusals worth a retry so far (rate_limited…)
 */

/**
 * Where a conversation's log has been applied up to, and the store epoch that seq belongs to (protocol §17).
 * @typedef {object} Cursor
 * @property {number} seq
 * @property {string | null} epoch
 */

/**
 * What the client persists (and what `snapshot()` returns / the `state` option takes).
 * @typedef {object} ClientState
 * @property {Record<string, Cursor>} [cursors] conversation id -> cursor
 * @property {PendingSend[]} [pending] sends not acknowledged yet, in the order they were written
 * @property {string | null} [sseCursor] SSE: the `id` of the last event received (opaque, protocol §21.4)
 * @property {Record<string, EventFrame[]>} [unclaimed] SSE: events of conversations not subscribed to (yet)
 * @property {number} [fallbackAt] transport "auto": when WebSockets last failed here (ms since the epoch)
 * @property {OpenRequest[]} [opens] `open` requests not answered yet, in order
 */

/**
 * An `open` request kept until answered (protocol §7.2): the frame's fields but `type` and `id`.
 * @typedef {object} OpenRequest
 * @property {string} client_id
 * @property {string} [entry] the entry point
 * @property {string} [group]
 * @property {Record<string, string>} [fields] pre-chat answers
 */

/**
 * @typedef {"connecting" | "online" | "offline" | "stopped"} Status
 */

/**
 * @typedef {object} StatusDetail
 * @property {string} [why] a reason for people and logs
 * @property {number} [retryInMs] "offline": when the next attempt starts
 * @property {"ws" | "sse"} [transport] "connecting": the transport of this attempt
 * @property {boolean} [fallback] "connecting": true when WebSockets failed and this attempt is the switch to SSE
 */

/**
 * The part of the Web Storage API the client uses (localStorage, sessionStorage, or a stand-in).
 * @typedef {object} StorageArea
 * @property {(key: string) => string | null} getItem
 * @property {(key: string, value: string) => void} setItem
 * @property {(key: string) => void} removeItem
 */

/**
 * @typedef {object} StorageOption
 * @property {string} key the item the state is kept under (one client per key)
 * @property {StorageArea} [area] default: localStorage when usable, else memory (lost on reload)
 */

/**
 * Timers, injectable so tests can drive time.
 * @typedef {object} Timers
 * @property {(callback: () => void, ms: number) => unknown} setTimeout
 * @property {(handle: unknown) => void} clearTimeout
 */

/**
 * An event target (window, document) the client listens to; only these two methods are used.
 * @typedef {object} Listenable
 * @property {(type: string, listener: () => void) => void} addEventListener
 * @property {(type: string, listener: () => void) => void} removeEventListener
 */

/**
 * @typedef {object} KfClientOptions
 * @property {() => Promise<string> | string} getToken called before each connection attempt and POST
 * @property {"auto" | "ws" | "sse"} [transport] default "auto": WebSocket, falling back to SSE when it fails
 * @property {string} [url] WebSocket URL (absolute for another origin); default: this page's origin + /ws
 * @property {string} [sseBase] base URL of the SSE endpoints; default: the origin of `url` + /sse, or /sse
 * @property {string} [filesBase] base URL of the attachment endpoints (protocol §23); default: the origin of `url` + /files, or /files
 * @property {StorageOption} [storage] persist the client state (cursors, pending sends…) under this key
 * @property {ClientState} [state] a previous `snapshot()`; wins over what `storage` holds
 * @property {number} [wsRetryAfterMs] transport "auto": a new client starts on SSE for this long after a
 *   WebSocket failure (default 10 minutes)
 * @property {number} [requestTimeoutMs] default timeout of `request()` (default 30 s)
 * @property {(author: Actor | undefined) => boolean} [isMine] whether an event's author is this client's
 *   principal (its own message settles a pending send); default: every author
 * @property {(code: string, message: string) => Promise<boolean> | boolean} [onAuthError] a refused token: return
 *   true to retry once with a fresh one from getToken
 * @property {(status: Status, detail?: StatusDetail) => void} [onStatus]
 * @property {(frame: Frame) => void} [onFrame] every frame not consumed by the client (welcome, inbox, replies…)
 * @property {(event: EventFrame) => void} [onEvent] a new event (seq > last applied) of a subscribed conversation
 * @property {(conversation: string) => void} [onReset] drop what you hold for this conversation (epoch change)
 * @property {(conversation: string) => void} [onCaughtUp] the history replayed after a subscribe is applied
 * @property {(conversation: string, from: Actor, seq: number) => void} [onSeen] a participant's seen mark moved
 *   forward (from `inbox` and `subscribed` after a reconnect, or a live `read`); see `seen(conversation)`
 * @property {(clientId: string, seq: number, conversation: string) => void} [onAck]
 * @property {(clientId: string, code: string, message: string | undefined, pending: PendingSend) => void} [onSendFailed]
 * @property {() => void} [onChange] cursors or pending sends changed
 * @property {(transport: "ws" | "sse", why: string) => void} [onTransport] the client switched transport
 * @property {typeof WebSocket} [WebSocket] default: the global
 * @property {typeof EventSource} [EventSource] default: the global
 * @property {typeof fetch} [fetch] default: the global
 * @property {Timers} [timers] default: the global setTimeout/clearTimeout
 * @property {() => number} [random] default: Math.random (jitter)
 * @property {() => number} [now] default: Date.now
 * @property {Listenable} [window] `online`/`offline` events; default: the global window, if any
 * @property {Listenable & { visibilityState?: string }} [document] `visibilitychange`; default: the global
 * @property {{ onLine?: boolean }} [navigator] default: the global navigator, if any
 * @property {{ warn: (...args: unknown[]) => void, error: (...args: unknown[]) => void }} [logger] default: console
 */

export {};

/**
 * A file sent with a message, as the server recorded it at upload (protocol §23.1).
 * @typedef {object} Attachment
 * @property {string} id
 * @property {string} name
 * @property {string} content_type sniffed from the bytes
 * @property {number} size bytes
 * @property {number} [width] images
 * @property {number} [height] images
 * @property {boolean} [thumbnail] images with a thumbnail
 */

/**
 * A short-lived signed link to an attachment (protocol §23.3).
 * @typedef {object} FileLink
 * @property {Attachment} attachment
 * @property {string} url
 * @property {string} [thumbnail_url] images
 * @property {number} expires_at ms since the epoch
 */

