// tabs.js: the strip of open conversation tabs above the transcript — each with the visitor (or the date of an
// earlier conversation opened read-only), a status dot, its unread count and a close button.
import { el } from "./ui.js";

// Rebuilt only when it changes: a tab replaced under the pointer would swallow its click.
let drawnTabs = null;

// `tabs`: [{id, title, unread, status, past}]; `actions`: {select(id), closeTab(id)}.
export function renderTabs(container, tabs, selected, actions) {
  const key = JSON.stringify([tabs, selected]);
  if (key === drawnTabs) return;
  drawnTabs = key;
  container.hidden = tabs.length === 0;
  container.replaceChildren(
    ...tabs.map((tab, index) =>
      el(
        "div",
        { class: `tab${tab.id === selected ? " selected" : ""}${tab.past ? " tab-past" : ""}`, "data-conversation": tab.id },
        el(
          "button",
          { type: "button", role: "tab", class: "tab-open", "aria-selected": String(tab.id === selected), title: `${tab.title}${index < 9 ? ` (Alt+${index + 1})` : ""}`, onclick: () => actions.select(tab.id) },
          el("span", { class: `dot ${tab.status}` }),
          el("span", { class: "tab-title" }, tab.past ? `📜 ${tab.title}` : tab.title),
          tab.unread ? el("span", { class: "unread" }, String(tab.unread)) : null,
        ),
        el("button", { type: "button", class: "tab-close", title: "Close this tab (Alt+W)", "aria-label": `Close ${tab.title}`, onclick: () => actions.closeTab(tab.id) }, "×"),
      ),
    ),
  );
}
