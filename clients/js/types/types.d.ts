/**
 * Who wrote an event or a frame (protocol §6.2).
 */
export type Actor = {
    role: "visitor" | "agent" | "system" | string;
    id?: string | undefined;
};
/**
 * Any server or client frame: a JSON object with a `type` (protocol §3).
 */
export type Frame = {
    type: string;
    id?: string;
    [field: string]: unknown;
};
/**
 * A committed event of a conversation (protocol §6.4, §8.6).
 */
export type EventFrame = {
    type: "event";
    conversation: string;
    seq: number;
    at?: number | undefined;
    author?: Actor | undefined;
    data: {
        type: string;
        [field: string]: unknown;
    };
    client_id?: string | undefined;
};
/**
 * A typed attribute value (protocol §6.5): exactly one of its fields.
 */
export type AttributeValue = {
    string: string;
} | {
    number: number;
} | {
    bool: boolean;
} | {
    date: string;
};
/**
 * A label of the tenant (protocol §6.5).
 */
export type Label = {
    tenant: string;
    name: string;
    /**
     * `#rrggbb`
     */
    color: string;
};
/**
 * A declared attribute (protocol §6.5).
 */
export type AttributeDefinition = {
    tenant: string;
    object: "visitor" | "conversation";
    key: string;
    kind: "string" | "number" | "bool" | "date";
    name?: string | undefined;
};
/**
 * The answer to `definitions` (protocol §8.27).
 */
export type DefinitionsFrame = {
    type: "definitions";
    id?: string | undefined;
    labels: Label[];
    attributes: AttributeDefinition[];
};
/**
 * An `ack` (protocol §8.7).
 */
export type AckFrame = {
    type: "ack";
    id?: string | undefined;
    conversation: string;
    client_id: string;
    seq: number;
    duplicate: boolean;
};
/**
 * An `error` frame (protocol §8.12).
 */
export type ErrorFrame = {
    type: "error";
    id?: string | undefined;
    code: string;
    message?: string | undefined;
};
/**
 * A message written here and not yet acknowledged; resent with the same `client_id` until it is (protocol §15).
 */
export type PendingSend = {
    conversation: string;
    client_id: string;
    body: {
        text: string;
    };
    /**
     * ids of uploaded files sent with it (protocol §23)
     */
    attachments?: string[] | undefined;
    /**
     * refusals worth a retry so far (rate_limited…)
     */
    retries?: number | undefined;
};
/**
 * Where a conversation's log has been applied up to, and the store epoch that seq belongs to (protocol §17).
 */
export type Cursor = {
    seq: number;
    epoch: string | null;
};
/**
 * What the client persists (and what `snapshot()` returns / the `state` option takes).
 */
export type ClientState = {
    /**
     * conversation id -> cursor
     */
    cursors?: Record<string, Cursor> | undefined;
    /**
     * sends not acknowledged yet, in the order they were written
     */
    pending?: PendingSend[] | undefined;
    /**
     * SSE: the `id` of the last event received (opaque, protocol §21.4)
     */
    sseCursor?: string | null | undefined;
    /**
     * SSE: events of conversations not subscribed to (yet)
     */
    unclaimed?: Record<string, EventFrame[]> | undefined;
    /**
     * transport "auto": when WebSockets last failed here (ms since the epoch)
     */
    fallbackAt?: number | undefined;
    /**
     * `open` requests not answered yet, in order
     */
    opens?: OpenRequest[] | undefined;
};
/**
 * An `open` request kept until answered (protocol §7.2): the frame's fields but `type` and `id`.
 */
export type OpenRequest = {
    client_id: string;
    /**
     * the entry point
     */
    entry?: string | undefined;
    group?: string | undefined;
    /**
     * pre-chat answers
     */
    fields?: Record<string, string> | undefined;
};
export type Status = "connecting" | "online" | "offline" | "stopped";
export type StatusDetail = {
    /**
     * a reason for people and logs
     */
    why?: string | undefined;
    /**
     * "offline": when the next attempt starts
     */
    retryInMs?: number | undefined;
    /**
     * "connecting": the transport of this attempt
     */
    transport?: "ws" | "sse" | undefined;
    /**
     * "connecting": true when WebSockets failed and this attempt is the switch to SSE
     */
    fallback?: boolean | undefined;
};
/**
 * The part of the Web Storage API the client uses (localStorage, sessionStorage, or a stand-in).
 */
export type StorageArea = {
    getItem: (key: string) => string | null;
    setItem: (key: string, value: string) => void;
    removeItem: (key: string) => void;
};
export type StorageOption = {
    /**
     * the item the state is kept under (one client per key)
     */
    key: string;
    /**
     * default: localStorage when usable, else memory (lost on reload)
     */
    area?: StorageArea | undefined;
};
/**
 * Timers, injectable so tests can drive time.
 */
export type Timers = {
    setTimeout: (callback: () => void, ms: number) => unknown;
    clearTimeout: (handle: unknown) => void;
};
/**
 * An event target (window, document) the client listens to; only these two methods are used.
 */
