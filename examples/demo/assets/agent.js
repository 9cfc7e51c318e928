// The agent side of the kf demo: log in, set a status, see the queue and claim from it, receive conversations,
// reply (with quick replies), write private notes with @mentions, transfer, close; the visitor's context beside
// the transcript, and the visitor's rating once it rated a closed conversation.
//
// The token (and the status chosen here) is kept in localStorage; conversations, their transcripts and cursors
// live in memory for the life of the page (a reload replays them from the server), and survive reconnects through
// the client's resume. The queue, quick replies and visitor contexts are asked for again on every connect.
//
// `/agent?transport=sse` runs the same console over the SSE transport: the agent's one stream follows every
// conversation assigned to it (the server adds each new one by itself) and every request goes as a POST. There the
// conversations, their transcripts and the client's cursor are also kept in localStorage, so that a reload resumes
// the stream with `?cursor=` instead of replaying everything.
import { KfClient } from "/widget/client/index.js";
import { attachmentNodes, wireAttachments } from "./attachments.js";
import { TypingSignal, el, renderer, showStatus as showClientStatus, timeOf, titleCase, toast, wireComposer } from "./ui.js";
import { configurePanel, contextView, definitions, drawAttributes, drawLabels, labelChip, addLabel, drawWorkspace } from "./panel.js";
import { applyEvent, systemText, untilText } from "./records.js";
import { alertAgent, sent as alertsSent } from "./alerts.js";
import { insertText, mentionsIn, wireQuickInsert } from "./composer.js";
import { wireControls } from "./controls.js";
import { renderTabs } from "./tabs.js";
import { renderQueue, renderQuickReplies, visitorName } from "./sidebar.js";

const STORE_KEY = "kf.demo.agent";
const STATUS_KEY = "kf.demo.agent.status";
const SSE_STATE_KEY = "kf.demo.agent.sse"; // SSE only: {agent, client, conversations}
// The client picks the transport itself unless the page forces one (`?transport=ws` or `?transport=sse`).
const TRANSPORT = { sse: "sse", ws: "ws" }[new URLSearchParams(location.search).get("transport")] || "auto";
const MAX_CACHED_EVENTS = 500; // per conversation, in the saved SSE state
// The demo's seeded agents (src/lib.rs): the transfer field suggests them; any agent id may be typed.
const KNOWN_AGENTS = ["alice", "bob"];
const $ = (id) => document.getElementById(id);

let session = load(); // {agent, name, token, expiresAt}
let client = null;
let conversations = new Map(); // id -> newEntry(): the record, its events and what this page knows about them
let selected = null;
let openTabs = []; // conversation ids open as tabs, in the order they were opened
const drafts = new Map(); // conversation id -> the unsent text of its reply box (kept when switching tabs)
let online = false;
let queue = []; // the `queue` view: [{conversation, position, estimated_wait_ms?}]
let offline = []; // offline messages waiting to be taken (Conversation records)
let quickReplies = []; // own first, then the groups', each by shortcut
let contexts = new Map(); // conversation id -> `visitor_context` reply (or {error})
let myStatus = null; // {status, label} as the server last answered
let noteMode = false; // the composer writes a private note instead of a reply
const mentionsReceived = []; // `mentioned` frames, newest last (the browser check reads them)

function load() {
  try {
    const value = JSON.parse(localStorage.getItem(STORE_KEY));
    return value && value.token && value.expiresAt > Date.now() + 60_000 ? value : null;
  } catch {
    return null;
  }
}

// SSE: what a reload needs to resume the stream from its cursor: the client's snapshot and the transcripts.
function loadSseState() {
  if (TRANSPORT !== "sse" || !session) return null;
  try {
    const value = JSON.parse(localStorage.getItem(SSE_STATE_KEY));
    return value && value.agent === session.agent ? value : null;
  } catch {
    return null;
  }
}

