// controls.js: the console's controls around the conversation — keyboard shortcuts and their help overlay, the emoji
// picker of the reply box, and the alerts button (desktop notifications and a chime while the tab is hidden).
import { enableAlerts, notificationState, unlockAudio } from "./alerts.js";
import { EmojiPicker } from "./emoji.js";
import { shortcutList, wireShortcuts } from "./shortcuts.js";

const $ = (id) => document.getElementById(id);

// `page`: {step(delta), tab(n), closeTab(), insert(text), visible()} — what the shortcuts and the page's
// visibility drive in agent.js.
export function wireControls(page) {
  const emoji = new EmojiPicker($("composer"), (text) => page.insert(text));
  $("emoji-toggle").addEventListener("click", () => emoji.toggle());

  function toggleHelp(show = $("help").hidden) {
    $("help").hidden = !show;
    if (show) $("help-close").focus();
  }
  $("help-body").replaceChildren(shortcutList());
  $("help-toggle").addEventListener("click", () => toggleHelp());
  $("help-close").addEventListener("click", () => toggleHelp(false));
  $("help").addEventListener("click", (event) => event.target === $("help") && toggleHelp(false));

  wireShortcuts({
    previous: () => page.step(-1),
    next: () => page.step(1),
    tab: page.tab,
    closeTab: page.closeTab,
    send: () => $("composer").requestSubmit(),
    noteMode: () => {
      if ($("note-mode").disabled) return;
      $("note-mode").checked = !$("note-mode").checked;
      $("note-mode").dispatchEvent(new Event("change"));
    },
    emoji: () => !$("input").disabled && emoji.toggle(),
    snooze: () => !$("snooze-toggle").hidden && $("snooze-toggle").click(),
    escape: () => {
      // The innermost first: the help, the emoji grid, then the open forms.
      if (!$("help").hidden) toggleHelp(false);
      else if (emoji.open) emoji.close();
      else for (const form of ["snooze-form", "transfer-form"]) $(form).hidden = true;
      if ($("help").hidden && !$("input").disabled) $("input").focus();
    },
    help: () => toggleHelp(),
  });

  // Desktop notifications need a click to be allowed; the button says what they are now.
  function drawAlertsButton() {
    const state = notificationState();
    $("alerts-toggle").textContent = { granted: "🔔 Alerts on", denied: "🔕 Alerts blocked", unsupported: "🔔 Sound only" }[state] || "🔔 Enable alerts";
    $("alerts-toggle").title = state === "denied" ? "The browser blocks notifications for this page; a sound still plays" : "Notify me of new conversations and messages while this tab is hidden";
  }
  $("alerts-toggle").addEventListener("click", async () => {
    await enableAlerts();
    drawAlertsButton();
  });
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("visibilitychange", page.visible);
  drawAlertsButton();
}
