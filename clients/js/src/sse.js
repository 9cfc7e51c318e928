// sse.js: the SSE transport (protocol §21): an EventSource downstream (`GET {base}/events`, every server frame
// one message, `event` frames carrying the stream cursor as their id) and a POST per request upstream
// (`POST {base}/{type}`). Tokens go in the query (EventSource cannot set headers) and in `Authorization`; never
// in cookies, so no `credentials` are asked for and a page of another origin works with plain CORS.

import { parseFrame } from "./ws.js";

/** @typedef {import("./types.js").Frame} Frame */

/** EventSource.CLOSED, spelt out: an injected EventSource class need not carry the constants. */
export const CLOSED = 2;

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
export function streamUrl(base, token, cursor) {
  const params = new URLSearchParams({ token });
  if (cursor) params.set("cursor", cursor);
  return `${base}/events?${params}`;
}

/**
 * Opens the event stream. Throws what the constructor throws.
 * @param {typeof EventSource} EventSourceImpl
 * @param {string} url
 * @param {StreamHandlers} handlers
 * @returns {EventSource}
 */
export function openEventStream(EventSourceImpl, url, handlers) {
  const es = new EventSourceImpl(url);
  es.onopen = () => handlers.onOpen();
  // The heartbeat (an event named `ping`, §21.2) only proves the stream alive.
  es.addEventListener("ping", () => handlers.onActivity());
  es.onmessage = (message) => {
    handlers.onActivity();
    const frame = parseFrame(message.data);
    if (frame) handlers.onFrame(frame, message.lastEventId || "");
    else handlers.logger.warn("kf: ignoring an SSE message that is not a JSON object", message.data);
  };
  es.onerror = () => handlers.onError(es.readyState === CLOSED);
  return es;
}

/**
 * One request as a POST. Resolves with the HTTP status and the reply frame (null for 204 or a body that is not
 * JSON); rejects when no answer came at all (network down, CORS refused).
 * @param {typeof fetch} fetchImpl
 * @param {string} base
 * @param {string} token
 * @param {Frame} frame
 * @returns {Promise<{ status: number, reply: Frame | null }>}
 */
export async function postFrame(fetchImpl, base, token, frame) {
  const { type, ...body } = frame;
  const response = await fetchImpl(`${base}/${type}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (response.status === 204) return { status: 204, reply: null };
  const text = await response.text().catch(() => "");
  return { status: response.status, reply: parseFrame(text) };
}
