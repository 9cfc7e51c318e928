// The agent side of the kf demo: log in, receive conversations, reply, close.
//
// The token is kept in localStorage; conversations, their transcripts and cursors live in memory for the life
// of the page (a reload replays them from the server), and survive reconnects through the client's resume.
import {
  KfClient,
  TypingSignal,
  el,
  renderer,
  showStatus as showClientStatus,
  timeOf,
  titleCase,
  toast,
  wireComposer,
} from "./kf-client.js";

const STORE_KEY = "kf.demo.agent";
const $ = (id) => document.getElementById(id);

let session = load(); // {agent, name, token, expiresAt}
let client = null;
let conversations = new Map(); // id -> {record, events: [], unread, typingUntil}
let selected = null;
let online = false;

function load() {
  try {
    const value = JSON.parse(localStorage.getItem(STORE_KEY));
    return value && value.token && value.expiresAt > Date.now() + 60_000 ? value : null;
  } catch {
    return null;
  }
}

function showLogin(message) {
  $("console").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
  $("login-agent").focus();
}

async function login(event) {
  event.preventDefault();
  const button = $("login-button");
  button.disabled = true;
  try {
    const response = await fetch("/api/agent-login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ agent: $("login-agent").value.trim(), password: $("login-password").value }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      showLogin(response.status === 401 ? "Wrong agent name or password." : body.message || `HTTP ${response.status}`);
      return;
    }
    session = { agent: body.agent, name: body.name, token: body.token, expiresAt: Date.now() + body.expires_in * 1000 };
    localStorage.setItem(STORE_KEY, JSON.stringify(session));
    $("login-password").value = "";
    startConsole();
  } catch (error) {
    showLogin(`Cannot reach the server: ${error.message || error}`);
  } finally {
    button.disabled = false;
  }
}

function logout() {
  if (client) client.stop();
  client = null;
  session = null;
  localStorage.removeItem(STORE_KEY);
  conversations = new Map();
  selected = null;
  showLogin();
}

const isMine = (author) => author && author.role === "agent" && session && author.id === session.agent;

function startConsole() {
  $("login").hidden = true;
  $("console").hidden = false;
  $("agent-name").textContent = session.name || titleCase(session.agent);
  conversations = new Map();
  selected = null;
  client = new KfClient({
    getToken: async () => {
      if (!session) throw new Error("logged out");
      return session.token;
    },
    isMine,
    onAuthError: async (code) => {
      const message = code === "token_expired" ? "Your session expired; please log in again." : "Please log in again.";
      if (client) client.stop();
      client = null;
      session = null;
      localStorage.removeItem(STORE_KEY);
      showLogin(message);
      return false;
    },
    onStatus: (status, detail) => {
      online = status === "online";
      showStatus(status, detail);
      render();
    },
    onFrame: handleFrame,
    onEvent: (event) => {
      const entry = conversations.get(event.conversation);
      if (!entry) return;
      entry.events.push(event);
      applyToRecord(entry, event);
      if (event.data.type === "message" && !isMine(event.author)) {
        entry.typingUntil = 0;
        if (selected !== event.conversation) entry.unread += 1;
      }
      render();
    },
    onReset: (conversation) => {
      const entry = conversations.get(conversation);
      if (entry) entry.events = [];
    },
    onAck: () => render(),
    onSendFailed: (clientId, code, message) => toast(`Not sent: ${message || code}`),
  });
  client.start();
  render();
}

function track(record) {
  let entry = conversations.get(record.id);
  if (!entry) {
    entry = { record, events: [], unread: 0, typingUntil: 0 };
    conversations.set(record.id, entry);
  } else if (record.last_seq >= entry.record.last_seq) {
    // `inbox` and `conversation` frames may arrive in either order: keep the newer record.
    entry.record = { ...entry.record, ...record };
  }
  client.subscribe(record.id);
  if (!selected) select(record.id);
  return entry;
}

function handleFrame(frame) {
  switch (frame.type) {
    case "inbox":
      for (const record of frame.conversations) track(record);
      break;
    case "conversation": {
      const isNew = !conversations.has(frame.conversation.id);
      track(frame.conversation);
      if (isNew) {
        toast(`New conversation from ${visitorName(frame.conversation.visitor)}`);
        flashTitle();
      }
      break;
    }
    case "typing": {
      const entry = conversations.get(frame.conversation);
      if (entry && !isMine(frame.from)) {
        entry.typingUntil = frame.active ? Date.now() + 6000 : 0;
        if (frame.active) setTimeout(render, 6100);
      }
      break;
    }
    case "error":
      if (frame.code !== "invalid_token" && frame.code !== "token_expired") toast(frame.message || frame.code);
      break;
    default:
      break;
  }
  render();
}

function applyToRecord(entry, event) {
  const kind = event.data.type;
  const record = { ...entry.record };
  if (kind === "assigned") {
    record.status = "assigned";
    record.agent = event.data.agent;
    record.last_agent = event.data.agent;
  } else if (kind === "closed") {
    record.status = "closed";
    delete record.agent;
  } else if (kind === "reopened") {
    record.status = "queued";
    delete record.agent;
  }
  record.last_seq = Math.max(record.last_seq || 0, event.seq);
  record.updated_at = Math.max(record.updated_at || 0, event.at);
  entry.record = record;
}

function select(id) {
  selected = id;
  const entry = conversations.get(id);
  if (entry) entry.unread = 0;
  render();
  $("input").focus();
}

