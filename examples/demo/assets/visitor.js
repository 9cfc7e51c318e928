// The visitor side of the kf demo: one conversation with the Support group.
//
// Kept in localStorage (so a reload resumes instead of starting over): the visitor id and token, the current
// conversation, its transcript and cursor (last applied seq + epoch), and messages not yet acknowledged.
//
// The protocol client is the kf-client package (clients/js), served by the kf-widget crate. By default it picks the
// transport itself (WebSocket, SSE when WebSockets fail); `/?transport=sse` forces the SSE transport (EventSource +
// POST) and `/?transport=ws` the WebSocket.
import { KfClient, newId } from "/widget/client/index.js";
import { TypingSignal, el, renderer, showStatus, timeOf, titleCase, toast, wireComposer } from "./ui.js";

const STORE_KEY = "kf.demo.visitor";
const TENANT = "demo";
const TRANSPORT = { sse: "sse", ws: "ws" }[new URLSearchParams(location.search).get("transport")] || "auto";
// A widget names its entry point (`/?entry=pricing`); without one the server routes by page rules or the default.
const ENTRY = new URLSearchParams(location.search).get("entry");
const MAX_CACHED_EVENTS = 500;
const $ = (id) => document.getElementById(id);

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY)) || {};
  } catch {
    return {};
  }
}

const saved = load();
const state = {
  visitorId: saved.visitorId || null,
  visitorKey: saved.visitorKey || null,
  token: saved.token || null,
  tokenExpiresAt: saved.tokenExpiresAt || 0,
  conversation: saved.conversation || null, // current conversation id
  record: saved.record || null, // its record as last seen (state, last_agent)
  openClientId: saved.openClientId || null, // an `open` not yet answered
  events: saved.events || [], // committed events of the current conversation, by seq
  acked: new Set(),
  failed: [], // {client_id, text, reason}
  typing: null, // {who, until}
  position: null, // the last `position` of the queued conversation: {conversation, position, estimated_wait_ms?}
  online: false,
};

// What this page knows about the visit, for the agent's context panel (protocol §7.10): sent after every
// `welcome` (the server keeps it in memory only). The landing page is this page's URL, UTM parameters included.
function visitContext() {
  const params = new URLSearchParams(location.search);
  const utm = {};
  for (const key of ["source", "medium", "campaign", "term", "content"]) {
    const value = params.get(`utm_${key}`);
    if (value) utm[key] = value.slice(0, 256);
  }
  const context = { type: "context", id: "context", landing_page: location.href, user_agent: navigator.userAgent.slice(0, 512), language: navigator.language, screen: `${screen.width}x${screen.height}` };
  if (/^https?:\/\//.test(document.referrer)) context.referrer = document.referrer;
  if (Object.keys(utm).length) context.utm = utm;
  return context;
}
let pageViewSent = false; // one `page` view per page load

function save() {
  const data = {
    visitorId: state.visitorId,
    visitorKey: state.visitorKey,
    token: state.token,
    tokenExpiresAt: state.tokenExpiresAt,
    conversation: state.conversation,
    record: state.record,
    openClientId: state.openClientId,
    events: state.events.slice(-MAX_CACHED_EVENTS),
    client: client ? client.snapshot() : saved.client,
  };
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(data));
  } catch (error) {
    console.warn("cannot save the chat state", error);
  }
}

// The visitor's token comes from the widget's session endpoint, as the embeddable widget's does: a new visitor
// gets an id and a key only this server can make, and comes back as that visitor only with both (nobody becomes
// another visitor by choosing its id).
async function getToken() {
  if (state.token && state.tokenExpiresAt > Date.now() + 60_000) return state.token;
  const known = state.visitorId && state.visitorKey ? { visitor_id: state.visitorId, visitor_key: state.visitorKey } : {};
  let response = await fetch("/widget/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ tenant: TENANT, ...known }),
  });
  let body = await response.json().catch(() => ({}));
  if (response.status === 401 && body.error === "invalid_visitor_key") {
    // A key this server does not recognise (its signing key changed): start over as a new visitor.
    state.visitorId = state.visitorKey = null;
    response = await fetch("/widget/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ tenant: TENANT }),
    });
    body = await response.json().catch(() => ({}));
  }
  if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
  state.visitorId = body.visitor_id;
  state.visitorKey = body.visitor_key;
  state.token = body.token;
  state.tokenExpiresAt = Date.now() + body.expires_in * 1000;
  save();
  return state.token;
}