export type Listenable = {
    addEventListener: (type: string, listener: () => void) => void;
    removeEventListener: (type: string, listener: () => void) => void;
};
export type KfClientOptions = {
    /**
     * called before each connection attempt and POST
     */
    getToken: () => Promise<string> | string;
    /**
     * default "auto": WebSocket, falling back to SSE when it fails
     */
    transport?: "ws" | "sse" | "auto" | undefined;
    /**
     * WebSocket URL (absolute for another origin); default: this page's origin + /ws
     */
    url?: string | undefined;
    /**
     * base URL of the SSE endpoints; default: the origin of `url` + /sse, or /sse
     */
    sseBase?: string | undefined;
    /**
     * base URL of the attachment endpoints (protocol §23); default: the origin of `url` + /files, or /files
     */
    filesBase?: string | undefined;
    /**
     * persist the client state (cursors, pending sends…) under this key
     */
    storage?: StorageOption | undefined;
    /**
     * a previous `snapshot()`; wins over what `storage` holds
     */
    state?: ClientState | undefined;
    /**
     * transport "auto": a new client starts on SSE for this long after a
     * WebSocket failure (default 10 minutes)
     */
    wsRetryAfterMs?: number | undefined;
    /**
     * default timeout of `request()` (default 30 s)
     */
    requestTimeoutMs?: number | undefined;
    /**
     * whether an event's author is this client's
     * principal (its own message settles a pending send); default: every author
     */
    isMine?: ((author: Actor | undefined) => boolean) | undefined;
    /**
     * a refused token: return
     * true to retry once with a fresh one from getToken
     */
    onAuthError?: ((code: string, message: string) => Promise<boolean> | boolean) | undefined;
    onStatus?: ((status: Status, detail?: StatusDetail) => void) | undefined;
    /**
     * every frame not consumed by the client (welcome, inbox, replies…)
     */
    onFrame?: ((frame: Frame) => void) | undefined;
    /**
     * a new event (seq > last applied) of a subscribed conversation
     */
    onEvent?: ((event: EventFrame) => void) | undefined;
    /**
     * drop what you hold for this conversation (epoch change)
     */
    onReset?: ((conversation: string) => void) | undefined;
    /**
     * the history replayed after a subscribe is applied
     */
    onCaughtUp?: ((conversation: string) => void) | undefined;
    /**
     * a participant's seen mark moved
     * forward (from `inbox` and `subscribed` after a reconnect, or a live `read`); see `seen(conversation)`
     */
    onSeen?: ((conversation: string, from: Actor, seq: number) => void) | undefined;
    onAck?: ((clientId: string, seq: number, conversation: string) => void) | undefined;
    onSendFailed?: ((clientId: string, code: string, message: string | undefined, pending: PendingSend) => void) | undefined;
    /**
     * cursors or pending sends changed
     */
    onChange?: (() => void) | undefined;
    /**
     * the client switched transport
     */
    onTransport?: ((transport: "ws" | "sse", why: string) => void) | undefined;
    /**
     * default: the global
     */
    WebSocket?: {
        new (url: string | URL, protocols?: string | string[]): WebSocket;
        prototype: WebSocket;
        readonly CONNECTING: 0;
        readonly OPEN: 1;
        readonly CLOSING: 2;
        readonly CLOSED: 3;
    } | undefined;
    /**
     * default: the global
     */
    EventSource?: {
        new (url: string | URL, eventSourceInitDict?: EventSourceInit): EventSource;
        prototype: EventSource;
        readonly CONNECTING: 0;
        readonly OPEN: 1;
        readonly CLOSED: 2;
    } | undefined;
    /**
     * default: the global
     */
    fetch?: typeof fetch | undefined;
    /**
     * default: the global setTimeout/clearTimeout
     */
    timers?: Timers | undefined;
    /**
     * default: Math.random (jitter)
     */
    random?: (() => number) | undefined;
    /**
     * default: Date.now
     */
    now?: (() => number) | undefined;
    /**
     * `online`/`offline` events; default: the global window, if any
     */
    window?: Listenable | undefined;
    /**
     * `visibilitychange`; default: the global
     */
    document?: (Listenable & {
        visibilityState?: string;
    }) | undefined;
    /**
     * default: the global navigator, if any
     */
    navigator?: {
        onLine?: boolean;
    } | undefined;
    /**
     * default: console
     */
    logger?: {
        warn: (...args: unknown[]) => void;
        error: (...args: unknown[]) => void;
    } | undefined;
};
/**
 * A file sent with a message, as the server recorded it at upload (protocol §23.1).
 */
export type Attachment = {
    id: string;
    name: string;
    /**
     * sniffed from the bytes
     */
    content_type: string;
    /**
     * bytes
     */
    size: number;
    /**
     * images
     */
    width?: number | undefined;
    /**
     * images
     */
    height?: number | undefined;
    /**
     * images with a thumbnail
     */
    thumbnail?: boolean | undefined;
};
/**
 * A short-lived signed link to an attachment (protocol §23.3).
 */
export type FileLink = {
    attachment: Attachment;
    url: string;
    /**
     * images
     */
    thumbnail_url?: string | undefined;
    /**
     * ms since the epoch
     */
    expires_at: number;
};
