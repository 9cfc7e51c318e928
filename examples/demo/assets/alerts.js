// alerts.js: tells the agent about a new conversation or a visitor's message while the console's tab is hidden —
// a desktop notification (the Notification API, once the agent allowed it) and a short chime made with WebAudio
// (no sound file to serve). A visible console shows its own toasts and badges instead.

let audio = null;
export const sent = { notifications: 0, chimes: 0 }; // read by the browser check

// Whether the agent would miss something shown only in the page.
export function pageHidden() {
  return document.visibilityState === "hidden";
}

// Notification permission: "granted", "denied", "default", or "unsupported".
export function notificationState() {
  return "Notification" in window ? Notification.permission : "unsupported";
}

// Asks for the permission (browsers only allow it from a click) and readies the audio context, which a browser
// keeps suspended until the page has seen a gesture.
export async function enableAlerts() {
  unlockAudio();
  if (notificationState() !== "default") return notificationState();
  try {
    return await Notification.requestPermission();
  } catch {
    return notificationState();
  }
}

export function unlockAudio() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume().catch(() => {});
  } catch {
    audio = null; // no WebAudio: alerts stay silent
  }
}

// Two short rising tones, quiet: heard, not startling.
export function chime() {
  sent.chimes += 1;
  if (!audio) return;
  try {
    const start = audio.currentTime + 0.01;
    for (const [offset, frequency] of [[0, 660], [0.14, 990]]) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.type = "sine";
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.15, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.22);
      tone.connect(gain).connect(audio.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.25);
    }
  } catch {
    // a closed or broken audio context: the notification still goes
  }
}

// Alerts the agent if the page is hidden: a notification (`tag` replaces an earlier one for the same thing) and the
// chime. A click on the notification brings the console forward and runs `onClick`. Returns whether it alerted.
export function alertAgent({ title, body, tag, onClick }) {
  if (!pageHidden()) return false;
  chime();
  if (notificationState() === "granted") {
    try {
      const notification = new Notification(title, { body, tag, renotify: true });
      sent.notifications += 1;
      notification.onclick = () => {
        window.focus();
        if (onClick) onClick();
        notification.close();
      };
    } catch (error) {
      console.warn("cannot show a notification", error);
    }
  }
  return true;
}