const isMine = (author) => author && author.role === "visitor" && author.id === state.visitorId;

const client = new KfClient({
  transport: TRANSPORT,
  state: saved.client,
  getToken,
  isMine,
  onAuthError: async () => {
    state.token = null; // ask for a fresh one, same visitor id
    save();
    return true;
  },
  onStatus: (status, detail) => {
    state.online = status === "online";
    showStatus(status, detail);
    if (status === "stopped") toast(`Chat disconnected${detail && detail.why ? ` (${detail.why})` : ""}. Reload the page to try again.`);
    render();
  },
  onFrame: handleFrame,
  onEvent: (event) => {
    if (event.conversation !== state.conversation) return;
    state.events.push(event);
    applyToRecord(event);
    if (state.typing && event.data.type === "message" && !isMine(event.author)) state.typing = null;
    markRead();
    render();
  },
  onSeen: (conversation, from) => {
    if (conversation !== state.conversation) return;
    if (isMine(from)) readSent = Math.max(readSent, client.seen(conversation).find((m) => isMine(m.from))?.seq || 0);
    render();
  },
  onReset: (conversation) => {
    if (conversation === state.conversation) state.events = [];
    render();
  },
  onAck: (clientId) => {
    state.acked.add(clientId);
    render();
  },
  onSendFailed: (clientId, code, message, p) => {
    state.failed.push({ client_id: clientId, text: p.body.text, reason: message || code });
    render();
  },
  onChange: save,
});

function handleFrame(frame) {
  switch (frame.type) {
    case "welcome":
      if (frame.principal.id !== state.visitorId) {
        state.visitorId = frame.principal.id;
        save();
      }
      // Before the `open` that follows `inbox`, so that the conversation is stored with this context.
      client.sendFrame(visitContext());
      if (!pageViewSent) pageViewSent = client.sendFrame({ type: "page", id: "page", url: location.href, title: document.title.slice(0, 256) });
      break;
    case "position":
      // Kept even before `opened` says which conversation is ours: it may arrive first.
      state.position = frame;
      render();
      break;
    case "inbox":
      chooseConversation(frame.conversations);
      break;
    case "opened":
      state.openClientId = null;
      adopt(frame.conversation);
      break;
    case "conversation":
      if (frame.conversation.id === state.conversation) {
        state.record = frame.conversation;
        render();
      }
      break;
    case "typing":
      if (frame.conversation === state.conversation && !isMine(frame.from)) {
        state.typing = frame.active ? { who: frame.from, until: Date.now() + 6000 } : null;
        render();
        if (frame.active) setTimeout(render, 6100);
      }
      break;
    case "error":
      handleError(frame);
      break;
    default:
      break;
  }
}

function handleError(frame) {
  const id = frame.id || "";
  if (id === "read") return; // a receipt not taken (the conversation moved on): nothing to tell the visitor
  if (id === "context" || id === "page") {
    console.info(`kf: the server refused the visit ${id}: ${frame.code} ${frame.message || ""}`); // the chat works without it
    return;
  }
  if (id.startsWith("sub:") && (frame.code === "not_found" || frame.code === "forbidden")) {
    // The server does not know our conversation (its data was reset): start a new one.
    client.forget(id.slice(4));
    state.conversation = null;
    state.record = null;
    state.events = [];
    openConversation();
    return;
  }
  if (id === "open") {
    if (["rate_limited", "unavailable", "internal"].includes(frame.code) && state.openClientId) {
      const clientId = state.openClientId;
      setTimeout(() => state.openClientId === clientId && openConversation(clientId), 1500 + Math.random() * 1500);
      return; // retried with the same client id
    }
    state.openClientId = null;
    save();
  }
  if (frame.code !== "invalid_token" && frame.code !== "token_expired") toast(frame.message || frame.code);
}

