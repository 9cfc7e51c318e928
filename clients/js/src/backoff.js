// backoff.js: how long to wait before trying again (protocol §18 for connections, §10/§16 for refused sends).
// Every delay takes its randomness from the caller, so tests can pin it.

/** The first ceiling of the reconnect backoff: doubled per failed attempt… */
export const BACKOFF_BASE_MS = 500;
/** …up to this. The ceiling resets on every opened session, so after a drop the wait is at most 0.5 s. */
export const BACKOFF_CAP_MS = 5000;
/** After `too_many_connections` (close 4029): a long wait, whatever the attempt. */
export const CROWDED_MIN_MS = 10000;
export const CROWDED_MAX_MS = 30000;
/** Never reconnect sooner than this, so that a failure on the spot cannot spin. */
export const MIN_DELAY_MS = 50;
/** Retries of a refused send (rate_limited, unavailable…): from 1 s, doubling, at most 30 s. */
export const SEND_RETRY_BASE_MS = 1000;
export const SEND_RETRY_CAP_MS = 30000;

/**
 * The wait before reconnect attempt number `attempt` (0 after an opened session): full jitter, a uniformly random
 * delay between 0 and min(5 s, 0.5 s × 2^attempt), so that clients dropped together do not come back together.
 * @param {number} attempt
 * @param {() => number} random in [0, 1)
 * @returns {number} milliseconds
 */
export function reconnectDelay(attempt, random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt));
  return Math.max(MIN_DELAY_MS, Math.round(random() * ceiling));
}

/**
 * The wait after `too_many_connections`: 10–30 s (other tabs hold the connections; hurrying cannot help).
 * @param {() => number} random
 * @returns {number}
 */
export function crowdedDelay(random) {
  return CROWDED_MIN_MS + Math.round(random() * (CROWDED_MAX_MS - CROWDED_MIN_MS));
}

/**
 * The wait before retry number `retries` (1 for the first) of a refused send: 1, 2, 4… s up to 30 s, each between
 * half and all of it (a rate limit refuses a burst at once; spreading the retries lets it pass).
 * @param {number} retries
 * @param {() => number} random
 * @returns {number}
 */
export function sendRetryDelay(retries, random) {
  const ceiling = Math.min(SEND_RETRY_CAP_MS, SEND_RETRY_BASE_MS * 2 ** Math.min(Math.max(0, retries - 1), 5));
  return Math.round(ceiling * (0.5 + random() / 2));
}
