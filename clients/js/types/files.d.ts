/**
 * The files endpoints of a server, from the WebSocket URL (`wss://host/ws` -> `https://host/files`), else the page's
 * own server (`/files`).
 * @param {string | undefined} url
 * @returns {string}
 */
export function defaultFilesBase(url: string | undefined): string;
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
export function uploadFile(fetchFn: typeof fetch, base: string, token: string, conversation: string, file: Blob | ArrayBuffer | Uint8Array, name: string): Promise<import("./types.js").Attachment>;
/**
 * A short-lived signed link to an attachment (and to its thumbnail), absolute URLs.
 * @param {typeof fetch} fetchFn
 * @param {string} base
 * @param {string} token
 * @param {string} attachment
 * @returns {Promise<import("./types.js").FileLink>}
 */
export function fileLink(fetchFn: typeof fetch, base: string, token: string, attachment: string): Promise<import("./types.js").FileLink>;
