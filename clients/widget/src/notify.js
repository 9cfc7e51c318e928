// notify.js: telling a visitor whose chat is minimised that an agent wrote: a short beep (WebAudio, no sound file)
// and a desktop notification (only when the visitor granted the permission, earlier or when asked after a gesture).

/** @type {AudioContext | null} */
let audio = null;

/**
 * Call from a user gesture (a click, a key): browsers only let a page start audio after one.
 */
export function unlockSound() {
  try {
    const Context = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
    if (!Context) return;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume().catch(() => {});
  } catch {
    audio = null;
  }
}

/** A short two-tone beep; silent when audio was never unlocked. */
export function beep() {
  if (!audio || audio.state !== "running") return;
  try {
    const now = audio.currentTime;
    const gain = audio.createGain();
    gain.connect(audio.destination);
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.18, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.32);
    for (const [freq, at] of [
      [880, 0],
      [1320, 0.12],
    ]) {
      const osc = audio.createOscillator();
      osc.type = "sine";
      osc.frequency.setValueAtTime(freq, now + at);
      osc.connect(gain);
      osc.start(now + at);
      osc.stop(now + at + 0.18);
    }
  } catch {
    // no sound then
  }
}

/** Whether desktop notifications may be shown now. */
export function canNotify() {
  return typeof Notification !== "undefined" && Notification.permission === "granted";
}

/**
 * Asks for the permission once, when it was never asked. Call it from a user gesture only.
 */
export function askPermission() {
  try {
    if (typeof Notification !== "undefined" && Notification.permission === "default") {
      const asked = Notification.requestPermission();
      if (asked && asked.catch) asked.catch(() => {});
    }
  } catch {
    // not supported
  }
}

/**
 * Shows a desktop notification; clicking it focuses the page and calls `onClick`.
 * @param {string} title
 * @param {string} body
 * @param {string} tag one per conversation: a newer one replaces the older
 * @param {() => void} onClick
 */
export function notify(title, body, tag, onClick) {
  if (!canNotify()) return;
  try {
    const notification = new Notification(title, { body: body.slice(0, 200), tag, silent: true });
    notification.onclick = () => {
      window.focus();
      onClick();
      notification.close();
    };
  } catch {
    // e.g. Android Chrome needs a service worker for notifications: skip
  }
}
