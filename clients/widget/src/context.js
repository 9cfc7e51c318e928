// context.js: what the widget tells the server about the visit (protocol §7.10 `context`, §7.11 `page`), and the
// single-page-app navigation watch that sends a `page` view when the host's URL changes without a page load.

const encoder = new TextEncoder();

/**
 * `text` cut to at most `max` bytes of UTF-8, on a character boundary.
 * @param {string} text
 * @param {number} max
 */
export function clip(text, max) {
  if (encoder.encode(text).length <= max) return text;
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const size = encoder.encode(ch).length;
    if (bytes + size > max) break;
    out += ch;
    bytes += size;
  }
  return out;
}

/**
 * An absolute http(s) URL of at most 2048 bytes without spaces or control characters, or null.
 * @param {string | null | undefined} url
 */
export function safeUrl(url) {
  if (!url || !/^https?:\/\//i.test(url)) return null;
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(url)) return null;
  return encoder.encode(url).length <= 2048 ? url : null;
}

/**
 * The visit: its landing page and referrer, kept for the tab's session (sessionStorage) so that every later page
 * of the visit reports the same ones.
 * @param {string} namespace storage key prefix
 * @returns {{landing: string, referrer: string}}
 */
export function visit(namespace) {
  const key = `${namespace}:visit`;
  try {
    const stored = JSON.parse(sessionStorage.getItem(key) || "null");
    if (stored && typeof stored.landing === "string") return stored;
  } catch {
    // no sessionStorage (privacy mode…): this page is the landing page
  }
  const fresh = { landing: location.href, referrer: document.referrer || "" };
  try {
    sessionStorage.setItem(key, JSON.stringify(fresh));
  } catch {
    // ignore
  }
  return fresh;
}

/**
 * The `context` frame for this visit (without id).
 * @param {{landing: string, referrer: string}} v
 */
export function contextFrame(v) {
  /** @type {Record<string, any>} */
  const frame = { type: "context" };
  const landing = safeUrl(v.landing);
  if (landing) {
    frame.landing_page = landing;
    const params = new URL(landing).searchParams;
    /** @type {Record<string,string>} */
    const utm = {};
    for (const key of ["source", "medium", "campaign", "term", "content"]) {
      const value = params.get(`utm_${key}`);
      if (value) utm[key] = clip(value, 256);
    }
    if (Object.keys(utm).length) frame.utm = utm;
  }
  const referrer = safeUrl(v.referrer);
  if (referrer) frame.referrer = referrer;
  if (navigator.userAgent) frame.user_agent = clip(navigator.userAgent, 512);
  if (typeof screen !== "undefined" && screen.width) frame.screen = `${screen.width}x${screen.height}`;
  if (navigator.language) frame.language = clip(navigator.language, 256);
  return frame;
}

/**
 * The `page` frame for the current page (without id), or null when its URL cannot be reported.
 */
export function pageFrame() {
  const url = safeUrl(location.href);
  if (!url) return null;
  /** @type {Record<string, any>} */
  const frame = { type: "page", url };
  const title = clip((document.title || "").trim(), 256);
  if (title) frame.title = title;
  return frame;
}

/**
 * Calls `onNavigate()` after each single-page-app navigation: history.pushState / replaceState (wrapped on the
 * `history` object; the originals do the work) and popstate. Only URL changes count. Returns an unwatch function
 * that puts the original methods back.
 * @param {() => void} onNavigate
 */
export function watchNavigation(onNavigate) {
  let last = location.href;
  const changed = () => {
    // The title is often set right after pushState: look a moment later.
    setTimeout(() => {
      if (location.href === last) return;
      last = location.href;
      onNavigate();
    }, 50);
  };
  const push = history.pushState;
  const replace = history.replaceState;
  history.pushState = function (...args) {
    const result = push.apply(this, /** @type {any} */ (args));
    changed();
    return result;
  };
  history.replaceState = function (...args) {
    const result = replace.apply(this, /** @type {any} */ (args));
    changed();
    return result;
  };
  window.addEventListener("popstate", changed);
  return () => {
    history.pushState = push;
    history.replaceState = replace;
    window.removeEventListener("popstate", changed);
  };
}
