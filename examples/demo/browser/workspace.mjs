// The agent workspace, checked by check.mjs (issue 12, parts 6 and 7): bob works three conversations in tabs
// (drafts kept per tab, unread badges, Alt+1…9 and Alt+↑/↓, Ctrl+Enter), writes a private note (listed in the side
// panel), sends an emoji from the picker, labels one conversation and snoozes another (Alt+S), opens the shortcut
// help (?) and closes it (Esc); with his tab hidden (document.visibilityState overridden) a visitor's message
// raises a desktop notification (the Notification API, stubbed to record its calls) and a chime, and the badge
// stays until he looks; "seen" marks show on both sides and survive a reload of the console and of the visitor's
// page (the server keeps them); the visitor rates after the close and bob sees the stars in the side panel; the
// visitor's next conversation lists the earlier one, which bob opens read-only in a tab of its own.
import { check, log } from "./harness.mjs";

// Runs in bob's page before its scripts: records notifications and lets the check hide the page.
function stubNotificationsAndVisibility() {
  window.__notifications = [];
  window.__hidden = false;
  window.__permission = "default";
  class RecordedNotification {
    constructor(title, options = {}) {
      window.__notifications.push({ title, body: options.body, tag: options.tag });
      this.onclick = null;
    }
    close() {}
    static get permission() {
      return window.__permission;
    }
    static requestPermission() {
      window.__permission = "granted";
      return Promise.resolve("granted");
    }
  }
  window.Notification = RecordedNotification;
  Object.defineProperty(Document.prototype, "visibilityState", { configurable: true, get: () => (window.__hidden ? "hidden" : "visible") });
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => window.__hidden });
}