// After `inbox`: keep the current conversation, adopt the newest one, or open a new one.
function chooseConversation(conversations) {
  const current = conversations.find((c) => c.id === state.conversation);
  if (current) {
    adopt(current);
  } else if (state.conversation) {
    client.forget(state.conversation); // unknown to the server now
    state.conversation = null;
    state.record = null;
    state.events = [];
  }
  if (state.openClientId) {
    openConversation(state.openClientId); // an earlier `open` may have been stored: same client id
  } else if (!current) {
    if (conversations.length > 0) adopt(conversations[0]); // newest first
    else openConversation();
  }
  render();
}

function openConversation(clientId) {
  state.openClientId = clientId || newId();
  save();
  const frame = { type: "open", id: "open", client_id: state.openClientId };
  if (ENTRY) frame.entry = ENTRY;
  client.sendFrame(frame);
  render();
}

function adopt(conversation) {
  if (state.conversation && state.conversation !== conversation.id) {
    client.forget(state.conversation);
    state.events = [];
    state.failed = [];
    if (state.position && state.position.conversation !== conversation.id) state.position = null;
  }
  if (state.conversation !== conversation.id) readSent = 0;
  state.conversation = conversation.id;
  state.record = conversation;
  save();
  client.subscribe(conversation.id);
  render();
}

function applyToRecord(event) {
  if (!state.record) return;
  const kind = event.data.type;
  if (kind === "assigned") state.record = { ...state.record, status: "assigned", agent: event.data.agent, last_agent: event.data.agent };
  else if (kind === "closed") state.record = { ...state.record, status: "closed" };
  else if (kind === "reopened") state.record = { ...state.record, status: "queued" };
  else if (kind === "offline") state.record = { ...state.record, status: "offline" };
  else if (kind === "transferred" && event.data.agent) state.record = { ...state.record, status: "assigned", agent: event.data.agent, last_agent: event.data.agent };
  else if (kind === "transferred") state.record = { ...state.record, status: "queued", agent: undefined };
  if (state.record.status !== "queued") state.position = null; // no `position` says it left the queue: this does
  state.record.last_seq = Math.max(state.record.last_seq || 0, event.seq);
}

// ---- rendering ----

function systemText(event) {
  const who = event.author.role === "agent" ? titleCase(event.author.id) : event.author.role === "visitor" ? "You" : null;
  switch (event.data.type) {
    case "created":
      return "Conversation started";
    case "assigned":
      return `${titleCase(event.data.agent)} joined the conversation`;
    case "closed":
      return who ? `${who} closed the conversation` : "The conversation was closed";
    case "reopened":
      return "The conversation was reopened";
    case "transferred":
      return event.data.agent ? `You were passed on to ${titleCase(event.data.agent)}` : "You are back in the queue for the next agent";
    case "offline":
      return "Nobody is available right now: leave a message and we will answer";
    case "missed":
      return null; // a note for the agents
    case "hidden":
      return null; // in place of an event for the agents only (a private note): nothing to show
    case "rated":
      return `You rated this conversation ${event.data.score}/5`;
    case "snoozed":
      return "The agent will get back to you: just write here if you have something to add";
    case "woken":
      return null; // an `assigned` (or the queue) follows
    default:
      return event.data.type;
  }
}

function bubble({ mine, who, text, meta, failed, seen }) {
  return el(
    "div",
    { class: `message ${mine ? "mine" : "theirs"}${failed ? " failed" : ""}` },
    !mine && who ? el("div", { class: "author" }, who) : null,
    el("div", { class: "bubble" }, text),
    el("div", { class: `meta${seen ? " seen" : ""}` }, meta),
  );
}

// Read receipts: what the page shows (visible) is seen; a `read` at most every half second. The server keeps the
// marks, so after a reload of either side the agent's "seen" under our messages comes back (and ours at the agent).
let readSent = 0;
let readTimer = null;
function markRead() {
  if (!state.conversation || document.visibilityState !== "visible" || !state.events.length) return;
  const last = state.events[state.events.length - 1].seq;
  if (last <= readSent || readTimer) return;
  readTimer = setTimeout(() => {
    readTimer = null;
    const seq = state.events.length ? state.events[state.events.length - 1].seq : 0;
    if (seq > readSent && client.sendFrame({ type: "read", id: "read", conversation: state.conversation, seq })) readSent = seq;
  }, 500);
}
document.addEventListener("visibilitychange", markRead);