function saveSseState() {
  if (TRANSPORT !== "sse" || !client || !session) return;
  const saved = [...conversations].map(([id, entry]) => [id, { record: entry.record, events: entry.events.slice(-MAX_CACHED_EVENTS) }]);
  try {
    localStorage.setItem(SSE_STATE_KEY, JSON.stringify({ agent: session.agent, client: client.snapshot(), conversations: saved }));
  } catch (error) {
    console.warn("cannot save the console state", error);
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
  localStorage.removeItem(SSE_STATE_KEY);
  conversations = new Map();
  selected = null;
  showLogin();
}

// The status chosen on this page, per agent; sent again on every connect (the server starts agents `online`).
function wantedStatus() {
  try {
    const value = JSON.parse(localStorage.getItem(STATUS_KEY));
    if (value && session && value.agent === session.agent) return value;
  } catch {
    // none saved
  }
  return { status: "online", label: "" };
}

function sendStatus() {
  const status = $("agent-status").value;
  const label = status === "custom" ? $("status-label").value.trim() : "";
  $("status-label").hidden = status !== "custom";
  if (status === "custom" && !label) {
    $("status-label").focus(); // sent when the text is entered
    return;
  }
  localStorage.setItem(STATUS_KEY, JSON.stringify({ agent: session.agent, status, label }));
  requestNow(label ? { type: "status", id: "status", status, label } : { type: "status", id: "status", status });
}

// Sends a request frame; says so when there is no connection right now.
function requestNow(frame) {
  if (client && client.sendFrame(frame)) return true;
  toast("Not connected right now; try again in a moment.");
  return false;
}

configurePanel({ requestNow });

function requestContext(id) {
  if (client && client.online) client.sendFrame({ type: "visitor_context", id: `ctx:${id}`, conversation: id });
}

const isMine = (author) => author && author.role === "agent" && session && author.id === session.agent;

// `readUpTo`: the last seq this agent has seen (its seen mark, kept by the server across reloads), `visitorSeen`:
// the visitor's; `live`: its replay is over (only live messages alert); `past`: opened read-only from history.
function newEntry(record, events = []) {
  return { record, events, typingUntil: 0, readUpTo: 0, visitorSeen: 0, live: false, past: false };
}

function noteSeen(entry, from, seq) {
  if (isMine(from)) entry.readUpTo = Math.max(entry.readUpTo, seq);
  else if (from.role === "visitor") entry.visitorSeen = Math.max(entry.visitorSeen, seq);
}

// Messages of others this agent has not seen yet.
function unreadOf(entry) {
  return entry.events.filter((e) => e.data.type === "message" && !isMine(e.author) && e.seq > entry.readUpTo).length;
}

// The selected conversation is on screen: mark it seen up to its last event and tell the server (a `read` at once,
// then at most one every half second per conversation; the server keeps the mark, so the badge stays cleared after
// a reload). Only for conversations this agent owns or last owned: the server refuses `read` on others'.
const readTimers = new Map(); // conversation -> the cooldown after a `read`
const readSent = new Map(); // conversation -> the last seq sent
function markRead(id) {
  const entry = conversations.get(id);
  if (!entry || id !== selected || document.visibilityState !== "visible" || !entry.events.length) return;
  const last = entry.events[entry.events.length - 1].seq;
  if (last > entry.readUpTo) entry.readUpTo = last;
  sendRead(id);
}

function sendRead(id) {
  const entry = conversations.get(id);
  const mine = entry && (entry.record.agent === session.agent || entry.record.last_agent === session.agent);
  if (!mine || entry.leaving || !client || readTimers.has(id) || entry.readUpTo <= (readSent.get(id) || 0)) return;
  if (client.sendFrame({ type: "read", id: `read:${id}`, conversation: id, seq: entry.readUpTo })) readSent.set(id, entry.readUpTo);
  readTimers.set(id, setTimeout(() => {
    readTimers.delete(id);
    sendRead(id); // what was seen during the cooldown
  }, 500));
}

function startConsole() {
  $("login").hidden = true;
  $("console").hidden = false;
  $("agent-name").textContent = session.name || titleCase(session.agent);
  conversations = new Map();
  selected = null;
  openTabs = [];
  drafts.clear();
  queue = [];
  offline = [];
  quickReplies = [];
  contexts = new Map();
  myStatus = null;
  $("agent-ids").replaceChildren(...KNOWN_AGENTS.filter((id) => id !== session.agent).map((id) => el("option", { value: id }, titleCase(id))));
  const saved = loadSseState();
  if (saved) {
    // Events below the saved cursor are not sent again: start from the transcripts they made.
    for (const [id, entry] of saved.conversations || []) conversations.set(id, newEntry(entry.record, entry.events || []));
  } else if (TRANSPORT === "sse") {
    localStorage.removeItem(SSE_STATE_KEY); // another agent's
  }
  client = new KfClient({
    transport: TRANSPORT,
    state: saved ? saved.client : undefined,
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
      localStorage.removeItem(SSE_STATE_KEY);
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
        if (entry.live && !entry.past && event.author.role === "visitor") {
          alertAgent({ title: `${visitorName(entry.record.visitor)} wrote`, body: event.data.body.text, tag: event.conversation, onClick: () => select(event.conversation) });
        }
      }
      markRead(event.conversation);
      render();
    },
    onCaughtUp: (conversation) => {
      const entry = conversations.get(conversation);
      if (entry) entry.live = true;
    },
    // Seen marks (ours and the visitor's) come with the inbox and each subscription, so a reload keeps both.
    onSeen: (conversation, from, seq) => {
      const entry = conversations.get(conversation);
      if (!entry) return; // the inbox's marks come before its conversations: `track` reads them from the client
      noteSeen(entry, from, seq);
      render();
    },
    onReset: (conversation) => {
      const entry = conversations.get(conversation);
      if (entry) entry.events = [];
    },
    onAck: () => render(),
    onSendFailed: (clientId, code, message) => toast(`Not sent: ${message || code}`),
    onChange: saveSseState,
  });
  // (SSE) the saved conversations claim their events again, also those that have left the inbox since (closed,
  // transferred): the stream still delivers what happened to them after the cursor.
  for (const id of conversations.keys()) client.subscribe(id);
  if (!selected && conversations.size) select(conversations.keys().next().value);
  client.start();
  render();
}

