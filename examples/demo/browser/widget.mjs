// Browser check of the embeddable widget (clients/widget) in headless Debian Chromium, run by scripts/test.sh.
//
//   npm ci && node widget.mjs path/to/kf-demo [screenshot-dir]
//
// Starts the demo binary on a free port with a temp data dir, an allowed host origin and an identity secret, and two
// Node HTTP servers on other ports: the "shop" (an allowed origin) whose pages embed the widget with one script tag,
// and an "evil" site (not allowed). Then:
//  1. a visitor on the shop and alice on the demo's agent page chat both ways (typing, "Seen" on both sides, kept
//     across a reload of either page, unread badge while
//     minimised, keyboard: Esc closes and focus goes back to the launcher); the evil site gets a clear error, no
//     connection and no conversation; alice writes a private note mentioning bob (completed from `@bo`): bob, on his
//     own agent page, is notified and reads it, the visitor never shows it; the agent closes, the visitor rates the
//     conversation (4 stars and a comment), alice's page shows the rating, a reload still says thanks, and the
//     visitor starts a new conversation;
//  2. airplane mode: five messages written offline show as pending and reach the agent once, in order, when the
//     network is back; the agent's replies sent meanwhile show once; again with a reload while messages are unsent;
//  3. WebSockets blocked: the widget falls back to SSE by itself and the conversation goes on without loss;
//  4. hostile host CSS (`*`, `div`, `button`) does not change the widget (screenshots compared pixel by pixel) and the
//     widget changes nothing on the host page (DOM outside its host element, styles, globals but `kf`);
//  5. an identified user (user_id + HMAC user_hash) sees the earlier conversation in a second browser context (via
//     `kf.identify`); a forged hash is refused with a clear error;
//  6. screenshots (widget-*.png; widget-attachment.png: a picture sent and a refused file; agent-note.png, agent-mentioned.png, agent-rating.png from step 1): launcher, open panel (desktop, phone 390x844), pre-chat form (and its refusal of
//     missing answers), queue position, brand colour on the left, offline form and what it left, Chinese UI, the
//     refused origin and the forged identity; along the way a refused visitor key and a refused token, the
//     pre-load call queue, and the answers of the pre-chat form on the created event.
// Exits non-zero if any check failed.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, DemoServer, check, log, sleep, tally } from "./harness.mjs";

const BINARY = process.argv[2];
if (!BINARY) {
  console.error("usage: node widget.mjs path/to/kf-demo [screenshot-dir]");
  process.exit(2);
}
const SHOTS = process.argv[3] || os.tmpdir();
const shot = (name) => path.join(SHOTS, `widget-${name}.png`);
// Hinting off: the hostile-CSS comparison is pixel by pixel.
const CHROMIUM = [...CHROMIUM_ARGS, "--font-render-hinting=none"];
const SECRET = "widget-check-secret";
const hmac = (userId, secret = SECRET) => crypto.createHmac("sha256", secret).update(userId).digest("hex");

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---- the host sites ----

const HOSTILE_CSS = `
  * { font-family: "Comic Sans MS", cursive !important; line-height: 3 !important; letter-spacing: 3px !important;
      box-sizing: content-box !important; color: #c00 !important; text-transform: uppercase; transform: none; }
  div { padding: 13px !important; margin: 7px !important; border: 3px dashed green !important; background: #ffe !important;
        display: block !important; position: static !important; }
  button { background: yellow !important; border: 5px solid black !important; border-radius: 0 !important;
           width: 200px !important; height: 80px !important; padding: 20px !important; position: static !important; }
  section, header, form, textarea, p, h2 { all: unset; display: block !important; }
`;

/** A shop page embedding the widget with one script tag. */
function shopPage(kfBase, query) {
  const entry = query.get("entry") || "web";
  const attrs = [`src="${kfBase}/widget/widget.js"`, `data-tenant="demo"`, `data-entry="${entry}"`];
  if (query.get("lang")) attrs.push(`data-lang="${query.get("lang")}"`);
  if (query.get("color")) attrs.push(`data-color="${query.get("color")}"`);
  if (query.get("position")) attrs.push(`data-position="${query.get("position")}"`);
  if (query.get("user")) attrs.push(`data-user-id="${query.get("user")}"`, `data-user-hash="${query.get("hash")}"`);
  const hostile = query.get("hostile") ? `<style>${HOSTILE_CSS}</style>` : "";
  // The documented stub: calls made before the widget has loaded are queued and replayed.
  const queuedIdentity = query.get("qid") ? `kf("identify", ${JSON.stringify({ user_id: query.get("qid"), user_hash: query.get("hash") })});` : "";
  const stub = query.get("stub")
    ? `<script>window.kf = window.kf || function () { (kf.q = kf.q || []).push(arguments); };
       kf("on", "ready", function () { window.__kfReady = true; }); kf("open"); ${queuedIdentity}</script>`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme Outdoor · Alpine 42</title><link rel="icon" href="data:,">
<style>body { margin: 0; font-family: Georgia, serif; background: #fbfaf6; color: #222; }
.top { background: #23344a; color: #fff; padding: 18px 28px; } .top h1 { margin: 0; font-size: 26px; }
main { padding: 24px 28px; max-width: 640px; } .buy { background: #c2410c; color: #fff; border: 0; padding: 10px 18px; border-radius: 6px; }</style>
${hostile}
</head><body>
<header class="top"><h1>Acme Outdoor</h1></header>
<main id="shop-main"><h2>Alpine 42 boots</h2>
<p>Waterproof leather, Vibram soles, made for long days in the mountains. Free returns within 60 days.</p>
<button class="buy" type="button">Add to basket</button></main>
<script>
  // What the page looks like before the widget: its DOM, some styles, its globals.
  window.__hostSnapshot = () => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll("kf-chat-widget").forEach((n) => n.remove());
    body.querySelectorAll("script").forEach((n) => n.remove());
    const style = (sel) => { const cs = getComputedStyle(document.querySelector(sel)); return [cs.fontFamily, cs.color, cs.margin, cs.padding, cs.fontSize, cs.lineHeight, cs.background].join("|"); };
    return { body: body.innerHTML.replace(/>\s+</g, "><").trim(), head: document.head.innerHTML, htmlAttrs: [...document.documentElement.attributes].map((a) => a.name + "=" + a.value).join(";"),
      bodyAttrs: [...document.body.attributes].map((a) => a.name + "=" + a.value).join(";"), styles: ["body", ".top", "h1", "main", "p", ".buy"].map(style),
      sheets: document.styleSheets.length, adopted: document.adoptedStyleSheets.length, title: document.title };
  };
  window.__before = window.__hostSnapshot();
  window.__globalsBefore = Object.getOwnPropertyNames(window);
</script>
${stub}<script ${attrs.join(" ")} async></script>
</body></html>`;
}

function startSite(kfBaseRef) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://site");
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204);
      res.end();
      return;
    }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(shopPage(kfBaseRef.value, url.searchParams));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, origin: `http://127.0.0.1:${server.address().port}` })));
}

// ---- the kf demo server ----

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kf-widget-check-"));
let demo = null;
let base = "";

async function startServer(allowedOrigin) {
  demo = new DemoServer(BINARY, dataDir, ["--allowed-origin", allowedOrigin, "--identity-secret", SECRET]);
  await demo.start();
  base = demo.base;
}

const stopServer = () => (demo ? demo.stop() : Promise.resolve());

// ---- PNG comparison (8-bit RGB/RGBA, non-interlaced: what Chromium writes) ----

function decodePng(buffer) {
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 4;
  const idat = [];
  while (offset < buffer.length) {
    const length = buffer.readUInt32BE(offset);
    const type = buffer.toString("ascii", offset + 4, offset + 8);
    const data = buffer.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      channels = data[9] === 6 ? 4 : 3;
    } else if (type === "IDAT") idat.push(data);
    offset += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
      let value = line[x];
      if (filter === 1) value += a;
      else if (filter === 2) value += b;
      else if (filter === 3) value += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        value += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = value & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** The share of pixels that differ by more than a few levels in any channel. */
function pixelDifference(a, b) {
  const one = decodePng(a);
  const two = decodePng(b);
  if (one.width !== two.width || one.height !== two.height) return 1;
  let differing = 0;
  const n = one.width * one.height;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      if (Math.abs(one.pixels[i * one.channels + c] - two.pixels[i * two.channels + c]) > 8) {
        differing++;
        break;
      }
    }
  }
  return differing / n;
}

// ---- browser helpers ----

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM });
const consoleErrors = [];
const watched = new Map();
function watch(page, name) {
  watched.set(name, page);
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") consoleErrors.push(`${name}: ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${name}: pageerror: ${e.message}`));
}

