// Attachments (protocol §23): uploads and signed download links over plain HTTP, beside the transports.

import { KfRequestError } from "./requests.js";

/**
 * The files endpoints of a server, from the WebSocket URL (`wss://host/ws` -> `https://host/files`), else the page's
 * own server (`/files`).
 * @param {string | undefined} url
 * @returns {string}
 */
export function defaultFilesBase(url) {
  if (url && /^wss?:\/\//i.test(url)) {
    const parsed = new URL(url);
    return `${parsed.protocol === "wss:" ? "https:" : "http:"}//${parsed.host}/files`;
  }
  return "/files";
}

/**
 * A URL the server gave as a path (`/files/blob/…`), made absolute against the files base's origin.
 * @param {string} base
 * @param {string} path
 */
function absolute(base, path) {
  if (/^https?:\/\//i.test(path) || !/^https?:\/\//i.test(base)) return path;
  return new URL(path, base).toString();
}

/**
 * Reads a response's JSON body; an error answer (or a body that is not JSON) becomes a KfRequestError.
 * @param {Response} response
 * @returns {Promise<Record<string, any>>}
 */
async function answer(response) {
  const text = await response.text();
  /** @type {any} */
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.status >= 200 && response.status < 300 && body && typeof body === "object") return body;
  const code = body && typeof body.code === "string" ? body.code : response.status >= 500 ? "unavailable" : "invalid_request";
  const message = body && typeof body.message === "string" ? body.message : `HTTP ${response.status}`;
  throw new KfRequestError(code, message, body && body.type === "error" ? body : { type: "error", code, message });
}

/**
 * Uploads a file to a conversation; resolves with the attachment as the server recorded it (sniffed type, size, an
 * image's width and height). Rejects with a KfRequestError: `too_large`, `conversation_full`, `unsupported_type`,
 * `not_found`, `forbidden`, `invalid_token`, `unavailable` (also when the network fails).
 * @param {typeof fetch} fetchFn
 * @param {string} base the files endpoints (`https://kf.example/files`)
 * @param {string} token
 * @param {string} conversation
 * @param {Blob | ArrayBuffer | Uint8Array} file
 * @param {string} name
 * @returns {Promise<import("./types.js").Attachment>}
 */
export async function uploadFile(fetchFn, base, token, conversation, file, name) {
  const url = `${base}/upload?conversation=${encodeURIComponent(conversation)}&name=${encodeURIComponent(name)}`;
  let response;
  try {
    response = await fetchFn(url, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: /** @type {BodyInit} */ (file) });
  } catch (error) {
    throw new KfRequestError("unavailable", `upload failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  const body = await answer(response);
  return body.attachment;
}

/**
 * A short-lived signed link to an attachment (and to its thumbnail), absolute URLs.
 * @param {typeof fetch} fetchFn
 * @param {string} base
 * @param {string} token
 * @param {string} attachment
 * @returns {Promise<import("./types.js").FileLink>}
 */
export async function fileLink(fetchFn, base, token, attachment) {
  let response;
  try {
    response = await fetchFn(`${base}/link/${encodeURIComponent(attachment)}`, { headers: { Authorization: `Bearer ${token}` } });
  } catch (error) {
    throw new KfRequestError("unavailable", `link failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  const body = await answer(response);
  /** @type {import("./types.js").FileLink} */
  const link = { attachment: body.attachment, url: absolute(base, body.url), expires_at: body.expires_at };
  if (typeof body.thumbnail_url === "string") link.thumbnail_url = absolute(base, body.thumbnail_url);
  return link;
}