function track(record) {
  let entry = conversations.get(record.id);
  if (!entry) {
    entry = newEntry(record);
    conversations.set(record.id, entry);
    for (const mark of client.seen(record.id)) noteSeen(entry, mark.from, mark.seq);
  } else if (record.last_seq >= entry.record.last_seq) {
    // `inbox` and `conversation` frames may arrive in either order: keep the newer record.
    entry.record = { ...entry.record, ...record };
  }
  client.subscribe(record.id);
  if (!selected) select(record.id);
  return entry;
}

// Request ids name what an error refuses: `claim:<conversation>`, `transfer:<conversation>`, …
const REQUESTS = { snooze: "Snooze", wake: "Wake", claim: "Claim", take: "Take", transfer: "Transfer", status: "Status change", qr: "Quick reply", queue: "Queue", label: "Label", unlabel: "Label removal", attr: "Attribute" };

function upsertQuickReply(reply) {
  quickReplies = [...quickReplies.filter((q) => q.id !== reply.id), reply].sort(
    (a, b) => (a.scope === "agent" ? 0 : 1) - (b.scope === "agent" ? 0 : 1) || a.shortcut.localeCompare(b.shortcut),
  );
}

function handleFrame(frame) {
  switch (frame.type) {
    case "welcome": {
      const wanted = wantedStatus();
      client.sendFrame(wanted.label ? { type: "status", id: "status", status: wanted.status, label: wanted.label } : { type: "status", id: "status", status: wanted.status });
      client.sendFrame({ type: "queue", id: "queue" });
      client.sendFrame({ type: "quick_replies", id: "qr:list" });
      client.sendFrame({ type: "definitions", id: "definitions" });
      if (selected) requestContext(selected);
      break;
    }
    case "status":
      myStatus = { status: frame.status, label: frame.label || "" };
      $("agent-status").value = frame.status;
      $("status-label").hidden = frame.status !== "custom";
      if (frame.label) $("status-label").value = frame.label;
      // Pushed (no id): set in another tab or device; keep it for this page's reloads too.
      if (!frame.id && session) localStorage.setItem(STATUS_KEY, JSON.stringify({ agent: session.agent, status: frame.status, label: frame.label || "" }));
      break;
    case "queue":
      queue = frame.conversations || [];
      break;
    case "offline_messages":
      for (const record of frame.conversations) if (!offline.some((c) => c.id === record.id)) offline.push(record);
      break;
    case "claimed":
    case "taken":
      offline = offline.filter((c) => c.id !== frame.conversation.id);
      queue = queue.filter((q) => q.conversation.id !== frame.conversation.id);
      track(frame.conversation);
      select(frame.conversation.id);
      break;
    case "transferred":
      $("transfer-form").hidden = true;
      $("transfer-agent").value = "";
      $("transfer-note").value = "";
      toast("Conversation transferred.");
      break;
    case "visitor_context":
      contexts.set(frame.conversation, frame);
      break;
    case "definitions":
      definitions.labels = frame.labels || [];
      definitions.attributes = frame.attributes || [];
      break;
    case "quick_replies":
      quickReplies = [];
      for (const reply of frame.quick_replies) upsertQuickReply(reply);
      break;
    case "quick_reply":
      upsertQuickReply(frame.quick_reply);
      $("qr-shortcut").value = "";
      $("qr-text").value = "";
      break;
    case "quick_reply_deleted":
      quickReplies = quickReplies.filter((q) => q.id !== frame.reply_id);
      break;
    case "mentioned": {
      mentionsReceived.push(frame);
      toast(`${titleCase(frame.author.id || "A colleague")} mentioned you: ${frame.text}`);
      flashTitle();
      // Shown beside your own (read-only unless it is yours): the note is in its transcript.
      if (!conversations.has(frame.conversation.id)) track(frame.conversation);
      break;
    }
    case "missed":
      toast(`Missed: ${visitorName(frame.conversation.visitor)} ${frame.reason === "waited" ? "has waited too long" : "left before anyone answered"}`);
      break;
    case "inbox":
      for (const record of frame.conversations) track(record);
      break;
    case "conversation": {
      const isNew = !conversations.has(frame.conversation.id);
      track(frame.conversation);
      if (isNew) {
        const name = visitorName(frame.conversation.visitor);
        toast(`New conversation from ${name}`);
        flashTitle();
        alertAgent({ title: "New conversation", body: `${name} is waiting for you`, tag: frame.conversation.id, onClick: () => select(frame.conversation.id) });
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
    case "error": {
      const [kind, conversation] = (frame.id || "").split(/:(.*)/);
      if (kind === "ctx") {
        contexts.set(conversation, { error: frame.code });
        break;
      }
      if (kind === "read") break; // a receipt the server did not take (no longer ours): nothing to tell the agent
      if (kind === "transfer" && conversations.has(conversation)) conversations.get(conversation).leaving = false;
      if ((kind === "claim" || kind === "take") && frame.code === "invalid_state") client.sendFrame({ type: "queue", id: "queue" }); // someone was quicker
      if (REQUESTS[kind]) toast(`${REQUESTS[kind]} refused: ${frame.code}${frame.message ? ` (${frame.message})` : ""}`);
      else if (frame.code !== "invalid_token" && frame.code !== "token_expired") toast(frame.message || frame.code);
      break;
    }
    default:
      break;
  }
  render();
}

// Keeps the record current; a visitor attribute also reaches every open context of that visitor.
function applyToRecord(entry, event) {
  entry.record = applyEvent(entry.record, event);
  if (event.data.type !== "attribute_set" || event.data.object !== "visitor") return;
  for (const [id, context] of contexts) {
    const other = conversations.get(id);
    if (!context.error && other && other.record.visitor === entry.record.visitor) {
      const attributes = { ...(context.attributes || {}) };
      if (event.data.value) attributes[event.data.key] = event.data.value;
      else delete attributes[event.data.key];
      contexts.set(id, { ...context, attributes });
    }
  }
}

// Shows a conversation in its tab (opening one), keeping the reply box's text of the one left.
function select(id) {
  if (selected === id && openTabs.includes(id)) return;
  if (selected) drafts.set(selected, $("input").value);
  selected = id;
  if (id && !openTabs.includes(id)) openTabs.push(id);
  $("input").value = (id && drafts.get(id)) || "";
  // Fit the box to the draft once the view is drawn (no `input` event: that would send a typing signal).
  requestAnimationFrame(() => {
    const input = $("input");
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  });
  const entry = conversations.get(id);
  if (entry) requestContext(id);
  markRead(id);
  render();
  if (!$("input").disabled) $("input").focus();
}

// Closes a tab (the conversation stays in the list); the tab beside it takes its place.
function closeTab(id) {
  const at = openTabs.indexOf(id);
  if (at < 0) return;
  openTabs.splice(at, 1);
  const entry = conversations.get(id);
  if (entry && entry.past) {
    client.unsubscribe(id);
    conversations.delete(id);
  }
  if (selected === id) {
    drafts.set(id, $("input").value);
    selected = null;
    select(openTabs[Math.min(at, openTabs.length - 1)] || null);
  } else render();
}

// Opens an earlier conversation of the visitor read-only, in a tab: the server replays its whole log.
function openPast(record) {
  if (!conversations.has(record.id)) {
    const visitor = conversations.get(selected)?.record.visitor;
    const entry = newEntry({ visitor, ...record });
    entry.past = true;
    conversations.set(record.id, entry);
    client.subscribe(record.id);
  }
  select(record.id);
}

// The conversations of the list, in its order (open ones first, the latest activity first).
function listed() {
  return [...conversations.entries()]
    .filter(([, entry]) => !entry.past)
    .sort(([, a], [, b]) => {
      const openA = a.record.status !== "closed";
      const openB = b.record.status !== "closed";
      if (openA !== openB) return openA ? -1 : 1;
      return (b.record.updated_at || 0) - (a.record.updated_at || 0);
    });
}

function step(delta) {
  const ids = listed().map(([id]) => id);
  if (!ids.length) return;
  const at = ids.indexOf(selected);
  select(ids[at < 0 ? 0 : (at + delta + ids.length) % ids.length]);
}

function claim(id) {
  requestNow({ type: "claim", id: `claim:${id}`, conversation: id });
}

function take(id) {
  requestNow({ type: "take", id: `take:${id}`, conversation: id });
}

function transfer(toQueue) {
  if (!selected) return;
  const agent = $("transfer-agent").value.trim();
  if (!toQueue && !agent) {
    toast("Name a colleague, or send the conversation back to the queue.");
    $("transfer-agent").focus();
    return;
  }
  const frame = { type: "transfer", id: `transfer:${selected}`, conversation: selected };
  if (!toQueue) frame.agent = agent;
  const note = $("transfer-note").value.trim();
  if (note) frame.note = note;
  // No more receipts from here on: the server may hand it over before our stream tells us (it refuses `read` then).
  if (requestNow(frame)) conversations.get(selected).leaving = true;
}

// The time `snooze` asks for, from the form: null means until the visitor replies.
function snoozeUntil() {
  const choice = $("snooze-choice").value;
  if (choice === "1h") return Date.now() + 3_600_000;
  if (choice === "tomorrow") {
    const at = new Date();
    at.setDate(at.getDate() + 1);
    at.setHours(9, 0, 0, 0);
    return at.getTime();
  }
  if (choice === "at") {
    const at = new Date($("snooze-at").value).getTime();
    return Number.isFinite(at) ? at : undefined;
  }
  return null;
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

const render = renderer(() => {
  if (client) draw();
});

function draw() {
  const entries = listed();
  $("conversation-list").replaceChildren(
    ...entries.map(([id, entry]) =>
      el(
        "li",
        { class: `conversation-item${id === selected ? " selected" : ""}${entry.record.status === "closed" ? " closed" : ""}`, onclick: () => select(id), "data-conversation": id },
        el(
          "div",
          { class: "item-top" },
          el("span", { class: "item-name" }, visitorName(entry.record.visitor)),
          unreadOf(entry) ? el("span", { class: "unread", title: "Not seen yet" }, String(unreadOf(entry))) : null,
        ),
        el(
          "div",
          { class: "item-bottom" },
          el("span", { class: `badge ${entry.record.status}` }, entry.record.status.replace("_", " ")),
          entry.record.rating ? el("span", { class: "rating-badge", title: `Rated ${entry.record.rating}/5` }, `★${entry.record.rating}`) : null,
          el("span", { class: "preview" }, entry.typingUntil > Date.now() ? "typing…" : lastMessage(entry)),
        ),
        (entry.record.labels || []).length ? el("div", { class: "chips" }, ...entry.record.labels.map((name) => labelChip(name))) : null,
      ),
    ),
  );
  $("empty-list").hidden = entries.length > 0;
  drawTabs();

  const status = $("my-status");
  status.dataset.status = myStatus ? myStatus.status : "";
  status.textContent = myStatus ? (myStatus.label ? `${titleCase(myStatus.status)}: ${myStatus.label}` : titleCase(myStatus.status)) : "…";
  drawQueue();
  drawQuickReplies();

  const entry = selected ? conversations.get(selected) : null;
  $("placeholder").hidden = !!entry;
  $("view").hidden = !entry;
  $("details").hidden = !entry;
  if (!entry) return;
  $("context-body").replaceChildren(...contextView(contexts.get(selected), online, openPast));
  drawWorkspace(entry, { isMine, showNote });
  $("past-banner").hidden = !entry.past;
  const record = entry.record;
  drawLabels(record);
  drawAttributes(record, contexts.get(selected));
  $("view-title").textContent = visitorName(record.visitor);
  const mineNow = record.status === "assigned" && record.agent === session.agent;
  $("view-subtitle").textContent = `${record.status === "closed" ? "closed" : mineNow ? "assigned to you" : record.status === "on_hold" ? "on hold" : record.status} · started ${timeOf(record.created_at)}`;
  const parkedByMe = record.status === "on_hold" && record.agent === session.agent;
  $("snooze-toggle").hidden = !mineNow;
  if (!mineNow) $("snooze-form").hidden = true;
  $("wake").hidden = !parkedByMe;
  $("on-hold-banner").hidden = record.status !== "on_hold";
  $("on-hold-banner").textContent = record.status === "on_hold"
    ? `On hold ${record.until ? `until ${untilText(record.until)} or the visitor's reply` : "until the visitor replies"}: it does not take one of your seats meanwhile.`
    : "";
  $("close-conversation").hidden = !mineNow;
  $("transfer-toggle").hidden = !mineNow;
  if (!mineNow) $("transfer-form").hidden = true;
  $("input").disabled = !mineNow;
  $("send").disabled = !mineNow;
  $("note-mode").disabled = !mineNow;
  $("emoji-toggle").disabled = !mineNow;
  $("composer").classList.toggle("note-mode", noteMode && mineNow);
  $("send").textContent = noteMode ? "Add note" : "Send";
  $("input").placeholder = !mineNow
    ? record.status === "closed"
      ? "This conversation is closed"
      : parkedByMe
      ? "On hold: Wake now to write"
      : "Assigned to someone else: read only"
    : noteMode
      ? "Private note: only agents see it (@name notifies a colleague)"
      : "Reply…";

  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const nodes = [];
  // "Seen" goes under the last of our messages the visitor has seen (its mark survives reloads on both sides).
  const seenSeq = Math.max(0, ...entry.events.filter((e) => e.data.type === "message" && isMine(e.author) && e.seq <= entry.visitorSeen).map((e) => e.seq));
  for (const event of entry.events) {
    if (event.data.type === "message") {
      const mine = isMine(event.author);
      const seen = mine && event.seq === seenSeq;
      nodes.push(
        el(
          "div",
          { class: `message ${mine ? "mine" : "theirs"}`, "data-seq": String(event.seq) },
          el("div", { class: "author" }, mine ? "You" : event.author.role === "visitor" ? "Visitor" : titleCase(event.author.id)),
          event.data.body.text ? el("div", { class: "bubble" }, event.data.body.text) : null,
          attachmentNodes(client, event.data.body.attachments),
          el("div", { class: `meta${seen ? " seen" : ""}` }, mine ? `${timeOf(event.at)} · sent ✓${seen ? " · seen" : ""}` : timeOf(event.at)),
        ),
      );
    } else if (event.data.type === "note") {
      const mine = isMine(event.author);
      const mentioned = event.data.mentions || [];
      nodes.push(
        el(
          "div",
          { class: `message note ${mine ? "mine" : "theirs"}`, "data-seq": String(event.seq) },
          el("div", { class: "author" }, `${mine ? "You" : titleCase(event.author.id)} · private note`),
          el("div", { class: "bubble" }, event.data.text),
          el("div", { class: "meta" }, `${timeOf(event.at)} · only agents see this${mentioned.length ? ` · mentions ${mentioned.map((a) => `@${a}`).join(", ")}` : ""}`),
        ),
      );
    } else if (event.data.type === "rated") {
      const score = Math.max(0, Math.min(5, Number(event.data.score) || 0));
      nodes.push(
        el(
          "div",
          { class: "rating-card", "data-score": String(score) },
          el("div", { class: "rating-title" }, systemText(event, session.agent)),
          el("div", { class: "rating-stars", "aria-label": `${score} of 5 stars` }, "★".repeat(score) + "☆".repeat(5 - score), el("span", { class: "rating-score" }, ` ${score}/5`)),
          event.data.comment ? el("div", { class: "rating-comment" }, `“${event.data.comment}”`) : null,
        ),
      );
    } else {
      const note = event.data.type === "transferred" && event.data.note;
      nodes.push(el("div", { class: `system ${event.data.type}` }, systemText(event, session.agent), note ? el("span", { class: "note" }, `Note: ${note}`) : null));
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

function drawTabs() {
  const tabs = openTabs.filter((id) => conversations.has(id)).map((id) => {
    const entry = conversations.get(id);
    const title = entry.past ? `${new Date(entry.record.created_at).toLocaleDateString()} (history)` : visitorName(entry.record.visitor || "");
    return { id, title, unread: entry.past ? 0 : unreadOf(entry), status: entry.record.status, past: entry.past };
  });
  renderTabs($("tabs"), tabs, selected, { select, closeTab });
}

// Scrolls the transcript to a note (from the side panel's list) and flashes it.
function showNote(seq) {
  const node = $("messages").querySelector(`.note[data-seq="${seq}"]`);
  if (!node) return;
  node.scrollIntoView({ block: "center", behavior: "smooth" });
  node.classList.add("flash");
  setTimeout(() => node.classList.remove("flash"), 1500);
}

function drawQueue() {
  renderQueue(queue, offline, { claim, take });
}

function drawQuickReplies() {
  renderQuickReplies(quickReplies, { insert: insertText, remove: (reply) => requestNow({ type: "delete_quick_reply", id: `qr:delete:${reply.id}`, reply_id: reply.id }) });
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

function sendNote(conversation, text) {
  const frame = { type: "note", id: `note:${conversation}`, conversation, client_id: crypto.randomUUID(), text, mentions: mentionsIn(text) };
  const retry = (left) =>
    client.request(frame).catch((error) => {
      // Lost on the way: the same client id again stores it once.
      if (left > 0 && ["offline", "disconnected", "timeout", "unavailable"].includes(error.code)) return new Promise((r) => setTimeout(r, 1000)).then(() => retry(left - 1));
      toast(`Note not saved: ${error.message || error.code}`);
    });
  retry(5);
}

wireQuickInsert({ quickReplies: () => quickReplies, noteMode: () => noteMode, colleagues: () => KNOWN_AGENTS.filter((id) => id !== session.agent) });

wireComposer({
  maxHeight: 160,
  typingSignal,
  send: (text) => {
    if (!client || !selected || !conversations.get(selected)) return false;
    if (noteMode) {
      if (!client.online) {
        toast("Not connected right now; try again in a moment.");
        return false;
      }
      sendNote(selected, text);
      $("qr-hint").hidden = true;
      return true;
    }
    client.sendMessage(selected, text);
    $("qr-hint").hidden = true;
    render();
    return true;
  },
});
wireAttachments({ client: () => client, conversation: () => (selected && conversations.get(selected) ? selected : null), sent: () => render() });
$("note-mode").addEventListener("change", (event) => {
  noteMode = event.target.checked;
  render();
  $("input").focus();
});
$("agent-status").addEventListener("change", sendStatus);
$("status-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sendStatus();
});
$("queue-refresh").addEventListener("click", () => requestNow({ type: "queue", id: "queue" }));
$("context-refresh").addEventListener("click", () => selected && requestContext(selected));
$("transfer-toggle").addEventListener("click", () => {
  $("transfer-form").hidden = !$("transfer-form").hidden;
  if (!$("transfer-form").hidden) $("transfer-agent").focus();
});
$("transfer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  transfer(false);
});
$("transfer-queue").addEventListener("click", () => transfer(true));
$("qr-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const shortcut = $("qr-shortcut").value.trim().toLowerCase();
  const text = $("qr-text").value.trim();
  if (!shortcut || !text) return;
  const frame = { type: "put_quick_reply", id: "qr:put", shortcut, text };
  // The same shortcut again changes your own quick reply instead of clashing with it.
  const own = quickReplies.find((q) => q.scope === "agent" && q.shortcut === shortcut);
  if (own) frame.reply_id = own.id;
  requestNow(frame);
});
$("snooze-toggle").addEventListener("click", () => {
  $("snooze-form").hidden = !$("snooze-form").hidden;
});
$("snooze-choice").addEventListener("change", () => {
  $("snooze-at").hidden = $("snooze-choice").value !== "at";
});
$("snooze-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!selected) return;
  const until = snoozeUntil();
  if (until === undefined || (until !== null && until <= Date.now())) {
    toast("Pick a time in the future.");
    return;
  }
  const frame = { type: "snooze", id: `snooze:${selected}`, conversation: selected, client_id: crypto.randomUUID() };
  if (until !== null) frame.until = until;
  if (requestNow(frame)) $("snooze-form").hidden = true;
});
$("wake").addEventListener("click", () => {
  if (selected) requestNow({ type: "wake", id: `wake:${selected}`, conversation: selected, client_id: crypto.randomUUID() });
});
$("label-add").addEventListener("change", (event) => {
  const label = event.target.value;
  event.target.value = "";
  if (label && selected) addLabel(selected, label);
});
$("close-conversation").addEventListener("click", () => {
  if (client && selected && !client.sendFrame({ type: "close", id: "close", conversation: selected })) {
    toast("Not connected right now; try again in a moment.");
  }
});

wireControls({
  step,
  tab: (n) => openTabs[n - 1] && select(openTabs[n - 1]),
  closeTab: () => selected && closeTab(selected),
  insert: insertText,
  visible: () => {
    if (selected) markRead(selected);
    render();
  },
});

window.kfAgent = { get client() { return client; }, conversations: () => conversations, mentions: () => mentionsReceived, tabs: () => [...openTabs], alerts: alertsSent }; // for debugging and the browser check

if (session) startConsole();
else showLogin();