async function dumpWidgets() {
  for (const [name, page] of watched) {
    if (page.isClosed()) continue;
    const state = await page.evaluate(() => (window.kf && window.kf.debug ? window.kf.debug() : null)).catch((e) => `unavailable: ${e.message}`);
    log(`  (state of ${name}: ${JSON.stringify(state)})`);
  }
  for (const e of consoleErrors) log("  console:", e);
}

const W = "kf-chat-widget"; // the widget's host element (its shadow root is open: locators pierce it)
const debug = (page) => page.evaluate(() => window.kf.debug());

async function newShop(site, query = "", { viewport = { width: 1100, height: 760 }, name, context = null } = {}) {
  const ctx = context || (await browser.newContext({ viewport }));
  const page = await ctx.newPage();
  watch(page, name);
  await page.goto(`${site.origin}/?${query}`);
  await page.waitForSelector(`${W} >> .launcher`);
  return { context: ctx, page };
}

async function openPanel(page) {
  if (!(await page.locator(`${W} >> .panel`).isVisible())) await page.click(`${W} >> .launcher`);
  await page.waitForSelector(`${W} >> .panel`, { state: "visible" });
}

async function waitOnline(page, timeout = 15000) {
  await page.waitForFunction(() => {
    const state = window.kf && window.kf.debug && window.kf.debug(); // (undefined until the widget has loaded)
    return state && state.online;
  }, null, { timeout });
}

async function widgetSend(page, text) {
  await page.fill(`${W} >> textarea`, text);
  await page.press(`${W} >> textarea`, "Enter");
}

/** The widget's message bubbles as shown: [{text, mine, pending}] */
async function shown(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  return page.$$eval(`${W} >> .message`, (nodes) =>
    nodes.map((n) => ({ text: n.querySelector(".bubble").textContent, mine: n.classList.contains("mine"), pending: n.classList.contains("pending") })),
  );
}

/** The agent page's visitor messages of the open conversation, as shown. */
async function agentSees(agent) {
  return agent.locator("#messages .message.theirs .bubble").allTextContents();
}

async function agentSend(agent, text) {
  await agent.fill("#input", text);
  await agent.keyboard.press("Enter");
  await agent.waitForSelector(`#messages .message.mine >> text=${text}`);
}

