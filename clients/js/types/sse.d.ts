/**
 * @typedef {object} StreamHandlers
 * @property {() => void} onOpen the browser (re)connected the stream
 * @property {() => void} onActivity any message, heartbeats included (§14)
 * @property {(frame: Frame, lastEventId: string) => void} onFrame
 * @property {(closed: boolean) => void} onError closed: the EventSource gave up (a refused stream)
 * @property {{ warn: (...args: unknown[]) => void }} logger
 */
/**
 * The stream's URL: the token, and the cursor to resume from when there is one.
 * @param {string} base
 * @param {string} token
 * @param {string | null} cursor
 * @returns {string}
 */
export function streamUrl(base: string, token: string, cursor: string | null): string;
/**
 * Opens the event stream. Throws what the constructor throws.
 * @param {typeof EventSource} EventSourceImpl
 * @param {string} url
 * @param {StreamHandlers} handlers
 * @returns {EventSource}
 */
export function openEventStream(EventSourceImpl: typeof EventSource, url: string, handlers: StreamHandlers): EventSource;
/**
 * One request as a POST. Resolves with the HTTP status and the reply frame (null for 204 or a body that is not
 * JSON); rejects when no answer came at all (network down, CORS refused).
 * @param {typeof fetch} fetchImpl
 * @param {string} base
 * @param {string} token
 * @param {Frame} frame
 * @returns {Promise<{ status: number, reply: Frame | null }>}
 */
export function postFrame(fetchImpl: typeof fetch, base: string, token: string, frame: Frame): Promise<{
    status: number;
    reply: Frame | null;
}>;
/** @typedef {import("./types.js").Frame} Frame */
/** EventSource.CLOSED, spelt out: an injected EventSource class need not carry the constants. */
export const CLOSED: 2;
export type StreamHandlers = {
    /**
     * the browser (re)connected the stream
     */
    onOpen: () => void;
    /**
     * any message, heartbeats included (§14)
     */
    onActivity: () => void;
    onFrame: (frame: Frame, lastEventId: string) => void;
    /**
     * closed: the EventSource gave up (a refused stream)
     */
    onError: (closed: boolean) => void;
    logger: {
        warn: (...args: unknown[]) => void;
    };
};
export type Frame = import("./types.js").Frame;