// The highest seq an agent has seen in our conversation.
function agentSeen() {
  return Math.max(0, ...client.seen(state.conversation || "").filter((mark) => mark.from.role === "agent").map((mark) => mark.seq));
}

const render = renderer(draw);

function draw() {
  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const nodes = [];
  const seenUpTo = agentSeen();
  const lastSeen = Math.max(0, ...state.events.filter((e) => e.data.type === "message" && isMine(e.author) && e.seq <= seenUpTo).map((e) => e.seq));
  for (const event of state.events) {
    if (event.data.type === "message") {
      const mine = isMine(event.author);
      const seen = mine && event.seq === lastSeen;
      const meta = mine ? `${timeOf(event.at)} · sent ✓${seen ? " · seen" : ""}` : timeOf(event.at);
      nodes.push(bubble({ mine, who: titleCase(event.author.id), text: event.data.body.text, meta, seen }));
    } else {
      const text = systemText(event);
      if (text) nodes.push(el("div", { class: "system" }, text));
    }
  }
  for (const p of client.pendingFor(state.conversation)) {
    const meta = state.acked.has(p.client_id) ? "sent ✓" : state.online ? "sending…" : "waiting for connection…";
    nodes.push(bubble({ mine: true, text: p.body.text, meta }));
  }
  for (const f of state.failed) nodes.push(bubble({ mine: true, text: f.text, meta: `not sent: ${f.reason}`, failed: true }));
  if (!state.conversation && state.openClientId) nodes.push(el("div", { class: "system" }, "Starting a conversation…"));
  list.replaceChildren(...nodes);

  const typing = state.typing && state.typing.until > Date.now() ? state.typing : null;
  $("typing").hidden = !typing;
  if (typing) $("typing").textContent = `${titleCase(typing.who.id)} is typing…`;

  const status = state.record ? state.record.status : null;
  const closed = status === "closed";
  const banner = $("banner");
  banner.hidden = !(closed || status === "queued");
  banner.replaceChildren();
  if (closed) {
    banner.append(
      el("span", {}, "This conversation is closed."),
      el("button", { type: "button", class: "primary small", onclick: () => openConversation() }, "Start a new conversation"),
    );
  } else if (status === "queued") {
    const place = state.position && state.position.conversation === state.conversation ? state.position : null;
    const wait = place && place.estimated_wait_ms !== undefined ? ` (about ${Math.max(1, Math.round(place.estimated_wait_ms / 60_000))} min)` : "";
    banner.append(
      el(
        "span",
        {},
        "Waiting for an agent… you can already write.",
        place ? el("span", { class: "queue-place", id: "queue-position", "data-position": place.position }, ` You are number ${place.position} in the queue${wait}.`) : null,
      ),
    );
  }
  const agent = state.record && (state.record.agent || state.record.last_agent);
  $("subtitle").textContent =
    status === "assigned" && agent
      ? `You are talking to ${titleCase(agent)}`
      : closed
        ? "This chat has ended"
        : "We usually answer within a few minutes";
  $("input").disabled = !state.conversation || closed;
  $("send").disabled = !state.conversation || closed;
  $("end-chat").hidden = !state.conversation || closed;
  $("footer").textContent = state.visitorId ? `visitor id ${state.visitorId}${client.transport === "sse" ? " · SSE" : ""}` : "";
  // Last, once the banner and typing line have taken their room.
  if (nearBottom) list.scrollTop = list.scrollHeight;
}

// ---- input ----

const typingSignal = new TypingSignal((active) => {
  if (state.conversation) client.typing(state.conversation, active);
});

wireComposer({
  maxHeight: 120,
  typingSignal,
  send: (text) => {
    if (!state.conversation) return false;
    client.sendMessage(state.conversation, text);
    render();
    return true;
  },
});
$("end-chat").addEventListener("click", () => {
  if (!state.conversation || !confirm("End this chat?")) return;
  if (!client.sendFrame({ type: "close", id: "close", conversation: state.conversation })) {
    toast("Not connected right now; try again in a moment.");
  }
});

window.kfVisitor = { state, client }; // for debugging and for the browser check
draw();
client.start();
