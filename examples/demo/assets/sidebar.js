// sidebar.js: the sidebar's lists besides the conversations — the queue (with Claim) and the offline messages
// (with Take), and the quick replies (click inserts one; your own have a delete button).
import { el, timeOf } from "./ui.js";

const $ = (id) => document.getElementById(id);

export function visitorName(visitor) {
  return `Visitor ${visitor.length > 12 ? visitor.slice(0, 12) + "…" : visitor}`;
}

function waitText(ms) {
  if (ms === undefined || ms === null) return "";
  if (ms < 60_000) return `~${Math.max(1, Math.round(ms / 1000))} s wait`;
  return `~${Math.round(ms / 60_000)} min wait`;
}

// Rebuilt only when it changes: a list replaced under the pointer would swallow a click on its Claim button.
let drawnQueue = null;
export function renderQueue(queue, offline, actions) {
  const key = JSON.stringify([queue, offline]);
  if (key === drawnQueue) return;
  drawnQueue = key;
  const items = queue.map(({ conversation, position, estimated_wait_ms: wait }) =>
    el(
      "li",
      { class: "queue-item", "data-conversation": conversation.id },
      el(
        "div",
        { class: "item-top" },
        el("span", { class: "item-name" }, visitorName(conversation.visitor)),
        el("span", { class: "queue-position", title: "Position in the queue" }, `#${position}`),
      ),
      el(
        "div",
        { class: "item-bottom" },
        el("span", { class: "preview" }, `${conversation.group} · ${waitText(wait) || `waiting since ${timeOf(conversation.created_at)}`}`),
        el("button", { type: "button", class: "small claim", onclick: () => actions.claim(conversation.id) }, "Claim"),
      ),
    ),
  );
  for (const record of offline) {
    items.push(
      el(
        "li",
        { class: "queue-item offline", "data-conversation": record.id },
        el("div", { class: "item-top" }, el("span", { class: "item-name" }, visitorName(record.visitor)), el("span", { class: "badge offline" }, "offline message")),
        el(
          "div",
          { class: "item-bottom" },
          el("span", { class: "preview" }, `${record.group} · left ${timeOf(record.created_at)}`),
          el("button", { type: "button", class: "small take", onclick: () => actions.take(record.id) }, "Take"),
        ),
      ),
    );
  }
  $("queue-list").replaceChildren(...items);
  $("queue-empty").hidden = items.length > 0;
}

export function renderQuickReplies(quickReplies, actions) {
  $("qr-empty").hidden = quickReplies.length > 0;
  $("quick-reply-list").replaceChildren(
    ...quickReplies.map((reply) =>
      el(
        "li",
        { class: "quick-reply", "data-shortcut": reply.shortcut, title: `Insert: ${reply.text}`, onclick: () => actions.insert(reply.text) },
        el("code", {}, `/${reply.shortcut}`),
        el("span", { class: "qr-text" }, reply.text),
        reply.scope === "agent"
          ? el("button", { type: "button", class: "link-button", title: "Delete this quick reply", onclick: (event) => {
              event.stopPropagation();
              actions.remove(reply);
            } }, "×")
          : el("span", { class: "badge", title: "A quick reply of your group" }, reply.group),
      ),
    ),
  );
}
