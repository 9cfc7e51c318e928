// composer.js: the reply box's helpers — quick replies (`/shortcut` + Tab or Enter), @mentions in private notes
// (`@prefix` + Tab), the hint line under the box, and inserting text at the cursor (quick replies, emoji).
const $ = (id) => document.getElementById(id);

// What the helpers read from the console: its quick replies, whether the box writes a note, the colleagues.
let state = { quickReplies: () => [], noteMode: () => false, colleagues: () => [] };

// Quick replies in the composer: `/shortcut` then Tab or Enter replaces it with the quick reply's text (Tab also
// completes a prefix that only one shortcut has). Registered before wireComposer's keydown, which it pre-empts.
export function insertText(text, from, to) {
  const input = $("input");
  if (input.disabled) return;
  const start = from ?? input.selectionStart;
  const end = to ?? input.selectionEnd;
  input.value = input.value.slice(0, start) + text + input.value.slice(end);
  input.focus();
  input.setSelectionRange(start + text.length, start + text.length);
  input.dispatchEvent(new Event("input")); // resize, typing signal, hint
}

function slashToken() {
  const input = $("input");
  const before = input.value.slice(0, input.selectionStart);
  const match = before.match(/(?:^|\s)\/([a-z0-9_-]*)$/);
  return match ? { prefix: match[1], from: before.length - match[1].length - 1, to: before.length } : null;
}

function quickReplyFor(token, completePrefix) {
  const exact = state.quickReplies().find((q) => q.shortcut === token.prefix);
  if (exact || !completePrefix) return exact;
  const matches = state.quickReplies().filter((q) => q.shortcut.startsWith(token.prefix));
  return matches.length === 1 ? matches[0] : null;
}

// @mentions in a note: `@prefix` + Tab completes an agent id of the tenant (the demo's seeded ones).
function mentionToken() {
  const input = $("input");
  const before = input.value.slice(0, input.selectionStart);
  const match = before.match(/(?:^|\s)@([A-Za-z0-9_.-]*)$/);
  return match ? { prefix: match[1], from: before.length - match[1].length, to: before.length } : null;
}

function mentionCandidates(token) {
  return token ? state.colleagues().filter((id) => id.startsWith(token.prefix)) : [];
}

// The agents a note's text mentions: each `@id` once (a word of its own: not the middle of an email address).
export function mentionsIn(text) {
  const found = [];
  for (const match of text.matchAll(/(?:^|\s)@([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)/g)) if (!found.includes(match[1])) found.push(match[1]);
  return found;
}

export function showHint() {
  const mention = state.noteMode() ? mentionToken() : null;
  if (mention) {
    const names = mentionCandidates(mention);
    $("qr-hint").hidden = names.length === 0;
    $("qr-hint").textContent = names.length ? `Tab mentions ${names.map((id) => `@${id}`).join(", ")}` : "";
    return;
  }
  const token = slashToken();
  const matches = token ? state.quickReplies().filter((q) => q.shortcut.startsWith(token.prefix)).slice(0, 3) : [];
  $("qr-hint").hidden = matches.length === 0;
  $("qr-hint").textContent = matches.length ? `Tab inserts ${matches.map((q) => `/${q.shortcut}`).join(", ")}` : "";
}

// Wires the helpers to the reply box; registered before the composer's own Enter handling, which they pre-empt.
export function wireQuickInsert(console) {
  state = console;
  $("input").addEventListener("keydown", (event) => {
    if (event.shiftKey || event.isComposing || (event.key !== "Tab" && event.key !== "Enter")) return;
    const mention = state.noteMode() && event.key === "Tab" ? mentionToken() : null;
    const names = mentionCandidates(mention);
    if (mention && names.length === 1) {
      event.preventDefault();
      event.stopImmediatePropagation();
      insertText(`${names[0]} `, mention.from, mention.to);
      return;
    }
    const token = slashToken();
    const reply = token && quickReplyFor(token, event.key === "Tab");
    if (!reply) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    insertText(reply.text, token.from, token.to);
  });
  $("input").addEventListener("input", showHint);
  $("input").addEventListener("click", showHint);
}
