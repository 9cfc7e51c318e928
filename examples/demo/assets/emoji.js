// emoji.js: a small emoji picker for the composer — the faces and signs a support chat uses, in a grid that opens
// above the reply box (its button or Alt + E); a click inserts one at the cursor. Arrow keys move in the grid, Esc
// closes it.
import { el } from "./ui.js";

export const EMOJI = [
  "😀", "😊", "🙂", "😉", "😂", "🤗", "😍", "🤔", "😅", "😇",
  "🙏", "👍", "👌", "👋", "👏", "💪", "🙌", "🤝", "✌️", "👀",
  "😢", "😞", "😮", "😬", "🙈", "🎉", "✨", "🔥", "💯", "❤️",
  "✅", "❌", "⚠️", "ℹ️", "⏳", "📦", "🚚", "💳", "🧾", "📧",
];

export class EmojiPicker {
  // `anchor`: the element the grid opens in; `insert(text)` puts the choice into the reply box.
  constructor(anchor, insert) {
    this.insert = insert;
    this.grid = el(
      "div",
      { class: "emoji-picker", role: "dialog", "aria-label": "Emoji", hidden: true },
      ...EMOJI.map((emoji) => el("button", { type: "button", class: "emoji", title: emoji, "aria-label": emoji, onclick: () => this.pick(emoji) }, emoji)),
    );
    this.grid.addEventListener("keydown", (event) => this.move(event));
    anchor.append(this.grid);
    document.addEventListener("pointerdown", (event) => {
      if (!this.grid.hidden && !this.grid.contains(event.target) && !event.target.closest("#emoji-toggle")) this.close();
    });
  }

  get open() {
    return !this.grid.hidden;
  }

  toggle() {
    if (this.open) this.close();
    else {
      this.grid.hidden = false;
      this.grid.querySelector("button").focus();
    }
  }

  close() {
    this.grid.hidden = true;
  }

  pick(emoji) {
    this.close();
    this.insert(emoji);
  }

  // Arrow keys walk the grid (10 a row).
  move(event) {
    const buttons = [...this.grid.querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 10, ArrowUp: -10 }[event.key];
    if (at < 0 || !step) return;
    event.preventDefault();
    buttons[(at + step + buttons.length) % buttons.length].focus();
  }
}
