// Browser check of the kf demo pages (visitor + agent) in headless Debian Chromium, run by scripts/test.sh.
//
//   npm ci && node check.mjs path/to/kf-demo [screenshot-dir]
//
// Starts the demo binary on a free port with a temp data dir, opens the agent page (logs in as alice) and the
// visitor page in two browser contexts, checks messages flow both ways with acks and typing, restarts the server
// while a visitor message is unsent (the pages must reconnect, resume and resend it exactly once), reloads the
// visitor page (transcript from cache + resume, no duplicates), closes the conversation from the agent side,
// and saves screenshots (kf-*.png) to the screenshot directory (default: the system's temp directory). Exits
// non-zero if any check failed.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const BINARY = process.argv[2];
if (!BINARY) {
  console.error("usage: node check.mjs path/to/kf-demo [screenshot-dir]");
  process.exit(2);
}
const SHOTS = process.argv[3] || os.tmpdir();
const shot = (name) => path.join(SHOTS, `kf-${name}.png`);
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const log = (...args) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
let failures = 0;
let passes = 0;
function check(condition, what) {
  if (condition) {
    passes++;
    log("ok  ", what);
  } else {
    failures++;
    log("FAIL", what);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

const port = await freePort();
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kf-demo-check-"));
const base = `http://127.0.0.1:${port}`;
let server = null;

async function startServer() {
  server = spawn(BINARY, ["--addr", `127.0.0.1:${port}`, "--data", dataDir], { stdio: ["ignore", "pipe", "pipe"] });
  server.stdout.on("data", (d) => process.stdout.write(`  [server] ${d}`));
  server.stderr.on("data", (d) => process.stdout.write(`  [server] ${d}`));
  for (let i = 0; i < 100; i++) {
    try {
      const response = await fetch(`${base}/healthz`);
      if (response.ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the demo did not start");
}

async function stopServer() {
  if (!server) return;
  const exited = new Promise((resolve) => server.once("exit", resolve));
  server.kill("SIGTERM");
  await exited;
  server = null;
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
const consoleErrors = [];
function watch(page, name) {
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") consoleErrors.push(`${name}: ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${name}: pageerror: ${e.message}`));
}

try {
  await startServer();
  log("demo on", base, "data", dataDir);

  const agentContext = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const visitorContext = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const agent = await agentContext.newPage();
  const visitor = await visitorContext.newPage();
  watch(agent, "agent");
  watch(visitor, "visitor");

  // The visitor arrives before any agent is online: the conversation waits in the queue.
  await visitor.goto(`${base}/`);
  await visitor.waitForSelector('#status[data-state="online"]');
  await visitor.waitForSelector("#banner:not([hidden]) >> text=Waiting for an agent");
  check(true, "visitor online, conversation queued (no agent online yet)");
  await visitor.click("#input");
  await visitor.keyboard.type("Hello! Where is my order #1234?", { delay: 15 });
  await visitor.keyboard.press("Enter");
  await visitor.waitForSelector(".message.mine >> text=Hello! Where is my order #1234?");
  await visitor.waitForSelector(".message.mine .meta >> text=sent ✓");
  check(true, "visitor message written while queued shows sent ✓");
  await visitor.screenshot({ path: shot("visitor-queued") });

  // Agent logs in (a wrong password first); the queued conversation is assigned to her.
  await agent.goto(`${base}/agent`);
  await agent.fill("#login-agent", "alice");
  await agent.fill("#login-password", "wrong");
  await agent.click("#login-button");
  await agent.waitForSelector("#login-error:not([hidden])");
  check((await agent.textContent("#login-error")).includes("Wrong"), "wrong password is refused on the login form");
  await agent.screenshot({ path: shot("agent-login") });
  await agent.fill("#login-password", "alice-demo");
  await agent.click("#login-button");
  await agent.waitForSelector('#console:not([hidden]) #status[data-state="online"]');
  check(true, "agent logged in and online");
  await agent.waitForSelector(".conversation-item");
  check((await agent.locator(".conversation-item").count()) === 1, "agent sees the conversation in the list");
  await visitor.waitForSelector(".system >> text=Alice joined the conversation");
  check(true, "visitor sees Alice join");
  await agent.click(".conversation-item");
  await agent.waitForSelector(".message.theirs >> text=Hello! Where is my order #1234?");
  check(true, "agent received the message the visitor wrote while queued");

  // Visitor → agent live, with the typing indicator on the agent side.
  await visitor.click("#input");
  await visitor.keyboard.type("It was ordered on Monday.", { delay: 15 });
  await agent.waitForSelector("#typing:not([hidden])", { timeout: 5000 });
  check((await agent.textContent("#typing")).includes("typing"), "agent sees the visitor typing");
  await visitor.keyboard.press("Enter");
  await visitor.waitForSelector(".message.mine:has-text('It was ordered on Monday.') .meta >> text=sent ✓");
  await agent.waitForSelector(".message.theirs >> text=It was ordered on Monday.");
  check(true, "agent received the visitor's live message");

  // Agent → visitor, with the visitor seeing the agent type first.
  await agent.click("#input");
  const typedAt = Date.now();
  await agent.keyboard.type("Hi, this is Alice. Your order ships today.", { delay: 15 });
  await visitor.waitForSelector("#typing:not([hidden])", { timeout: 5000 });
  log(`  (typing indicator visible ${Date.now() - typedAt} ms after the agent's first keystroke; typing.until=${await visitor.evaluate(() => JSON.stringify(window.kfVisitor.state.typing))})`);
  check((await visitor.textContent("#typing")).includes("Alice is typing"), "visitor sees 'Alice is typing…'");
  await agent.keyboard.press("Enter");
  await visitor.waitForSelector(".message.theirs >> text=Hi, this is Alice. Your order ships today.");
  check(true, "visitor received the agent's reply");
  await agent.waitForSelector(".message.mine .meta >> text=sent ✓");
  await visitor.screenshot({ path: shot("visitor") });
  await agent.screenshot({ path: shot("agent") });

  // Server restart while the visitor writes: the message waits, then goes out once after resume.
  await stopServer();
  await visitor.waitForSelector('#status[data-state="offline"]');
  await agent.waitForSelector('#status[data-state="offline"]');
  check(true, "both pages notice the server is gone");
  await visitor.fill("#input", "Sent while the server was down");
  await visitor.keyboard.press("Enter");
  await visitor.waitForSelector(".message.mine .meta >> text=waiting for connection…");
  check(true, "offline message is kept as pending");
  await visitor.screenshot({ path: shot("visitor-offline") });
  await startServer();
  await visitor.waitForSelector('#status[data-state="online"]', { timeout: 30000 });
  await agent.waitForSelector('#status[data-state="online"]', { timeout: 30000 });
  check(true, "both pages reconnected after the restart");
  await agent.waitForSelector(".message.theirs >> text=Sent while the server was down", { timeout: 10000 });
  await visitor.waitForFunction(() => !document.body.innerText.includes("waiting for connection"));
  await agent.waitForTimeout(500);
  check((await agent.locator(".message >> text=Sent while the server was down").count()) === 1, "the resent message arrived exactly once at the agent");
  check((await visitor.locator(".message >> text=Sent while the server was down").count()) === 1, "and shows once at the visitor");
  check((await agent.locator(".message >> text=Hello! Where is my order #1234?").count()) === 1, "no duplicated history at the agent after resume");

  // A send whose ack is lost: the page drops its connection right after sending; after the reconnect it resends
  // the same client id, and the server answers with the original seq (duplicate) instead of storing it twice.
  const acks = [];
  const sendsOut = [];
  visitor.on("websocket", (ws) => {
    ws.on("framereceived", (f) => {
      try {
        const frame = JSON.parse(f.payload);
        if (frame.type === "ack") acks.push(frame);
      } catch {}
    });
    ws.on("framesent", (f) => {
      try {
        const frame = JSON.parse(f.payload);
        if (frame.type === "send") sendsOut.push(frame);
      } catch {}
    });
  });
  const lostClientId = await visitor.evaluate(() => {
    const { client, state } = window.kfVisitor;
    const id = client.sendMessage(state.conversation, "Resent after a lost ack");
    client.dropConnection();
    return id;
  });
  await agent.waitForSelector(".message.theirs >> text=Resent after a lost ack", { timeout: 15000 });
  await visitor.waitForSelector(".message.mine:has-text('Resent after a lost ack') .meta >> text=sent ✓", { timeout: 15000 });
  await agent.waitForTimeout(500);
  const sentTimes = sendsOut.filter((f) => f.client_id === lostClientId).length;
  const ackInfo = acks.filter((a) => a.client_id === lostClientId).map((a) => `seq ${a.seq} duplicate=${a.duplicate}`);
  // (The listener sees only the new connection: the first send went out on the dropped one.)
  log(`  (after the reconnect the message went out ${sentTimes} time(s) with client id ${lostClientId}; acks: ${ackInfo.join(", ") || "none"})`);
  check(sentTimes >= 1, "the unacknowledged message was resent with the same client id after the reconnect");
  log(`  (duplicate=true means the first send had been stored and the resend was recognised; false means the first never arrived)`);
  check((await agent.locator(".message >> text=Resent after a lost ack").count()) === 1, "and stored once (agent shows it once)");
  check((await visitor.locator(".message >> text=Resent after a lost ack").count()) === 1, "and the visitor shows it once");

  // Reload the visitor page: transcript comes from localStorage, the resume adds nothing twice.
  // (with a damaged token in localStorage: the page must get a fresh one for the same visitor id)
  const visitorIdBefore = await visitor.evaluate(() => {
    const saved = JSON.parse(localStorage.getItem("kf.demo.visitor"));
    saved.token = saved.token.slice(0, -4) + "AAAA";
    localStorage.setItem("kf.demo.visitor", JSON.stringify(saved));
    window.kfVisitor.client.stop(); // so the page's own unload does not save over it
    return saved.visitorId;
  });
  await visitor.reload();
  await visitor.waitForSelector('#status[data-state="online"]');
  const visitorIdAfter = await visitor.evaluate(() => window.kfVisitor.state.visitorId);
  check(visitorIdAfter === visitorIdBefore, "a refused token is replaced by a fresh one for the same visitor id");
  await agent.fill("#input", "Anything else I can help with?");
  await agent.keyboard.press("Enter");
  await visitor.waitForSelector(".message.theirs >> text=Anything else I can help with?");
  const visitorMessages = await visitor.locator(".message").allTextContents();
  check(visitorMessages.length === 6, `visitor has exactly 6 messages after reload (got ${visitorMessages.length})`);
  check((await visitor.locator(".system >> text=Alice joined the conversation").count()) === 1, "system events not duplicated after reload");

  // Agent closes; the visitor sees the closed banner.
  await agent.click("#close-conversation");
  await visitor.waitForSelector("#banner:not([hidden]) >> text=This conversation is closed.");
  check(true, "visitor sees the conversation closed");
  await agent.waitForSelector(".badge.closed");
  check(true, "agent list marks it closed");
  await visitor.screenshot({ path: shot("visitor-closed") });
  await agent.screenshot({ path: shot("agent-closed") });

  // A new conversation from the closed banner is routed to alice again.
  await visitor.click("#banner button");
  await visitor.waitForSelector(".system >> text=Alice joined the conversation");
  await agent.waitForFunction(() => document.querySelectorAll(".conversation-item").length === 2);
  check(true, "a new conversation starts and reaches the agent");

  // Expected: the refused login (401) and connection refusals while the server restarts.
  const expected = (e) => e.includes("ERR_CONNECTION_REFUSED") || e.includes("status of 401");
  // An agent whose stored token is refused lands on the login form.
  const agent2 = await agentContext.newPage();
  watch(agent2, "agent2");
  await agent2.goto(`${base}/agent`);
  await agent2.evaluate(() => {
    localStorage.setItem("kf.demo.agent", JSON.stringify({ agent: "bob", name: "Bob", token: "kf1.forged.token", expiresAt: Date.now() + 3600000 }));
  });
  await agent2.reload();
  await agent2.waitForSelector("#login:not([hidden]) #login-error:not([hidden])");
  check((await agent2.textContent("#login-error")).includes("log in again"), "an agent with a refused token is sent back to the login form");
  await agent2.close();

  const relevant = consoleErrors.filter((e) => !expected(e));
  check(relevant.length === 0, `no unexpected console errors (${consoleErrors.length} total; expected: the 401 of the wrong password, connection refusals during the restart)`);
  for (const e of consoleErrors) log("  console:", e);
} catch (error) {
  failures++;
  log("FAIL", error.stack || error);
} finally {
  await browser.close();
  await stopServer();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
console.log(`browser: ${passes} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
