// shortcuts.js: the console's keyboard shortcuts and the help overlay that lists them (`?` or the header's
// "Shortcuts" button opens it). Alt combinations are matched by physical key (`event.code`), so they work on
// every keyboard layout and with macOS's Option key, which types a character instead of the letter.
import { el } from "./ui.js";

// [keys shown, what it does, the action's name]
export const SHORTCUTS = [
  ["Alt + ↑ / Alt + ↓", "Previous / next conversation in the list", "previous/next"],
  ["Alt + 1 … 9", "Go to open tab 1 … 9", "tab"],
  ["Alt + W", "Close the current tab", "closeTab"],
  ["Enter or Ctrl + Enter", "Send (Shift + Enter: new line)", "send"],
  ["Alt + N", "Switch between reply and private note", "noteMode"],
  ["Alt + E", "Emoji", "emoji"],
  ["Alt + S", "Snooze…", "snooze"],
  ["Esc", "Close the open panel, picker or this help", "escape"],
  ["?", "This help (outside a text field)", "help"],
];

const typingIn = (target) => target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));

// `actions`: {previous, next, tab(n), closeTab, send, noteMode, emoji, snooze, escape, help}; each returns nothing.
export function wireShortcuts(actions) {
  document.addEventListener("keydown", (event) => {
    if (event.isComposing || event.defaultPrevented) return;
    const plainAlt = event.altKey && !event.ctrlKey && !event.metaKey;
    let action = null;
    if (plainAlt && event.key === "ArrowUp") action = () => actions.previous();
    else if (plainAlt && event.key === "ArrowDown") action = () => actions.next();
    else if (plainAlt && /^Digit[1-9]$/.test(event.code)) action = () => actions.tab(Number(event.code.slice(5)));
    else if (plainAlt && event.code === "KeyW") action = actions.closeTab;
    else if (plainAlt && event.code === "KeyN") action = actions.noteMode;
    else if (plainAlt && event.code === "KeyE") action = actions.emoji;
    else if (plainAlt && event.code === "KeyS") action = actions.snooze;
    else if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && event.target.id === "input") action = actions.send;
    else if (event.key === "Escape") action = actions.escape;
    else if (event.key === "?" && !typingIn(event.target)) action = actions.help;
    if (!action) return;
    event.preventDefault();
    event.stopPropagation();
    action();
  });
}

// The help overlay's content.
export function shortcutList() {
  return el("dl", { class: "shortcut-list" }, ...SHORTCUTS.flatMap(([keys, what]) => [el("dt", {}, ...keys.split(" ").map((part) => (["+", "/", "…", "or"].includes(part) ? ` ${part} ` : el("kbd", {}, part)))), el("dd", {}, what)]));
}
