export const PROTOCOL_VERSION: 1;
export const WS_FAILURES_BEFORE_FALLBACK: 2;
export const DEFAULT_WS_RETRY_AFTER_MS: number;
export class KfClient {
    /** @param {KfClientOptions} options */
    constructor(options: KfClientOptions);
    o: import("./types.js").KfClientOptions;
    env: import("./env.js").Env;
    /** @type {"auto" | "ws" | "sse"} */
    mode: "auto" | "ws" | "sse";
    url: string;
    sseBase: string;
    filesBase: string;
    wsRetryAfterMs: number;
    store: StateStore | null;
    fallbackAt: number;
    /** @type {"ws" | "sse"} the transport in use */
    transport: "ws" | "sse";
    wsFailures: number;
    wsWorked: boolean;
    /** @type {string | null} */
    sseCursor: string | null;
    /** @type {Map<string, EventFrame[]>} SSE: conversation id -> events not yet claimed by a subscribe(), by seq */
    unclaimed: Map<string, EventFrame[]>;
    /** @type {EventSource | null} SSE: the EventSource */
    es: EventSource | null;
    followingOn: number;
    /** @type {Promise<Frame | null>} SSE: POSTs that must keep their order (open, send, close) go one by one */
    upstream: Promise<Frame | null>;
    sseStats: {
        eventSources: number;
        opens: number;
        applied: number;
        dropped: number;
        replays: number;
    };
    /** @type {Map<string, Cursor>} conversation id -> cursor */
    cursors: Map<string, Cursor>;
    /** @type {Map<string, PendingSend>} client id -> send; insertion order is send order */
    pending: Map<string, PendingSend>;
    /** @type {Set<string>} */
    subscriptions: Set<string>;
    /** @type {WebSocket | null} */
    ws: WebSocket | null;
    generation: number;
    online: boolean;
    attempt: number;
    stopped: boolean;
    /** @type {unknown} */
    timer: unknown;
    /** @type {unknown} */
    pingTimer: unknown;
    /** @type {unknown} */
    deadTimer: unknown;
    connecting: boolean;
    welcomedAt: number;
    authRefreshes: number;
    /** @type {ErrorFrame | null} the last error without id: why the server is about to close */
    lastError: ErrorFrame | null;
    /** @type {string | null} */
    serverEpoch: string | null;
    /** @type {Record<string, number> | null} `welcome.limits` */
    limits: Record<string, number> | null;
    /** @type {Map<string, number>} conversation -> generation its `subscribed` arrived on */
    subscribedOn: Map<string, number>;
    /** @type {Map<string, number>} conversation -> `subscribed.last_seq` not applied yet (the end of its replay) */
    replayEnds: Map<string, number>;
    /** @type {Map<string, Map<string, { from: Actor, seq: number }>>} conversation -> participant -> seen mark */
    seenMarks: Map<string, Map<string, {
        from: Actor;
        seq: number;
    }>>;
    /** @type {Map<string, string>} conversation -> client id of its one send on the wire */
    inFlight: Map<string, string>;
    /** @type {Map<string, unknown>} conversation -> timer of a refused send's retry (the others wait behind it) */
    resendTimers: Map<string, unknown>;
    sendStats: {
        retried: number;
    };
    /** @type {Map<string, OpenRequest>} client id -> an `open` not answered yet; insertion order is request order */
    opens: Map<string, OpenRequest>;
    /** @type {Set<string>} client ids of opens on the wire (resent after a reconnect) */
    opensInFlight: Set<string>;
    /** @type {Map<string, { resolve: (frame: Frame) => void, reject: (error: KfRequestError) => void }[]>} */
    openWaiters: Map<string, {
        resolve: (frame: Frame) => void;
        reject: (error: KfRequestError) => void;
    }[]>;
    /** @type {unknown} the retry of a refused open (the others wait behind it) */
    openRetryTimer: unknown;
    /** @type {Map<string, number>} client id -> refusals of an open worth a retry */
    openRetries: Map<string, number>;
    requests: Requests;
    requestCounter: number;
    /** @type {Map<string, Set<Function>>} */
    listeners: Map<string, Set<Function>>;
    browserOffline: boolean;
    saveQueued: boolean;
    onOnline: () => void;
    onOffline: () => void;
    onVisible: () => void;
    /**
     * Adds a listener (beside the `on…` callback of the options); returns a function that removes it.
     * @template {keyof ClientEvents} K
     * @param {K} name
     * @param {(...args: ClientEvents[K]) => void} listener
     * @returns {() => void}
     */
    on<K extends keyof ClientEvents>(name: K, listener: (...args: ClientEvents[K]) => void): () => void;
    /**
     * @template {keyof ClientEvents} K
     * @param {K} name
     * @param {ClientEvents[K]} args
     */
    emit<K extends keyof ClientEvents>(name: K, ...args: ClientEvents[K]): void;
    /**
     * @param {Status} status
     * @param {StatusDetail} [detail]
     */
    status(status: Status, detail?: StatusDetail): void;
    changed(): void;
    /**
     * What must survive a reload: give it back as `state`, or let `storage` keep it.
     * @returns {ClientState}
     */
    snapshot(): ClientState;
    start(): void;
    /** @param {string} [why] */
    stop(why?: string): void;
    /** @param {StatusDetail} [detail] shown with the "connecting" status (e.g. a fallback) */
    connect(detail?: StatusDetail): Promise<void>;
    /** @param {string} why */
    fallBack(why: string): void;
    /** @param {string} token */
    openStream(token: string): void;
    /** @param {boolean} closed whether the EventSource gave up (a refused stream) */
    streamError(closed: boolean): void;
    sseRefused(): Promise<void>;
    sseReplay(): void;
    touch(): void;
    clearLiveness(): void;
    dropConnection(): void;
    goOffline(): void;
    /**
     * @param {string} why
     * @param {boolean} countsAsFailure whether it may count towards the switch to SSE (not when the network is down)
     */
    drop(why: string, countsAsFailure: boolean): void;
    /**
     * A WebSocket connection ended.
     * @param {{ code: number, reason: string }} close
     * @param {boolean} [countsAsFailure]
     */
    closed(close: {
        code: number;
        reason: string;
    }, countsAsFailure?: boolean): Promise<void>;
    isBrowserOffline(): boolean;
    /**
     * @param {string} why
     * @param {boolean} [crowded]
     */
    scheduleReconnect(why: string, crowded?: boolean): void;
    /**
     * Reconnects now (page visible again, network back), with the backoff reset (protocol §18).
     * @param {boolean} [networkBack] the browser's `online` event: an EventSource still waiting for its own
     *   reconnect (which browsers space out by seconds after failures) is replaced at once, from the same cursor
     */
    retryNow(networkBack?: boolean): void;
    /**
     * Writes a frame on the WebSocket; false when not online (or on SSE, where requests are POSTs).
     * @param {Frame} frame
     * @returns {boolean}
     */
    transmit(frame: Frame): boolean;
    /**
     * Sends a request frame now without waiting for its reply (which, like an `error` answering it, reaches
     * `onFrame`); false when not connected.
     * @param {Frame} frame
     * @returns {boolean}
     */
    sendFrame(frame: Frame): boolean;
    /**
     * Sends a request frame and resolves with its reply, matched by `id` (one is made up when the frame has none):
     * rejects with a KfRequestError carrying the server's `error` code, or "offline" (not connected now),
     * "disconnected" (the connection dropped before the reply), "timeout", "stopped". Requests the server answers
     * with nothing (`typing`, `read`, `ping`, `pong`) resolve with null once written (SSE: once posted). Replies and
     * errors reach `onFrame` as well. Nothing is queued or retried: `open` and `send`-like work that must survive a
     * disconnect belongs in `send()` or in the caller's retry with the same client id.
     * @param {Frame} frame
     * @param {{ timeoutMs?: number }} [options]
     * @returns {Promise<Frame | null>}
     */
    request(frame: Frame, options?: {
        timeoutMs?: number;
    }): Promise<Frame | null>;
    /**
     * SSE: queues a POST after the ones before it, so sends keep their order. Resolves with the reply (null: none).
     * @param {Frame} frame
     * @returns {Promise<Frame | null>}
     */
    post(frame: Frame): Promise<Frame | null>;
    /**
     * SSE: one request as a POST; its reply frame (or an `error` standing for a failed request) is handled like a
     * frame from the socket, then returned.
     * @param {Frame} frame
     * @param {boolean} [refreshed] a fresh token was fetched for it already
     * @returns {Promise<Frame | null>}
     */
    postNow(frame: Frame, refreshed?: boolean): Promise<Frame | null>;
    /**
     * Whether sends to `conversation` can go out now (WebSocket: subscribed on this connection; SSE: following).
     * @param {string} conversation
     */
    canSend(conversation: string): boolean;
    /** @param {Frame} frame */
    handle(frame: Frame): void;
    /**
     * Subscribes to a conversation now (if online) and after every reconnect. (SSE: the stream already follows
     * every conversation of the principal; this claims its events for the page, including those that arrived before.)
     * @param {string} conversation
     */
    subscribe(conversation: string): void;
    /**
     * Stops following a conversation. (SSE: nothing goes to the server, which decides what the stream follows; the
     * page just stops claiming the conversation's events, which are held like those of any conversation it has not
     * subscribed to.)
     * @param {string} conversation
     */
    unsubscribe(conversation: string): void;
    /**
     * Forgets everything about a conversation: its subscription, cursor, held events and pending sends.
     * @param {string} conversation
     */
    forget(conversation: string): void;
    /**
     * Keeps the highest seen mark per (conversation, participant) from `inbox`, `subscribed` and `read` frames
     * (protocol §6.6); emits `seen` for each mark that moved forward.
     * @param {unknown} marks
     */
    noteSeen(marks: unknown): void;
    /**
     * How far each participant has seen a conversation, as far as this client knows (kept by the server, so it
     * survives a reload: `inbox` and `subscribed` carry it).
     * @param {string} conversation
     * @returns {{ from: Actor, seq: number }[]}
     */
    seen(conversation: string): {
        from: Actor;
        seq: number;
    }[];
    /**
     * The last applied seq of a conversation (0: nothing yet).
     * @param {string} conversation
     */
    lastSeq(conversation: string): number;
    /** @param {string} conversation */
    sendSubscribe(conversation: string): void;
    /** @param {Frame} frame */
    subscribed(frame: Frame): void;
    /** @param {string} conversation */
    caughtUp(conversation: string): void;
    /**
     * SSE: the stream has started (after `welcome` and `inbox`); the events of every conversation follow.
     * @param {Frame} frame
     */
    following(frame: Frame): void;
    /**
     * SSE: keeps an event of a conversation the page has not subscribed to (yet).
     * @param {EventFrame} event
     */
    hold(event: EventFrame): void;
    /** @param {EventFrame} event */
    event(event: EventFrame): void;
    /** @param {EventFrame} event */
    isMine(event: EventFrame): boolean;
    /**
     * Opens a conversation (visitors, protocol §7.2) the way sends are made: the request is kept (and persisted)
     * with its client id until the server answers it, sent as soon as a session is open and again after every
     * reconnect or reload, retried after a refusal worth it (rate_limited, unavailable…) — so a lost answer never
     * opens a second conversation (§15). Resolves with the `opened` frame; rejects with a KfRequestError for a final
     * error (not_found, forbidden, invalid_frame…), or "stopped". The `opened` frame (or that error) also reaches
     * `onFrame`, which is where a page reloaded in between learns the answer.
     * @param {Partial<OpenRequest>} [request] `entry`, `fields` (pre-chat answers), `group`…; `client_id` to choose it
     * @returns {Promise<Frame>}
     */
    open(request?: Partial<OpenRequest>): Promise<Frame>;
    pumpOpens(): void;
    /**
     * An open is answered: drop it and settle whoever waits for it.
     * @param {string} clientId
     * @param {Frame | null} reply
     * @param {KfRequestError | null} error
     */
    settleOpen(clientId: string, reply: Frame | null, error: KfRequestError | null): void;
    /**
     * Sends a message; returns its client id. Works offline: it is kept (and persisted) and goes out once
     * connected, then again after every reconnect until acknowledged — always with this client id.
     * @param {string} conversation
     * @param {string} text may be "" when `attachments` are sent
     * @param {string[]} [attachments] ids of files uploaded to this conversation with `upload` (protocol §23)
     * @returns {string}
     */
    sendMessage(conversation: string, text: string, attachments?: string[]): string;
    /**
     * Uploads a file to a conversation (protocol §23.2); resolves with the attachment as the server recorded it, to
     * send with `sendMessage(conversation, text, [attachment.id])`. Rejects with a KfRequestError (`too_large`,
     * `conversation_full`, `unsupported_type`, `not_found`, `forbidden`, `invalid_token`, `unavailable`).
     * @param {string} conversation
     * @param {Blob | ArrayBuffer | Uint8Array} file
     * @param {string} [name] the file name (default: a File's own name, else "file")
     * @returns {Promise<Attachment>}
     */
    upload(conversation: string, file: Blob | ArrayBuffer | Uint8Array, name?: string): Promise<Attachment>;
    /**
     * A short-lived signed link to an attachment and its thumbnail (protocol §23.3), absolute URLs for `<img src>`
     * and `<a href>`; ask again once `expires_at` has passed.
     * @param {string} attachment
     * @returns {Promise<FileLink>}
     */
    fileLink(attachment: string): Promise<FileLink>;
    /**
     * Agents: the tenant's labels and attribute definitions (protocol §7.21).
     * @returns {Promise<DefinitionsFrame>}
     */
    definitions(): Promise<DefinitionsFrame>;
    /**
     * Agents: puts one of the tenant's labels on a conversation (protocol §7.22). Pass the same `clientId` to retry.
     * @param {string} conversation
     * @param {string} label
     * @param {string} [clientId]
     * @returns {Promise<AckFrame>}
     */
    label(conversation: string, label: string, clientId?: string): Promise<AckFrame>;
    /**
     * Agents: takes a label off a conversation (protocol §7.22).
     * @param {string} conversation
     * @param {string} label
     * @param {string} [clientId]
     * @returns {Promise<AckFrame>}
     */
    unlabel(conversation: string, label: string, clientId?: string): Promise<AckFrame>;
    /**
     * Agents: sets (or, with `null`, removes) a declared attribute of a conversation or of its visitor
     * (protocol §7.23).
     * @param {string} conversation
     * @param {"visitor" | "conversation"} object
     * @param {string} key
     * @param {AttributeValue | null} value
     * @param {string} [clientId]
     * @returns {Promise<AckFrame>}
     */
    setAttribute(conversation: string, object: "visitor" | "conversation", key: string, value: AttributeValue | null, clientId?: string): Promise<AckFrame>;
    /**
     * Agents: puts a conversation assigned to you on hold until `until` (ms since the epoch) or, with `null`, until
     * the visitor writes (protocol §7.24).
     * @param {string} conversation
     * @param {number | null} until
     * @param {string} [clientId]
     * @returns {Promise<AckFrame>}
     */
    snooze(conversation: string, until: number | null, clientId?: string): Promise<AckFrame>;
    /**
     * Agents: takes back a conversation you put on hold, before its time (protocol §7.24).
     * @param {string} conversation
     * @param {string} [clientId]
     * @returns {Promise<AckFrame>}
     */
    wake(conversation: string, clientId?: string): Promise<AckFrame>;
    /**
     * The same as sendMessage.
     * @param {string} conversation
     * @param {string} text
     * @returns {string}
     */
    send(conversation: string, text: string): string;
    pump(): void;
    /**
     * A pending send is done (acked, seen committed, or failed for good): drop it and let the next one go.
     * @param {string} clientId
     */
    settle(clientId: string): void;
    /** @param {PendingSend} p */
    transmitSend(p: PendingSend): void;
    /**
     * A typing signal (ephemeral: sent only when online, errors ignored).
     * @param {string} conversation
     * @param {boolean} active
     */
    typing(conversation: string, active: boolean): void;
    /**
     * The sends of a conversation not acknowledged yet, in order.
     * @param {string | null} conversation
     * @returns {PendingSend[]}
     */
    pendingFor(conversation: string | null): PendingSend[];
    /** @param {Frame} frame */
    acked(frame: Frame): void;
    /**
     * Handles errors that answer the client's own requests; returns true when consumed.
     * @param {ErrorFrame} frame
     * @returns {boolean}
     */
    errored(frame: ErrorFrame): boolean;
}
export type KfClientOptions = import("./types.js").KfClientOptions;
export type Frame = import("./types.js").Frame;
export type EventFrame = import("./types.js").EventFrame;
export type ErrorFrame = import("./types.js").ErrorFrame;
export type PendingSend = import("./types.js").PendingSend;
export type Cursor = import("./types.js").Cursor;
export type ClientState = import("./types.js").ClientState;
export type Status = import("./types.js").Status;
export type StatusDetail = import("./types.js").StatusDetail;
export type Actor = import("./types.js").Actor;
export type OpenRequest = import("./types.js").OpenRequest;
export type AttributeValue = import("./types.js").AttributeValue;
export type DefinitionsFrame = import("./types.js").DefinitionsFrame;
export type AckFrame = import("./types.js").AckFrame;
export type Attachment = import("./types.js").Attachment;
export type FileLink = import("./types.js").FileLink;
/**
 * The events a client emits: to the `on…` callbacks of its options and to listeners added with `on()`.
 */
export type ClientEvents = {
    status: [Status, StatusDetail | undefined];
    frame: [Frame];
    event: [EventFrame];
    reset: [string];
    caughtUp: [string];
    seen: [string, Actor, number];
    ack: [string, number, string];
    sendFailed: [string, string, string | undefined, PendingSend];
    change: [];
    transport: ["ws" | "sse", string];
};
import { StateStore } from "./storage.js";
import { KfRequestError } from "./requests.js";
import { Requests } from "./requests.js";
