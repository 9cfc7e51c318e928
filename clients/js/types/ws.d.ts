/**
 * @typedef {object} SocketHandlers
 * @property {() => void} onOpen
 * @property {() => void} onActivity any message at all (a sign of life, §14)
 * @property {(frame: Frame) => void} onFrame a message that is a JSON object with a `type`
 * @property {(close: { code: number, reason: string }) => void} onClose
 * @property {{ warn: (...args: unknown[]) => void }} logger
 */
/**
 * Opens a WebSocket and wires its handlers. Throws what the constructor throws (a bad URL, a blocked scheme).
 * @param {typeof WebSocket} WebSocketImpl
 * @param {string} url
 * @param {SocketHandlers} handlers
 * @returns {WebSocket}
 */
export function openWebSocket(WebSocketImpl: typeof WebSocket, url: string, handlers: SocketHandlers): WebSocket;
/**
 * Writes a frame if the socket is open; false when it is not (the caller keeps what must survive).
 * @param {WebSocket | null} ws
 * @param {Frame} frame
 * @returns {boolean}
 */
export function sendOnSocket(ws: WebSocket | null, frame: Frame): boolean;
/**
 * Closes a socket, ignoring a socket already closing (browsers throw on some states).
 * @param {WebSocket} ws
 * @param {number} code
 * @param {string} reason
 */
export function closeSocket(ws: WebSocket, code: number, reason: string): void;
/**
 * A frame from its text, or null when the text is not a JSON object with a string `type`.
 * @param {unknown} data
 * @returns {Frame | null}
 */
export function parseFrame(data: unknown): Frame | null;
export type SocketHandlers = {
    onOpen: () => void;
    /**
     * any message at all (a sign of life, §14)
     */
    onActivity: () => void;
    /**
     * a message that is a JSON object with a `type`
     */
    onFrame: (frame: Frame) => void;
    onClose: (close: {
        code: number;
        reason: string;
    }) => void;
    logger: {
        warn: (...args: unknown[]) => void;
    };
};
export type Frame = import("./types.js").Frame;