async function setHidden(page, hidden) {
  await page.evaluate((value) => {
    window.__hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

async function send(page, text) {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}

export async function checkWorkspace({ browser, base, alice, watch, shot }) {
  // Alice away: the new visitors are bob's.
  await alice.selectOption("#agent-status", "away");
  await alice.waitForSelector('#my-status[data-status="away"]');
  const bobContext = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  await bobContext.addInitScript(stubNotificationsAndVisibility);
  const bob = await bobContext.newPage();
  watch(bob, "bob-workspace");
  await bob.goto(`${base}/agent`);
  await bob.fill("#login-agent", "bob");
  await bob.fill("#login-password", "bob-demo");
  await bob.click("#login-button");
  await bob.waitForSelector('#console:not([hidden]) #status[data-state="online"]');
  // What bob still holds from the checks before (a transferred conversation) is closed: a clean desk of three
  // seats; a reload then lists only what is open.
  await bob.waitForFunction(() => window.kfAgent.client && window.kfAgent.client.online);
  await bob.waitForTimeout(300); // the inbox is in
  const leftovers = await bob.evaluate(() => [...window.kfAgent.conversations()].filter(([, e]) => ["assigned", "on_hold"].includes(e.record.status)).map(([id]) => id));
  for (const id of leftovers) {
    await bob.click(`.conversation-item[data-conversation="${id}"]`);
    await bob.waitForSelector(`.conversation-item.selected[data-conversation="${id}"]`);
    if (await bob.isVisible("#wake")) await bob.click("#wake");
    await bob.click("#close-conversation");
    await bob.waitForSelector(`.conversation-item[data-conversation="${id}"] .badge.closed`);
  }
  await bob.reload();
  await bob.waitForSelector('#console:not([hidden]) #status[data-state="online"]');
  await bob.click("#alerts-toggle");
  await bob.waitForSelector("#alerts-toggle >> text=Alerts on");
  check(true, "bob logs in and turns alerts on (Notification.requestPermission from the click)");

  const contexts = [];
  const visitors = [];
  for (const [index, text] of ["Hi, my parcel is late.", "Can I change my delivery address?", "Do you have this jacket in blue?"].entries()) {
    const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
    contexts.push(context);
    const page = await context.newPage();
    watch(page, `visitor-w${index + 1}`);
    await page.goto(`${base}/`);
    await page.waitForSelector('#status[data-state="online"]');
    await send(page, text);
    await page.waitForSelector(".system >> text=Bob joined the conversation").catch(async (error) => {
      log(`  (visitor ${index + 1}: ${JSON.stringify(await page.evaluate(() => window.kfVisitor.state.record))}; bob's list: ${(await bob.locator("#conversation-list").textContent()).replace(/\s+/g, " ")}; queue: ${await bob.locator("#queue-list").textContent()})`);
      throw error;
    });
    const id = await page.evaluate(() => window.kfVisitor.state.conversation);
    visitors.push({ page, id, text });
  }
  const [v1, v2, v3] = visitors;
  const tab = (v) => `.tab[data-conversation="${v.id}"]`;
  for (const v of visitors) {
    await bob.click(`.conversation-item[data-conversation="${v.id}"]`);
    await bob.waitForSelector(`${tab(v)}.selected`);
    await bob.waitForSelector(`.message.theirs >> text=${v.text}`);
  }
  const tabIds = await bob.evaluate(() => window.kfAgent.tabs());
  check(tabIds.length === 3 && visitors.every((v) => tabIds.includes(v.id)), `bob has the three conversations open in tabs (${tabIds.length})`);

  // A draft stays with its tab: Alt+2 switches away, Alt+1 comes back to it; Ctrl+Enter sends it.
  await bob.keyboard.press("Alt+1");
  await bob.waitForSelector(`${tab(v1)}.selected`);
  await bob.fill("#input", "Let me look up your parcel.");
  await bob.keyboard.press("Alt+2");
  await bob.waitForSelector(`${tab(v2)}.selected`);
  const otherDraft = await bob.inputValue("#input");
  await bob.keyboard.press("Alt+1");
  await bob.waitForSelector(`${tab(v1)}.selected`);
  check(otherDraft === "" && (await bob.inputValue("#input")) === "Let me look up your parcel.", "a draft stays with its tab: Alt+2 shows an empty reply box, Alt+1 brings the draft back");
  await bob.focus("#input");
  await bob.keyboard.press("Control+Enter");
  await v1.page.waitForSelector(".message.theirs >> text=Let me look up your parcel.");
  check(true, "Ctrl+Enter sends it");

  // Unread: a message in another tab gets a badge on the tab and in the list.
  await send(v2.page, "Hello? It is urgent.");
  await bob.waitForSelector(`${tab(v2)} .unread >> text=1`);
  await bob.waitForSelector(`.conversation-item[data-conversation="${v2.id}"] .unread >> text=1`);
  check(true, "a message in a tab not shown: unread badge 1 on its tab and in the list");
  const before = await bob.evaluate(() => window.kfAgent.tabs().indexOf(document.querySelector(".tab.selected").dataset.conversation));
  await bob.keyboard.press("Alt+ArrowDown");
  await bob.waitForFunction((id) => document.querySelector(".tab.selected")?.dataset.conversation !== id, v1.id);
  await bob.keyboard.press("Alt+ArrowUp");
  await bob.waitForSelector(`${tab(v1)}.selected`);
  check(before === 0, "Alt+↓ moves to the next conversation of the list, Alt+↑ back");
  await bob.keyboard.press("Alt+2");
  await bob.waitForFunction((id) => !document.querySelector(`.tab[data-conversation="${id}"] .unread`), v2.id);
  check(true, "looking at it clears the badge");
  await send(bob, "Yes, of course: what is the new address?");
  await v2.page.waitForSelector(".message.theirs >> text=what is the new address?");

  // Emoji from the picker, a private note (Alt+N), a label.
  await bob.keyboard.press("Alt+1");
  await bob.waitForSelector(`${tab(v1)}.selected`);
  await bob.fill("#input", "Found it, it arrives tomorrow ");
  await bob.click("#emoji-toggle");
  await bob.waitForSelector(".emoji-picker:not([hidden])");
  await bob.screenshot({ path: shot("agent-emoji") });
  await bob.click('.emoji-picker .emoji[title="👍"]');
  await bob.waitForFunction(() => document.getElementById("input").value.endsWith("👍"));
  await bob.press("#input", "Enter");
  await v1.page.waitForSelector(".message.theirs >> text=Found it, it arrives tomorrow 👍");
  check(true, "an emoji picked from the picker goes out with the reply");
  await bob.keyboard.press("Alt+N");
  await bob.waitForFunction(() => document.getElementById("note-mode").checked);
  await send(bob, "Parcel held at the depot; courier called.");
  await bob.waitForSelector(".message.note >> text=Parcel held at the depot");
  await bob.waitForSelector("#workspace-body .panel-notes li >> text=Parcel held at the depot");
  await bob.keyboard.press("Alt+N");
  check(!(await bob.isChecked("#note-mode")), "Alt+N writes a private note: in the transcript and listed in the side panel; Alt+N again back to replies");
  await bob.waitForSelector('#label-add option[value="VIP"]', { state: "attached" });
  await bob.selectOption("#label-add", "VIP");
  await bob.waitForSelector('#label-chips .label-chip[data-label="VIP"]');
  check(true, "bob labels the conversation VIP");

  // Snooze the third (Alt+3, Alt+S) until the visitor replies.
  await bob.keyboard.press("Alt+3");
  await bob.waitForSelector(`${tab(v3)}.selected`);
  await bob.keyboard.press("Alt+S");
  await bob.waitForSelector("#snooze-form:not([hidden])");
  await bob.selectOption("#snooze-choice", "reply");
  await bob.click("#snooze-submit");
  await bob.waitForSelector("#on-hold-banner:not([hidden])");
  await bob.waitForSelector(`${tab(v3)} .dot.on_hold`);
  check(true, "Alt+S snoozes the third conversation until the visitor replies: on hold, its tab's dot says so");

  // The shortcut help: ? outside a text field, Esc closes it.
  await bob.click("#view-title");
  await bob.keyboard.press("?");
  await bob.waitForSelector("#help:not([hidden]) .shortcut-list");
  await bob.screenshot({ path: shot("agent-shortcuts") });
  await bob.keyboard.press("Escape");
  await bob.waitForSelector("#help", { state: "hidden" });
  check(true, "? opens the shortcut help, Esc closes it");

  // Hidden tab: a visitor's message notifies (and chimes); the badge waits until bob looks.
  await bob.keyboard.press("Alt+1");
  await bob.waitForSelector(`${tab(v1)}.selected`);
  await setHidden(bob, true);
  await send(v1.page, "Thanks! Will it need a signature?");
  await bob.waitForFunction(() => window.__notifications.some((n) => n.body === "Thanks! Will it need a signature?"), null, { timeout: 10000 });
  const notified = await bob.evaluate(() => ({ list: window.__notifications, chimes: window.kfAgent.alerts.chimes }));
  log(`  (notifications: ${JSON.stringify(notified.list)}; chimes ${notified.chimes})`);
  check(notified.chimes >= 1 && notified.list.at(-1).tag === v1.id, "with the console hidden, the visitor's message raises a notification (tagged with its conversation) and a chime");
  await bob.waitForSelector(`${tab(v1)} .unread >> text=1`);
  await setHidden(bob, false);
  await bob.waitForFunction((id) => !document.querySelector(`.tab[data-conversation="${id}"] .unread`), v1.id);
  check(true, "unseen while hidden (badge 1 on the open tab), seen once the page shows again");

  // Seen, both ways, and after a reload of either side.
  await send(bob, "No signature needed.");
  await v1.page.waitForSelector(".message.theirs >> text=No signature needed.");
  await bob.waitForSelector(".message.mine:has-text('No signature needed.') .meta.seen");
  await v1.page.waitForSelector(".message.mine:has-text('Will it need a signature?') .meta.seen");
  check(true, "bob sees “seen” under his reply once the visitor has it on screen; the visitor sees “seen” under hers");
  await bob.reload();
  await bob.waitForSelector('#console:not([hidden]) #status[data-state="online"]');
  await bob.click(`.conversation-item[data-conversation="${v1.id}"]`);
  await bob.waitForSelector(".message.mine:has-text('No signature needed.') .meta.seen", { timeout: 10000 });
  const badges = await bob.locator(".conversation-item .unread").count();
  check(badges === 0, `after a reload of the console: still “seen” under bob's reply, and no unread badge comes back (${badges})`);
  await v1.page.reload();
  await v1.page.waitForSelector('#status[data-state="online"]');
  await v1.page.waitForSelector(".message.mine:has-text('Will it need a signature?') .meta.seen", { timeout: 10000 });
  check(true, "after a reload of the visitor's page: still “seen” under her message");
  await bob.screenshot({ path: shot("agent-seen") });
  await v1.page.screenshot({ path: shot("visitor-seen") });

  // Close; the visitor rates; the side panel shows the stars and the comment.
  await bob.click("#close-conversation");
  await v1.page.waitForSelector("#banner:not([hidden]) >> text=This conversation is closed.");
  await v1.page.evaluate((conversation) => window.kfVisitor.client.request({ type: "rate", conversation, client_id: "rate-workspace", score: 4, comment: "Quick and kind." }), v1.id);
  await bob.waitForSelector('#workspace-body .panel-rating[data-score="4"] >> text=Quick and kind.');
  check(true, "bob closes; the visitor rates 4 stars with a comment after the close; bob's side panel shows it");
  await bob.screenshot({ path: shot("agent-rated") });

  // The visitor's next conversation lists this one; bob opens it read-only in a tab.
  await v1.page.click("#banner button");
  await v1.page.waitForFunction((old) => window.kfVisitor.state.conversation && window.kfVisitor.state.conversation !== old, v1.id);
  await send(v1.page, "One more thing: can I return it?");
  const next = await v1.page.evaluate(() => window.kfVisitor.state.conversation);
  // The next morning: a fresh console lists the open conversations only; the closed one is history now.
  await bob.reload();
  await bob.waitForSelector('#console:not([hidden]) #status[data-state="online"]');
  await bob.click(`.conversation-item[data-conversation="${next}"]`);
  await bob.waitForSelector(".message.theirs >> text=One more thing: can I return it?");
  const past = bob.locator(`#context-body .past li[data-conversation="${v1.id}"] .past-open`);
  await past.waitFor();
  await past.click();
  await bob.waitForSelector(`${tab(v1)}.selected.tab-past`);
  await bob.waitForSelector(".message >> text=Thanks! Will it need a signature?");
  await bob.waitForSelector('.rating-card[data-score="4"]');
  const readOnly = await bob.evaluate(() => ({ banner: !document.getElementById("past-banner").hidden, input: document.getElementById("input").disabled }));
  check(readOnly.banner && readOnly.input, "the visitor panel lists the earlier conversation; bob opens it in a read-only tab: its whole log and rating, no reply box");
  await bob.screenshot({ path: shot("agent-past") });
  await bob.keyboard.press("Alt+W");
  await bob.waitForFunction((id) => !document.querySelector(`.tab[data-conversation="${id}"]`), v1.id);
  check(true, "Alt+W closes the read-only tab");
  await bob.setViewportSize({ width: 390, height: 844 });
  await bob.screenshot({ path: shot("agent-workspace-phone"), fullPage: true });

  for (const context of contexts) await context.close();
  await bobContext.close();
  await alice.selectOption("#agent-status", "online");
  await alice.waitForSelector('#my-status[data-status="online"]');
}