async function agentToken() {
  const response = await fetch(`${base}/api/agent-login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ agent: "alice", password: "alice-demo" }) });
  return (await response.json()).token;
}

async function agentOpen(agent, conversation) {
  await agent.waitForSelector(`.conversation-item[data-conversation="${conversation}"]`, { timeout: 15000 });
  await agent.click(`.conversation-item[data-conversation="${conversation}"]`);
  await agent.waitForSelector(`.conversation-item.selected[data-conversation="${conversation}"]`);
}

// ---- the checks ----

const kfBase = { value: "" };
const shop = await startSite(kfBase);
const evil = await startSite(kfBase);
try {
  await startServer(shop.origin);
  kfBase.value = base;
  log(`kf at ${base}; shop at ${shop.origin} (allowed); evil site at ${evil.origin} (not allowed)`);

  // The agent: alice on the demo's agent page.
  const agentContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const agent = await agentContext.newPage();
  watch(agent, "agent");
  await agent.goto(`${base}/agent`);
  await agent.fill("#login-agent", "alice");
  await agent.fill("#login-password", "alice-demo");
  await agent.click("#login-button");
  await agent.waitForSelector('#console:not([hidden]) #status[data-state="online"]');
  check(true, "alice is logged in on the agent page");

  // ---- 1. a conversation both ways ----
  const { context: visitorContext, page: visitor } = await newShop(shop, "utm_source=newsletter&utm_campaign=spring", { name: "visitor" });
  const unreadEvents = [];
  const stateEvents = [];
  await visitor.evaluate(() => {
    window.__unread = [];
    window.__state = [];
    window.kf.on("unread", (n) => window.__unread.push(n));
    window.kf.on("state", (s) => window.__state.push(s));
  });
  await waitOnline(visitor);
  // A single-page-app navigation: the widget reports the new page (protocol §7.11).
  await visitor.evaluate(() => {
    history.pushState({}, "", "/boots/alpine-42?size=44");
    document.title = "Alpine 42 · Acme Outdoor";
  });
  await sleep(1500);
  await visitor.screenshot({ path: shot("launcher") });
  // Keyboard: the launcher opens the panel with Enter, focus goes into the composer.
  await visitor.focus(`${W} >> .launcher`);
  await visitor.keyboard.press("Enter");
  await visitor.waitForSelector(`${W} >> .panel`, { state: "visible" });
  const focusedInput = await visitor.evaluate(() => {
    const host = document.querySelector("kf-chat-widget");
    return document.activeElement === host && host.shadowRoot.activeElement && host.shadowRoot.activeElement.tagName;
  });
  check(focusedInput === "TEXTAREA", `Enter on the launcher opens the panel and focuses the message box (${focusedInput})`);
  const dialog = await visitor.evaluate(() => {
    const panel = document.querySelector("kf-chat-widget").shadowRoot.querySelector(".panel");
    return { role: panel.getAttribute("role"), label: panel.getAttribute("aria-labelledby") };
  });
  check(dialog.role === "dialog" && !!dialog.label, "the panel is a labelled dialog");
  await visitor.waitForSelector(`${W} >> .messages > *`);
  await visitor.screenshot({ path: shot("panel-desktop") });
  // Tab cycles inside the panel.
  for (let i = 0; i < 8; i++) await visitor.keyboard.press("Tab");
  const stillInside = await visitor.evaluate(() => {
    const root = document.querySelector("kf-chat-widget").shadowRoot;
    return !!root.activeElement && root.querySelector(".panel").contains(root.activeElement);
  });
  check(stillInside, "Tab keeps the focus inside the open panel");
  await visitor.keyboard.press("Escape");
  await visitor.waitForSelector(`${W} >> .panel`, { state: "hidden" });
  const focusBack = await visitor.evaluate(() => {
    const host = document.querySelector("kf-chat-widget");
    return document.activeElement === host && host.shadowRoot.activeElement === host.shadowRoot.querySelector(".launcher");
  });
  check(focusBack, "Esc closes the panel and the focus returns to the launcher");

  await openPanel(visitor);
  await widgetSend(visitor, "Hello from the widget");
  await visitor.waitForFunction(() => window.kf.debug().conversation && window.kf.debug().texts.includes("Hello from the widget"), null, { timeout: 15000 });
  const conversation = (await debug(visitor)).conversation;
  check(!!conversation, `the first message opened a conversation (${conversation})`);
  await agentOpen(agent, conversation);
  await agent.waitForSelector("#messages .message.theirs >> text=Hello from the widget");
  check(true, "the visitor's message reached alice");
  await agent.waitForSelector('#context-body [data-field="utm"]', { timeout: 10000 });
  const utm = await agent.textContent('#context-body [data-field="utm"]');
  const landing = await agent.textContent('#context-body [data-field="landing"]');
  const trail = await agent.$$eval("#context-body .trail li", (items) => items.map((li) => li.title));
  check(
    utm.includes("newsletter") && utm.includes("spring") && landing.includes("utm_source=newsletter") && trail.some((url) => url.endsWith("/boots/alpine-42?size=44")),
    `alice sees the visit: campaign (${utm}), landing page, and the page the single-page app moved to (${trail.join(" → ")})`,
  );
  await visitor.waitForSelector(`${W} >> .system >> text=Alice joined the conversation`);
  await visitor.waitForSelector(`${W} >> .subtitle >> text=You are talking to Alice`);
  check(true, "the widget shows that Alice joined");

  // Typing both ways.
  await agent.fill("#input", "Let me");
  await agent.type("#input", " check");
  await visitor.waitForSelector(`${W} >> .typing >> text=Alice is typing…`, { timeout: 10000 });
  check(true, "the widget shows Alice typing");
  await agent.fill("#input", "");
  await visitor.type(`${W} >> textarea`, "One more");
  await agent.waitForSelector("#typing:not([hidden])", { timeout: 10000 });
  check(true, "the agent page shows the visitor typing");
  await visitor.fill(`${W} >> textarea`, "");

  await agentSend(agent, "Hi! Your order ships tomorrow.");
  await visitor.waitForSelector(`${W} >> .message.theirs >> text=Hi! Your order ships tomorrow.`);
  check(true, "alice's reply reached the widget");

  // "Seen": alice reads up to the visitor's message (a `read` frame, sent here over POST /sse/read).
  const aliceToken = await agentToken();
  const lastSeq = Math.max(...(await debug(visitor)).seqs);
  const readResponse = await fetch(`${base}/sse/read`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${aliceToken}` },
    body: JSON.stringify({ conversation, seq: lastSeq }),
  });
  check(readResponse.status === 204, `alice's read receipt is accepted (${readResponse.status})`);
  await visitor.waitForSelector(`${W} >> .message.mine .meta.seen`, { timeout: 10000 });
  check(true, "the widget shows \"Seen\" under the visitor's message");
  await agent.waitForSelector(".message.mine:has-text('Hi! Your order ships tomorrow.') .meta.seen", { timeout: 10000 });
  check(true, "and alice's page shows \"seen\" under her reply once the widget has shown it");

  // Minimised: the agent's messages count as unread (badge, `unread` event) until the panel opens again, and
  // a desktop notification tells the visitor (the permission granted; the constructor watched).
  await visitorContext.grantPermissions(["notifications"], { origin: shop.origin });
  await visitor.evaluate(() => {
    const Native = window.Notification;
    window.__notifications = [];
    window.Notification = class extends Native {
      constructor(title, options) {
        super(title, options);
        window.__notifications.push({ title, body: options && options.body });
      }
    };
  });
  await visitor.click(`${W} >> .minimise`);
  await visitor.waitForSelector(`${W} >> .panel`, { state: "hidden" });
  await agentSend(agent, "Anything else?");
  await visitor.waitForSelector(`${W} >> .badge:not([hidden]) >> text=1`, { timeout: 10000 });
  const launcherLabel = await visitor.getAttribute(`${W} >> .launcher`, "aria-label");
  check(/1 unread message/.test(launcherLabel || ""), `the badge shows 1 unread, the launcher says so (${launcherLabel})`);
  const notifications = await visitor.evaluate(() => window.__notifications);
  check(same(notifications, [{ title: "New message from Alice", body: "Anything else?" }]), `a desktop notification for the agent's message while minimised (${JSON.stringify(notifications)})`);
  await openPanel(visitor);
  await visitor.waitForSelector(`${W} >> .badge`, { state: "hidden" });
  const events = await visitor.evaluate(() => ({ unread: window.__unread, state: window.__state }));
  check(events.unread.includes(1) && events.unread[events.unread.length - 1] === 0 && same(events.state.slice(-2), ["closed", "open"]), `kf.on("unread") and kf.on("state") report it (${JSON.stringify(events)})`);

  // Both sides keep "seen" across a reload: the server keeps each side's mark and sends it on (re)connect.
  await visitor.reload();
  await visitor.waitForSelector(`${W} >> .launcher`);
  await waitOnline(visitor);
  await openPanel(visitor);
  await visitor.waitForSelector(`${W} >> .message.mine .meta.seen`, { timeout: 15000 });
  check(true, "after a reload of the visitor's page the widget still shows \"Seen\"");
  await agent.reload();
  await agent.waitForSelector('#console:not([hidden]) #status[data-state="online"]');
  await agentOpen(agent, conversation);
  await agent.waitForSelector(".message.mine .meta.seen", { timeout: 15000 });
  check(true, "and after a reload of the console, alice still sees \"seen\" under her last reply the visitor has seen");

  // The evil site: not an allowed origin. No connection, no conversation, a clear error.
  {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const page = await context.newPage();
    watch(page, "evil");
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${evil.origin}/`);
    await page.waitForSelector(`${W} >> .launcher`);
    await openPanel(page);
    await page.waitForSelector(`${W} >> .error-box:not([hidden])`, { timeout: 15000 });
    const text = await page.textContent(`${W} >> .error-box`);
    const state = await debug(page);
    check(/not allowed|cannot be reached/.test(text) && !state.conversation && !state.online && sockets.length === 0, `the page on a site that is not allowed gets a clear error and no connection ("${text.trim()}", websockets: ${sockets.length})`);
    await page.screenshot({ path: shot("refused-origin") });
    const refused = await fetch(`${base}/widget/session`, { method: "POST", headers: { "Content-Type": "application/json", Origin: evil.origin }, body: JSON.stringify({ tenant: "demo" }) });
    check(refused.status === 403, `POST /widget/session from that origin is refused (${refused.status})`);
    // The transports refuse that origin too, whatever the page does by itself.
    const handshake = await new Promise((resolve) => {
      const request = http.request(`${base}/ws`, {
        headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": crypto.randomBytes(16).toString("base64"), Origin: evil.origin },
      });
      request.on("response", (response) => resolve(response.statusCode));
      request.on("upgrade", (response, socket) => {
        socket.destroy();
        resolve(101);
      });
      request.on("error", (error) => resolve(String(error)));
      request.end();
    });
    const session = await (await fetch(`${base}/widget/session`, { method: "POST", headers: { "Content-Type": "application/json", Origin: shop.origin }, body: JSON.stringify({ tenant: "demo" }) })).json();
    const stream = await fetch(`${base}/sse/events?token=${encodeURIComponent(session.token)}`, { headers: { Origin: evil.origin } });
    await stream.body?.cancel();
    check(handshake === 403 && stream.status === 403, `a WebSocket handshake and an SSE stream from that origin are refused (${handshake}, ${stream.status})`);
    await context.close();
  }

  // ---- 2. airplane mode ----
  await visitorContext.setOffline(true);
  await visitor.waitForFunction(() => !window.kf.debug().online, null, { timeout: 10000 });
  check(true, "offline: the widget notices at once (the browser's offline event)");
  const offlineTexts = ["offline 1", "offline 2", "offline 3", "offline 4", "offline 5"];
  for (const text of offlineTexts) await widgetSend(visitor, text);
  const duringOffline = await shown(visitor);
  check(
    offlineTexts.every((text) => duringOffline.some((m) => m.text === text && m.pending)),
    "five messages written offline show as pending",
  );
  await agentSend(agent, "agent while offline A");
  await agentSend(agent, "agent while offline B");
  await visitorContext.setOffline(false);
  await agent.waitForSelector("#messages .message.theirs >> text=offline 5", { timeout: 30000 });
  await sleep(500);
  let seen = (await agentSees(agent)).filter((t) => t.startsWith("offline "));
  check(same(seen, offlineTexts), `alice sees the five offline messages once, in order (${seen.join(", ")})`);
  await visitor.waitForSelector(`${W} >> .message.theirs >> text=agent while offline B`, { timeout: 15000 });
  let bubbles = await shown(visitor);
  const countOf = (list, text) => list.filter((m) => m.text === text).length;
  check(
    countOf(bubbles, "agent while offline A") === 1 && countOf(bubbles, "agent while offline B") === 1 && offlineTexts.every((t) => countOf(bubbles, t) === 1 && !bubbles.find((m) => m.text === t).pending),
    "the widget shows alice's replies sent meanwhile once, and its five messages once, sent",
  );

  // Unsent messages survive a reload: the kf server is unreachable (WebSocket closed, HTTP refused) while they are
  // written and while the page reloads; then it is reachable again.
  let blockKf = true;
  await visitor.routeWebSocket(/\/ws$/, (ws) => (blockKf ? ws.close() : ws.connectToServer()));
  await visitor.route(/\/(sse\/|widget\/session)/, (route) => (blockKf ? route.abort() : route.continue()));
  await visitor.reload();
  await visitor.waitForSelector(`${W} >> .launcher`);
  await openPanel(visitor);
  const reloadTexts = ["unsent 1", "unsent 2", "unsent 3"];
  for (const text of reloadTexts) await widgetSend(visitor, text);
  await visitor.reload();
  await visitor.waitForSelector(`${W} >> .launcher`);
  await openPanel(visitor);
  await visitor.waitForSelector(`${W} >> .message.pending >> text=unsent 3`, { timeout: 10000 }).catch(() => {});
  bubbles = await shown(visitor);
  check(reloadTexts.every((t) => bubbles.some((m) => m.text === t && m.pending)), "after a reload the unsent messages are still there, pending");
  if (!reloadTexts.every((t) => bubbles.some((m) => m.text === t && m.pending))) log(`  (shown: ${JSON.stringify(bubbles)}; state: ${JSON.stringify(await debug(visitor))})`);
  blockKf = false;
  await agent.waitForSelector("#messages .message.theirs >> text=unsent 3", { timeout: 30000 });
  await sleep(800);
  seen = (await agentSees(agent)).filter((t) => t.startsWith("unsent "));
  check(same(seen, reloadTexts), `alice sees them once, in order, after the reload (${seen.join(", ")})`);
  await visitor.waitForFunction(() => window.kf.debug().pending.length === 0, null, { timeout: 15000 });
  bubbles = await shown(visitor);
  check(reloadTexts.every((t) => countOf(bubbles, t) === 1), "and the widget shows each once");

  // Files: the visitor attaches a picture (shown inline from its signed link); a text file named as a picture is
  // refused by the server's sniffing, with its reason.
  {
    const picture = await agent.screenshot({ clip: { x: 0, y: 0, width: 240, height: 160 } });
    await visitor.setInputFiles(`${W} >> .file-input`, { name: "parcel.png", mimeType: "image/png", buffer: picture });
    await visitor.waitForFunction(() => {
      const img = document.querySelector("kf-chat-widget").shadowRoot.querySelector(".attachment.image img");
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: 15000 });
    const href = await visitor.locator(`${W} >> .attachment.image`).last().getAttribute("href");
    check(/\/files\/blob\/[0-9a-f]{32}\?expires=\d+&sig=/.test(href || ""), `the visitor's picture is sent and shown from its signed link (${href})`);
    await visitor.setInputFiles(`${W} >> .file-input`, { name: "notes.png", mimeType: "image/png", buffer: Buffer.from("not a picture at all") });
    await visitor.waitForSelector(`${W} >> .message.failed`, { timeout: 15000 });
    const refusal = await visitor.locator(`${W} >> .message.failed .meta`).last().textContent();
    check(/not recognised|not accepted/.test(refusal || ""), `a text file named .png is refused: ${refusal}`);
    await visitor.screenshot({ path: shot("attachment") });
  }

  // A private note with a mention: alice writes it, bob (on his own agent page) is notified, the visitor never sees it.
  {
    const bobContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const bob = await bobContext.newPage();
    watch(bob, "bob");
    await bob.goto(`${base}/agent`);
    await bob.fill("#login-agent", "bob");
    await bob.fill("#login-password", "bob-demo");
    await bob.click("#login-button");
    await bob.waitForSelector('#console:not([hidden]) #status[data-state="online"]');
    const secret = "VIP customer: refund approved, @bob please follow up";
    await agent.check("#note-mode");
    await agent.fill("#input", "VIP customer: refund approved, @bo");
    await agent.waitForSelector("#qr-hint:not([hidden]) >> text=@bob");
    await agent.press("#input", "Tab"); // completes the mention
    await agent.type("#input", "please follow up");
    check((await agent.inputValue("#input")) === secret, "the note composer completes @bo into @bob");
    await agent.press("#input", "Enter");
    await agent.waitForSelector("#messages .message.note >> text=refund approved", { timeout: 10000 });
    const noteMeta = await agent.locator("#messages .message.note .meta").last().textContent();
    check(noteMeta.includes("only agents see this") && noteMeta.includes("@bob"), `alice sees her note marked private, with its mention (${noteMeta})`);
    await agent.screenshot({ path: path.join(SHOTS, "agent-note.png") });
    await bob.waitForFunction(() => window.kfAgent.mentions().length > 0, null, { timeout: 10000 }).catch(() => {});
    const mentions = await bob.evaluate(() => window.kfAgent.mentions().map((m) => ({ text: m.text, author: m.author.id, conversation: m.conversation.id })));
    check(mentions.length === 1 && mentions[0].text === secret && mentions[0].author === "alice" && mentions[0].conversation === conversation, `bob is notified of the mention (${JSON.stringify(mentions)})`);
    const toastText = await bob.locator("#toast").textContent();
    check(toastText.includes("Alice mentioned you"), `bob sees a toast (${toastText})`);
    await bob.waitForSelector(`.conversation-item[data-conversation="${conversation}"]`, { timeout: 10000 });
    await bob.click(`.conversation-item[data-conversation="${conversation}"]`);
    await bob.waitForSelector("#messages .message.note >> text=refund approved", { timeout: 10000 });
    check(await bob.locator("#input").isDisabled(), "bob reads the conversation with the note, read only");
    await bob.screenshot({ path: path.join(SHOTS, "agent-mentioned.png") });
    // Away before he leaves: within the presence grace an online bob would be given the next conversation.
    await bob.selectOption("#agent-status", "away");
    await bob.waitForSelector('#my-status[data-status="away"]');
    await bobContext.close();
    await agent.uncheck("#note-mode");
    // The visitor: a message after the note arrives (so the note's seq went by), and nothing of the note anywhere.
    await agentSend(agent, "Let me check that for you.");
    await visitor.waitForSelector(`${W} >> .message >> text=Let me check that for you.`, { timeout: 10000 });
    const panelText = await visitor.locator(`${W} >> .messages`).textContent();
    const stored = await visitor.evaluate(() => Object.values(localStorage).join("\n"));
    check(!panelText.includes("refund") && !stored.includes("refund"), "the visitor never shows the note (panel and saved state)");
  }

  // Closed by the agent: a notice, the rating form, and "start a new conversation".
  await agent.click("#close-conversation");
  await visitor.waitForSelector(`${W} >> .closed-notice`, { timeout: 10000 });
  await visitor.waitForSelector(`${W} >> .rating .star`, { timeout: 10000 });
  check(await visitor.locator(`${W} >> .rate-submit`).isDisabled(), "the rating form waits for a score");
  await visitor.click(`${W} >> .star[data-score="4"]`);
  await visitor.fill(`${W} >> .rate-comment`, "Quick and friendly, thanks!");
  await visitor.screenshot({ path: shot("rating") });
  await visitor.click(`${W} >> .rate-submit`);
  await visitor.waitForSelector(`${W} >> .rate-thanks`, { timeout: 10000 });
  check((await visitor.locator(`${W} >> .rating`).count()) === 0, "after the rating: thanks, and no form to rate again");
  await visitor.screenshot({ path: shot("rated") });
  await agent.waitForSelector(".rating-card", { timeout: 10000 });
  const card = await agent.locator(".rating-card").textContent();
  check(card.includes("★★★★☆") && card.includes("4/5") && card.includes("Quick and friendly, thanks!"), `the agent page shows the rating (${card})`);
  check((await agent.locator(`.conversation-item[data-conversation="${conversation}"] .rating-badge`).textContent()) === "★4", "and the conversation list its score");
  await agent.screenshot({ path: path.join(SHOTS, "agent-rating.png") });
  // A reload of the visitor's page still says thanks (the `rated` event is in its log).
  await visitor.reload();
  await visitor.waitForSelector(`${W} >> .launcher`);
  await waitOnline(visitor); // booted: the panel is as it was saved (open), so openPanel does not toggle it shut
  await openPanel(visitor);
  await visitor.waitForSelector(`${W} >> .rate-thanks`, { timeout: 15000 });
  check((await visitor.locator(`${W} >> .rating`).count()) === 0, "after a reload the widget still knows it was rated");
  await visitor.click(`${W} >> .new-conversation`);
  await visitor.waitForSelector(`${W} >> textarea:not([disabled])`);
  await widgetSend(visitor, "A second question");
  await visitor.waitForFunction((first) => window.kf.debug().conversation && window.kf.debug().conversation !== first, conversation, { timeout: 15000 });
  const second = (await debug(visitor)).conversation;
  check(second !== conversation, "after the agent closed the conversation, the visitor started a new one");
  await agentOpen(agent, second);
  await agent.waitForSelector("#messages .message.theirs >> text=A second question");
  // Alice puts it on hold: the widget tells the visitor the team comes back, and that writing picks it up.
  await agent.click("#snooze-toggle");
  await agent.selectOption("#snooze-choice", "reply");
  await agent.click("#snooze-submit");
  await visitor.waitForSelector(`${W} >> .system >> text=We will get back to you here.`, { timeout: 10000 });
  check((await visitor.locator(`${W} >> .subtitle`).textContent()).includes("We will get back to you"), "a snoozed conversation: the widget says the team will get back (line and subtitle)");
  await visitor.screenshot({ path: shot("snoozed") });
  await visitorContext.close();

  // ---- 3. WebSocket blocked: SSE ----
  {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    await context.routeWebSocket(/\/ws$/, (ws) => ws.close());
    const { page } = await newShop(shop, "", { name: "sse-visitor", context });
    await openPanel(page);
    await page.waitForFunction(() => window.kf.debug().online && window.kf.debug().transport === "sse", null, { timeout: 30000 });
    check(true, "with WebSockets blocked the widget goes on over SSE by itself");
    const texts = ["sse 1", "sse 2", "sse 3"];
    for (const text of texts) await widgetSend(page, text);
    await page.waitForFunction(() => window.kf.debug().conversation, null, { timeout: 15000 });
    const sseConversation = (await debug(page)).conversation;
    await agentOpen(agent, sseConversation);
    await agent.waitForSelector("#messages .message.theirs >> text=sse 3", { timeout: 15000 });
    seen = (await agentSees(agent)).filter((t) => t.startsWith("sse "));
    check(same(seen, texts), `alice gets the SSE visitor's messages once, in order (${seen.join(", ")})`);
    await agentSend(agent, "reply over SSE");
    await page.waitForSelector(`${W} >> .message.theirs >> text=reply over SSE`);
    bubbles = await shown(page);
    check(texts.every((t) => countOf(bubbles, t) === 1) && countOf(bubbles, "reply over SSE") === 1, "and the widget shows everything once");
    await context.close();
  }

  // WebSockets that break in the middle of a conversation: the widget moves to SSE and loses nothing.
  {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    // WebSockets pass until `breakWs` (routed from the start: the client package keeps the WebSocket class it
    // started with, so a route added to a running page would not reach it).
    let breakWs = false;
    await context.routeWebSocket(/\/ws$/, (ws) => (breakWs ? ws.close() : ws.connectToServer()));
    const { page } = await newShop(shop, "", { name: "ws-then-sse", context });
    await openPanel(page);
    await waitOnline(page);
    await widgetSend(page, "ws first");
    await page.waitForFunction(() => window.kf.debug().texts.includes("ws first"), null, { timeout: 15000 });
    const midConversation = (await debug(page)).conversation;
    check((await debug(page)).transport === "ws", "a visitor chats over WebSocket");
    breakWs = true;
    await context.setOffline(true); // drops the current WebSocket
    await widgetSend(page, "during the switch 1");
    await widgetSend(page, "during the switch 2");
    await context.setOffline(false);
    await page.waitForFunction(() => window.kf.debug().online && window.kf.debug().transport === "sse", null, { timeout: 45000 });
    await widgetSend(page, "over sse now");
    await agentOpen(agent, midConversation);
    await agent.waitForSelector("#messages .message.theirs >> text=over sse now", { timeout: 15000 });
    seen = await agentSees(agent);
    check(same(seen, ["ws first", "during the switch 1", "during the switch 2", "over sse now"]), `when WebSockets break mid-conversation the widget moves to SSE, and alice gets everything once, in order (${seen.join(", ")})`);
    await context.close();
  }

  // ---- 4. hostile host CSS ----
  {
    const clipOf = (page) =>
      page.evaluate(() => {
        const root = document.querySelector("kf-chat-widget").shadowRoot;
        const a = root.querySelector(".panel").getBoundingClientRect();
        const b = root.querySelector(".launcher").getBoundingClientRect();
        const x = Math.floor(Math.min(a.left, b.left));
        const y = Math.floor(Math.min(a.top, b.top));
        return { x, y, width: Math.ceil(Math.max(a.right, b.right)) - x, height: Math.ceil(Math.max(a.bottom, b.bottom)) - y };
      });
    const pictures = [];
    for (const hostile of [false, true]) {
      const { context, page } = await newShop(shop, hostile ? "hostile=1" : "", { name: hostile ? "hostile" : "plain" });
      await waitOnline(page);
      await openPanel(page);
      await page.waitForSelector(`${W} >> .messages > *`);
      await page.evaluate(() => document.activeElement && document.activeElement.blur());
      await page.mouse.move(5, 5); // not hovering the launcher
      await sleep(300);
      const clip = await clipOf(page);
      pictures.push({ clip, png: await page.screenshot({ clip, animations: "disabled", caret: "hide", path: shot(hostile ? "compare-hostile" : "compare-plain") }) });
      if (hostile) {
        await page.screenshot({ path: shot("hostile-css") });
        const after = await page.evaluate(() => window.__hostSnapshot());
        const before = await page.evaluate(() => window.__before);
        check(same(after, before), "the widget changed nothing on the host page (DOM outside its element, styles, style sheets, title)");
        if (!same(after, before)) for (const key of Object.keys(before)) if (!same(after[key], before[key])) log(`  ${key}: ${JSON.stringify(before[key])} -> ${JSON.stringify(after[key])}`);
        const globals = await page.evaluate(() => Object.getOwnPropertyNames(window).filter((n) => !window.__globalsBefore.includes(n) && n !== "__globalsBefore"));
        check(same(globals, ["kf"]), `the only global the widget adds is kf (${globals.join(", ")})`);
      }
      await context.close();
    }
    const difference = pixelDifference(pictures[0].png, pictures[1].png);
    check(same(pictures[0].clip, pictures[1].clip) && difference < 0.001, `hostile host CSS leaves the widget as it was (${(difference * 100).toFixed(3)}% of pixels differ, boxes ${JSON.stringify(pictures[0].clip)} vs ${JSON.stringify(pictures[1].clip)})`);
  }

  // ---- 5. identity ----
  {
    const user = "user-4242";
    const { context, page } = await newShop(shop, `user=${user}&hash=${hmac(user)}`, { name: "identified" });
    await openPanel(page);
    await waitOnline(page);
    await widgetSend(page, "I am user 4242");
    await page.waitForFunction(() => window.kf.debug().texts.includes("I am user 4242"), null, { timeout: 15000 });
    const state = await debug(page);
    check(state.identified && !!state.conversation, `an identified user (data-user-id + data-user-hash) chats (${state.visitorId})`);
    await context.close();

    // A second browser (fresh storage): the page calls kf.identify() itself.
    const other = await newShop(shop, "", { name: "identified-2" });
    await other.page.evaluate(({ user, hash }) => window.kf.identify({ user_id: user, user_hash: hash }), { user, hash: hmac(user) });
    await openPanel(other.page);
    await other.page.waitForSelector(`${W} >> .message.mine >> text=I am user 4242`, { timeout: 15000 });
    const again = await debug(other.page);
    check(again.conversation === state.conversation && again.visitorId === state.visitorId, "in a second browser, kf.identify() brings back the same user's earlier conversation");
    await other.context.close();

    // A third browser: kf("identify", …) queued by the page before the widget loaded.
    const third = await newShop(shop, `stub=1&qid=${user}&hash=${hmac(user)}`, { name: "identified-3" });
    await third.page.waitForSelector(`${W} >> .message.mine >> text=I am user 4242`, { timeout: 15000 });
    const thirdState = await debug(third.page);
    check(thirdState.identified && thirdState.visitorId === state.visitorId, "kf(\"identify\") queued before the widget loaded is applied before it connects");
    await third.context.close();

    const forged = await newShop(shop, `user=${user}&hash=${hmac(user, "not-the-secret")}`, { name: "forged" });
    await openPanel(forged.page);
    await forged.page.waitForSelector(`${W} >> .error-box:not([hidden])`, { timeout: 15000 });
    const text = await forged.page.textContent(`${W} >> .error-box`);
    const forgedState = await debug(forged.page);
    check(/could not verify/.test(text) && !forgedState.conversation && forgedState.texts.length === 0, `a forged user_hash is refused with a clear error ("${text.trim()}")`);
    await forged.page.screenshot({ path: shot("forged-identity") });
    await forged.context.close();
  }

  // ---- 6. the other screenshots ----
  {
    const phone = await newShop(shop, "", { name: "phone", viewport: { width: 390, height: 844 } });
    await waitOnline(phone.page);
    await openPanel(phone.page);
    await phone.page.waitForSelector(`${W} >> .messages > *`);
    const box = await phone.page.evaluate(() => {
      const r = document.querySelector("kf-chat-widget").shadowRoot.querySelector(".panel").getBoundingClientRect();
      return [r.left, r.top, r.width, r.height];
    });
    check(same(box, [0, 0, 390, 844]), `on a phone the panel fills the screen (${box.join(", ")})`);
    await phone.page.screenshot({ path: shot("panel-phone") });
    // A stored token the server refuses (invalid_token at hello): a new one for the same visitor (its key).
    const phoneBefore = await debug(phone.page);
    await phone.page.addInitScript(() => {
      for (const key of Object.keys(localStorage).filter((k) => k.startsWith("kf:"))) {
        const saved = JSON.parse(localStorage.getItem(key));
        if (!saved || !saved.token) continue;
        saved.token = `${saved.token.slice(0, -4)}AAAA`;
        localStorage.setItem(key, JSON.stringify(saved));
      }
    });
    await phone.page.reload();
    await waitOnline(phone.page);
    const phoneAfter = await debug(phone.page);
    check(phoneAfter.visitorId === phoneBefore.visitorId && !phoneAfter.fatal, `a refused token is replaced by a fresh one for the same visitor (${phoneAfter.visitorId})`);
    await phone.context.close();

    const prechat = await newShop(shop, "entry=web-prechat", { name: "prechat" });
    await waitOnline(prechat.page);
    await openPanel(prechat.page);
    await prechat.page.waitForSelector(`${W} >> .form:not([hidden]) [data-field="name"]`);
    await prechat.page.screenshot({ path: shot("prechat") });
    await prechat.page.click(`${W} >> .form button[type=submit]`);
    const errors = await prechat.page.locator(`${W} >> .field .error:not([hidden])`).count();
    check(errors >= 2, `the pre-chat form refuses missing required fields (${errors} errors shown)`);
    await prechat.page.screenshot({ path: shot("prechat-errors") });
    await prechat.page.fill(`${W} >> [data-field="name"] input`, "Ada Lovelace");
    await prechat.page.fill(`${W} >> [data-field="email"] input`, "ada@example.com");
    await prechat.page.click(`${W} >> .form button[type=submit]`);
    await prechat.page.waitForFunction(() => window.kf.debug().fields, null, { timeout: 15000 });
    const fields = (await debug(prechat.page)).fields;
    check(same(fields, { email: "ada@example.com", name: "Ada Lovelace" }), `the filled pre-chat form opens a conversation whose created event has the answers (${JSON.stringify(fields)})`);
    // A stored visitor whose key the server refuses (invalid_visitor_key) is forgotten: a new visitor.
    const before = await debug(prechat.page);
    await prechat.page.addInitScript(() => {
      // Before the page's scripts: the widget of the page being left may still save its state until it unloads.
      for (const key of Object.keys(localStorage).filter((k) => k.startsWith("kf:"))) {
        const saved = JSON.parse(localStorage.getItem(key));
        if (!saved || !saved.visitorId) continue;
        saved.visitorKey = "forged-key";
        saved.token = null;
        localStorage.setItem(key, JSON.stringify(saved));
      }
    });
    await prechat.page.reload();
    await waitOnline(prechat.page);
    const after = await debug(prechat.page);
    check(after.visitorId && after.visitorId !== before.visitorId && !after.fatal && !after.conversation, `a refused visitor key starts a new visitor (${before.visitorId} -> ${after.visitorId})`);
    await prechat.context.close();

    const chinese = await newShop(shop, "lang=zh-CN&stub=1", { name: "zh" });
    await waitOnline(chinese.page);
    await chinese.page.waitForSelector(`${W} >> .panel`, { state: "visible" });
    check(await chinese.page.evaluate(() => window.__kfReady === true), "calls queued before the widget loaded (kf(\"on\", \"ready\"), kf(\"open\")) are replayed");
    await chinese.page.waitForSelector(`${W} >> textarea[placeholder="请输入消息…"]`);
    check(true, "data-lang=zh-CN gives the Chinese UI");
    await chinese.page.screenshot({ path: shot("zh-CN") });
    await chinese.context.close();

    // Nobody available: the conversation waits in the queue and the widget shows its place (position frames).
    await agent.selectOption("#agent-status", "away");
    await agent.waitForSelector('#my-status[data-status="away"]');
    const queued = await newShop(shop, "", { name: "queued" });
    await waitOnline(queued.page);
    await openPanel(queued.page);
    await widgetSend(queued.page, "Anyone there?");
    await queued.page.waitForSelector(`${W} >> #kf-queue >> text=/You are number \\d+ in the queue/`, { timeout: 15000 });
    const place = await queued.page.textContent(`${W} >> #kf-queue`);
    check(/number \d+ in the queue/.test(place), `a queued visitor sees its place in the queue ("${place}")`);
    await queued.page.screenshot({ path: shot("queued") });
    await queued.context.close();
    await agent.selectOption("#agent-status", "online");
    await agent.waitForSelector('#my-status[data-status="online"]');

    const branded = await newShop(shop, "color=%230f766e&position=left", { name: "branded" });
    await waitOnline(branded.page);
    await openPanel(branded.page);
    const look = await branded.page.evaluate(() => {
      const root = document.querySelector("kf-chat-widget").shadowRoot;
      const launcher = root.querySelector(".launcher");
      return { background: getComputedStyle(launcher).backgroundColor, left: launcher.getBoundingClientRect().left, header: getComputedStyle(root.querySelector(".header")).backgroundColor };
    });
    check(look.background === "rgb(15, 118, 110)" && look.header === look.background && look.left < 50, `data-color and data-position=left restyle and move it (${JSON.stringify(look)})`);
    await branded.page.screenshot({ path: shot("branded-left") });
    await branded.context.close();

    const offline = await newShop(shop, "entry=after-hours", { name: "offline" });
    await waitOnline(offline.page);
    await openPanel(offline.page);
    await offline.page.waitForSelector(`${W} >> .form:not([hidden]) [data-field="__message"]`);
    await offline.page.screenshot({ path: shot("offline") });
    await offline.page.fill(`${W} >> [data-field="__message"] textarea`, "Do you have size 46?");
    await offline.page.fill(`${W} >> [data-field="__email"] input`, "bob@example.com");
    await offline.page.click(`${W} >> .form button[type=submit]`);
    await offline.page.waitForFunction(() => window.kf.debug().status === "offline" && window.kf.debug().texts.length > 0, null, { timeout: 15000 });
    const offlineState = await debug(offline.page);
    check(offlineState.texts[0].includes("Do you have size 46?") && offlineState.texts[0].includes("bob@example.com"), "the offline form leaves the message and the email in an offline conversation");
    await offline.page.screenshot({ path: shot("offline-sent") });
    await offline.context.close();
  }

  // Expected console noise: the refused origin (CORS / 403), the blocked connections of the airplane checks, and the
  // refused upload of the file check (415).
  const expected = (e) =>
    e.startsWith("evil:") ||
    e.startsWith("forged:") ||
    /ERR_INTERNET_DISCONNECTED|ERR_FAILED|ERR_CONNECTION|WebSocket|kf widget|kf: |status of 401|status of 403|status of 415/.test(e);
  const relevant = consoleErrors.filter((e) => !expected(e));
  check(relevant.length === 0, `no unexpected console errors (${consoleErrors.length} in all)`);
  for (const e of relevant) log("  console:", e);
} catch (error) {
  tally.failures++;
  log("FAIL", error.stack || error);
  await dumpWidgets();
} finally {
  await browser.close();
  await stopServer();
  shop.server.close();
  evil.server.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
console.log(`widget: ${tally.passes} passed, ${tally.failures} failed`);
process.exit(tally.failures === 0 ? 0 : 1);