function visitorName(visitor) {
  return `Visitor ${visitor.length > 12 ? visitor.slice(0, 12) + "…" : visitor}`;
}

// ---- rendering ----

function showStatus(status, detail) {
  showClientStatus(status, detail, "signed out");
}

function lastMessage(entry) {
  for (let i = entry.events.length - 1; i >= 0; i--) {
    const event = entry.events[i];
    if (event.data.type === "message") return `${isMine(event.author) ? "You: " : ""}${event.data.body.text}`;
  }
  return "";
}

function systemText(event) {
  const who = event.author.role === "agent" ? (isMine(event.author) ? "You" : titleCase(event.author.id)) : event.author.role === "visitor" ? "The visitor" : null;
  switch (event.data.type) {
    case "created":
      return `Conversation started (${event.data.group})`;
    case "assigned":
      return event.data.agent === session.agent ? "Assigned to you" : `Assigned to ${titleCase(event.data.agent)}`;
    case "closed":
      return who ? `${who} closed the conversation` : "The conversation was closed";
    case "reopened":
      return "The conversation was reopened";
    default:
      return event.data.type;
  }
}

const render = renderer(() => {
  if (client) draw();
});

function draw() {
  const entries = [...conversations.entries()].sort(([, a], [, b]) => {
    const openA = a.record.status !== "closed";
    const openB = b.record.status !== "closed";
    if (openA !== openB) return openA ? -1 : 1;
    return (b.record.updated_at || 0) - (a.record.updated_at || 0);
  });
  $("conversation-list").replaceChildren(
    ...entries.map(([id, entry]) =>
      el(
        "li",
        { class: `conversation-item${id === selected ? " selected" : ""}${entry.record.status === "closed" ? " closed" : ""}`, onclick: () => select(id), "data-conversation": id },
        el(
          "div",
          { class: "item-top" },
          el("span", { class: "item-name" }, visitorName(entry.record.visitor)),
          entry.unread ? el("span", { class: "unread" }, String(entry.unread)) : null,
        ),
        el(
          "div",
          { class: "item-bottom" },
          el("span", { class: `badge ${entry.record.status}` }, entry.record.status),
          el("span", { class: "preview" }, entry.typingUntil > Date.now() ? "typing…" : lastMessage(entry)),
        ),
      ),
    ),
  );
  $("empty-list").hidden = conversations.size > 0;

  const entry = selected ? conversations.get(selected) : null;
  $("placeholder").hidden = !!entry;
  $("view").hidden = !entry;
  if (!entry) return;
  const record = entry.record;
  $("view-title").textContent = visitorName(record.visitor);
  const mineNow = record.status === "assigned" && record.agent === session.agent;
  $("view-subtitle").textContent = `${record.status === "closed" ? "closed" : mineNow ? "assigned to you" : record.status} · started ${timeOf(record.created_at)}`;
  $("close-conversation").hidden = !mineNow;
  $("input").disabled = !mineNow;
  $("send").disabled = !mineNow;
  $("input").placeholder = mineNow ? "Reply…" : "This conversation is closed";

  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const nodes = [];
  for (const event of entry.events) {
    if (event.data.type === "message") {
      const mine = isMine(event.author);
      nodes.push(
        el(
          "div",
          { class: `message ${mine ? "mine" : "theirs"}` },
          el("div", { class: "author" }, mine ? "You" : event.author.role === "visitor" ? "Visitor" : titleCase(event.author.id)),
          el("div", { class: "bubble" }, event.data.body.text),
          el("div", { class: "meta" }, mine ? `${timeOf(event.at)} · sent ✓` : timeOf(event.at)),
        ),
      );
    } else {
      nodes.push(el("div", { class: "system" }, systemText(event)));
    }
  }
  for (const p of client.pendingFor(selected)) {
    nodes.push(
      el(
        "div",
        { class: "message mine" },
        el("div", { class: "author" }, "You"),
        el("div", { class: "bubble" }, p.body.text),
        el("div", { class: "meta" }, online ? "sending…" : "waiting for connection…"),
      ),
    );
  }
  const switched = list.dataset.conversation !== selected;
  list.dataset.conversation = selected;
  list.replaceChildren(...nodes);

  const typing = entry.typingUntil > Date.now();
  $("typing").hidden = !typing;
  if (typing) $("typing").textContent = "The visitor is typing…";
  if (nearBottom || switched) list.scrollTop = list.scrollHeight;
}

let titleTimer = null;
function flashTitle() {
  if (document.hasFocus()) return;
  const original = "kf · Agent console";
  let on = false;
  clearInterval(titleTimer);
  titleTimer = setInterval(() => {
    on = !on;
    document.title = on ? "● New chat" : original;
  }, 1000);
  window.addEventListener(
    "focus",
    () => {
      clearInterval(titleTimer);
      document.title = original;
    },
    { once: true },
  );
}

// ---- input ----

const typingSignal = new TypingSignal((active) => {
  if (client && selected) client.typing(selected, active);
});

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
wireComposer({
  maxHeight: 160,
  typingSignal,
  send: (text) => {
    if (!client || !selected || !conversations.get(selected)) return false;
    client.sendMessage(selected, text);
    render();
    return true;
  },
});
$("close-conversation").addEventListener("click", () => {
  if (client && selected && !client.request({ type: "close", id: "close", conversation: selected })) {
    toast("Not connected right now; try again in a moment.");
  }
});

window.kfAgent = { get client() { return client; }, conversations: () => conversations }; // for debugging and the browser check

if (session) startConsole();
else showLogin();
