// ws.js: the WebSocket transport (protocol §1): one JSON frame per text message. It only moves frames; what they
// mean (hello, resume, liveness) is the client's business.

/** @typedef {import("./types.js").Frame} Frame */

/** WebSocket.OPEN, spelt out: an injected WebSocket class need not carry the constants. */
const OPEN = 1;

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
export function openWebSocket(WebSocketImpl, url, handlers) {
  const ws = new WebSocketImpl(url);
  ws.onopen = () => handlers.onOpen();
  ws.onmessage = (message) => {
    handlers.onActivity();
    const frame = parseFrame(message.data);
    if (frame) handlers.onFrame(frame);
    else handlers.logger.warn("kf: ignoring a frame that is not a JSON object", message.data);
  };
  ws.onclose = (close) => handlers.onClose({ code: close.code, reason: close.reason || "" });
  ws.onerror = () => {
    // onclose follows and decides.
  };
  return ws;
}

/**
 * Writes a frame if the socket is open; false when it is not (the caller keeps what must survive).
 * @param {WebSocket | null} ws
 * @param {Frame} frame
 * @returns {boolean}
 */
export function sendOnSocket(ws, frame) {
  if (!ws || ws.readyState !== OPEN) return false;
  ws.send(JSON.stringify(frame));
  return true;
}

/**
 * Closes a socket, ignoring a socket already closing (browsers throw on some states).
 * @param {WebSocket} ws
 * @param {number} code
 * @param {string} reason
 */
export function closeSocket(ws, code, reason) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  try {
    ws.close(code, reason);
  } catch {
    // already closing
  }
}

/**
 * A frame from its text, or null when the text is not a JSON object with a string `type`.
 * @param {unknown} data
 * @returns {Frame | null}
 */
export function parseFrame(data) {
  if (typeof data !== "string") return null;
  try {
    const value = JSON.parse(data);
    return value && typeof value === "object" && !Array.isArray(value) && typeof value.type === "string" ? value : null;
  } catch {
    return null;
  }
}
