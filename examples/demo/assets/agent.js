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
let conversations = new Map(); // id -> {record, events: [], unread, typingUntil}
let selected = null;
let online = false;
let queue = []; // the `queue` view: [{conversation, position, estimated_wait_ms?}]
let offline = []; // offline messages waiting to be taken (Conversation records)
let quickReplies = []; // own first, then the groups', each by shortcut
let contexts = new Map(); // conversation id -> `visitor_context` reply (or {error})
let myStatus = null; // {status, label} as the server last answered
let noteMode = false; // the composer writes a private note instead of a reply
const mentionsReceived = []; // `mentioned` frames, newest last (the browser check reads them)
let labelDefs = []; // the tenant's labels: [{name, color}], by name (`definitions`)
let attributeDefs = []; // the tenant's declared attributes: [{object, key, kind, name?}], the visitor's first

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

function requestContext(id) {
  if (client && client.online) client.sendFrame({ type: "visitor_context", id: `ctx:${id}`, conversation: id });
}

const isMine = (author) => author && author.role === "agent" && session && author.id === session.agent;

function startConsole() {
  $("login").hidden = true;
  $("console").hidden = false;
  $("agent-name").textContent = session.name || titleCase(session.agent);
  conversations = new Map();
  selected = null;
  queue = [];
  offline = [];
  quickReplies = [];
  contexts = new Map();
  myStatus = null;
  $("agent-ids").replaceChildren(...KNOWN_AGENTS.filter((id) => id !== session.agent).map((id) => el("option", { value: id }, titleCase(id))));
  const saved = loadSseState();
  if (saved) {
    // Events below the saved cursor are not sent again: start from the transcripts they made.
    for (const [id, entry] of saved.conversations || []) conversations.set(id, { record: entry.record, events: entry.events || [], unread: 0, typingUntil: 0 });
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
      labelDefs = frame.labels || [];
      attributeDefs = frame.attributes || [];
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
    case "error": {
      const [kind, conversation] = (frame.id || "").split(/:(.*)/);
      if (kind === "ctx") {
        contexts.set(conversation, { error: frame.code });
        break;
      }
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

function applyToRecord(entry, event) {
  const kind = event.data.type;
  if (kind === "rated") entry.record = { ...entry.record, rating: event.data.score };
  const record = { ...entry.record };
  if (kind === "labeled") {
    record.labels = [...new Set([...(record.labels || []), event.data.label])].sort();
  } else if (kind === "unlabeled") {
    record.labels = (record.labels || []).filter((label) => label !== event.data.label);
  } else if (kind === "attribute_set" && event.data.object === "conversation") {
    record.attributes = { ...(record.attributes || {}) };
    if (event.data.value) record.attributes[event.data.key] = event.data.value;
    else delete record.attributes[event.data.key];
  } else if (kind === "attribute_set" && event.data.object === "visitor") {
    // Kept on the visitor: every open context of that visitor learns it.
    for (const [id, context] of contexts) {
      const other = conversations.get(id);
      if (!context.error && other && other.record.visitor === record.visitor) {
        const attributes = { ...(context.attributes || {}) };
        if (event.data.value) attributes[event.data.key] = event.data.value;
        else delete attributes[event.data.key];
        contexts.set(id, { ...context, attributes });
      }
    }
  }
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
  } else if (kind === "offline") {
    record.status = "offline";
  } else if (kind === "snoozed") {
    record.status = "on_hold";
    if (event.data.until) record.until = event.data.until;
    else delete record.until;
  } else if (kind === "woken") {
    record.status = "queued";
    delete record.agent;
    delete record.until;
  } else if (kind === "transferred") {
    record.group = event.data.group;
    if (event.data.agent) {
      record.status = "assigned";
      record.agent = event.data.agent;
      record.last_agent = event.data.agent;
    } else {
      record.status = "queued";
      delete record.agent;
    }
  }
  record.last_seq = Math.max(record.last_seq || 0, event.seq);
  record.updated_at = Math.max(record.updated_at || 0, event.at);
  entry.record = record;
}

function select(id) {
  selected = id;
  const entry = conversations.get(id);
  if (entry) entry.unread = 0;
  if (entry) requestContext(id);
  render();
  $("input").focus();
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
  requestNow(frame);
}

function untilText(ms) {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return today ? timeOf(ms) : `${date.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })} ${timeOf(ms)}`;
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

function waitText(ms) {
  if (ms === undefined || ms === null) return "";
  if (ms < 60_000) return `~${Math.max(1, Math.round(ms / 1000))} s wait`;
  return `~${Math.round(ms / 60_000)} min wait`;
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
    case "transferred": {
      const to = event.data.agent ? (event.data.agent === session.agent ? "you" : titleCase(event.data.agent)) : `the ${event.data.group} queue`;
      // A bot's hand-over to people (docs/bots.md): the messages above it are the bot's.
      if (event.data.handover) return `${who ? `${who} (bot) handed` : "Handed"} the conversation over to ${to}`;
      return `${who ? `${who} transferred` : "Transferred"} the conversation to ${to}`;
    }
    case "offline":
      return "Left as an offline message";
    case "missed":
      return event.data.reason === "waited" ? "Missed: waited too long for an agent" : "Missed: the visitor left before anyone answered";
    case "rated":
      return "The visitor rated the conversation";
    case "snoozed":
      return `${who || "Someone"} put the conversation on hold ${event.data.until ? `until ${untilText(event.data.until)} or the visitor's reply` : "until the visitor replies"}`;
    case "woken":
      return { timer: "Back from hold: its time came", visitor: "Back from hold: the visitor wrote", agent: `${who || "The agent"} took the conversation back from hold` }[event.data.reason] || "Back from hold";
    case "labeled":
      return `${who || "Someone"} added the label “${event.data.label}”`;
    case "unlabeled":
      return `${who || "Someone"} removed the label “${event.data.label}”`;
    case "attribute_set": {
      const name = attributeName(event.data.object, event.data.key);
      const whose = event.data.object === "visitor" ? "the visitor's" : "";
      const by = who || "The shop";
      return event.data.value ? `${by} set ${whose} ${name} to ${valueText(event.data.value)}`.replace("  ", " ") : `${by} cleared ${whose} ${name}`.replace("  ", " ");
    }
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
          el("span", { class: `badge ${entry.record.status}` }, entry.record.status.replace("_", " ")),
          entry.record.rating ? el("span", { class: "rating-badge", title: `Rated ${entry.record.rating}/5` }, `★${entry.record.rating}`) : null,
          el("span", { class: "preview" }, entry.typingUntil > Date.now() ? "typing…" : lastMessage(entry)),
        ),
        (entry.record.labels || []).length ? el("div", { class: "chips" }, ...entry.record.labels.map((name) => labelChip(name))) : null,
      ),
    ),
  );
  $("empty-list").hidden = conversations.size > 0;

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
  $("context-body").replaceChildren(...contextView(contexts.get(selected)));
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
  for (const event of entry.events) {
    if (event.data.type === "message") {
      const mine = isMine(event.author);
      nodes.push(
        el(
          "div",
          { class: `message ${mine ? "mine" : "theirs"}` },
          el("div", { class: "author" }, mine ? "You" : event.author.role === "visitor" ? "Visitor" : titleCase(event.author.id)),
          event.data.body.text ? el("div", { class: "bubble" }, event.data.body.text) : null,
          attachmentNodes(client, event.data.body.attachments),
          el("div", { class: "meta" }, mine ? `${timeOf(event.at)} · sent ✓` : timeOf(event.at)),
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
          el("div", { class: "rating-title" }, systemText(event)),
          el("div", { class: "rating-stars", "aria-label": `${score} of 5 stars` }, "★".repeat(score) + "☆".repeat(5 - score), el("span", { class: "rating-score" }, ` ${score}/5`)),
          event.data.comment ? el("div", { class: "rating-comment" }, `“${event.data.comment}”`) : null,
        ),
      );
    } else {
      const note = event.data.type === "transferred" && event.data.note;
      nodes.push(el("div", { class: `system ${event.data.type}` }, systemText(event), note ? el("span", { class: "note" }, `Note: ${note}`) : null));
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

// Rebuilt only when it changes: a list replaced under the pointer would swallow a click on its Claim button.
let drawnQueue = null;
function drawQueue() {
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
        el("button", { type: "button", class: "small claim", onclick: () => claim(conversation.id) }, "Claim"),
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
          el("button", { type: "button", class: "small take", onclick: () => take(record.id) }, "Take"),
        ),
      ),
    );
  }
  $("queue-list").replaceChildren(...items);
  $("queue-empty").hidden = items.length > 0;
}

function drawQuickReplies() {
  $("qr-empty").hidden = quickReplies.length > 0;
  $("quick-reply-list").replaceChildren(
    ...quickReplies.map((reply) =>
      el(
        "li",
        { class: "quick-reply", "data-shortcut": reply.shortcut, title: `Insert: ${reply.text}`, onclick: () => insertText(reply.text) },
        el("code", {}, `/${reply.shortcut}`),
        el("span", { class: "qr-text" }, reply.text),
        reply.scope === "agent"
          ? el("button", { type: "button", class: "link-button", title: "Delete this quick reply", onclick: (event) => {
              event.stopPropagation();
              requestNow({ type: "delete_quick_reply", id: `qr:delete:${reply.id}`, reply_id: reply.id });
            } }, "×")
          : el("span", { class: "badge", title: "A quick reply of your group" }, reply.group),
      ),
    ),
  );
}

// The visitor context panel: where the visitor came from, with what, the pages seen and earlier conversations.
function contextView(reply) {
  if (!reply) return [el("div", { class: "muted" }, online ? "Loading…" : "Shown once connected.")];
  if (reply.error) return [el("div", { class: "muted" }, `Not available (${reply.error}).`)];
  const context = reply.context || {};
  const source = context.source || {};
  const device = context.device || {};
  const both = (a, b) => [a, b].filter(Boolean).join(" ");
  const rows = [
    ["referrer", "Came from", source.referrer || (reply.context ? "direct (no referrer)" : "")],
    ["landing", "Landing page", source.landing_page],
    ["utm", "Campaign", Object.entries(source.utm || {}).map(([key, value]) => `${key}: ${value}`).join(", ")],
    ["browser", "Browser", both(device.browser, device.browser_version)],
    ["os", "System", both(device.os, device.os_version)],
    ["device", "Device", device.type],
    ["language", "Language", context.language],
    ["screen", "Screen", context.screen],
  ].filter(([, , value]) => value);
  const nodes = [];
  if (!reply.context) nodes.push(el("div", { class: "muted" }, "The visitor's page reported nothing."));
  if (rows.length) {
    nodes.push(el("dl", { class: "facts" }, ...rows.flatMap(([field, name, value]) => [el("dt", {}, name), el("dd", { "data-field": field, title: value }, value)])));
  }
  const trail = reply.trail || [];
  nodes.push(el("div", { class: "panel-subtitle" }, `Pages (${trail.length})`));
  nodes.push(
    trail.length
      ? el("ol", { class: "trail" }, ...trail.map((page) => el("li", { title: page.url }, page.title || page.url, el("span", { class: "muted" }, ` · ${timeOf(page.at)}`))))
      : el("div", { class: "muted" }, "None known (pages are kept in memory only)."),
  );
  const past = reply.past_conversations || [];
  nodes.push(el("div", { class: "panel-subtitle" }, `Earlier conversations (${past.length})`));
  if (past.length) {
    nodes.push(
      el("ul", { class: "past" }, ...past.map((c) => el("li", { "data-conversation": c.id }, el("span", { class: `badge ${c.status}` }, c.status), ` ${new Date(c.created_at).toLocaleDateString()} ${timeOf(c.created_at)}${c.last_agent ? ` · ${titleCase(c.last_agent)}` : ""}`))),
    );
  }
  return nodes;
}

// ---- labels and attributes ----

function labelColor(name) {
  const known = labelDefs.find((label) => label.name === name);
  return known ? known.color : "#6b7185"; // a label deleted since: grey
}

function labelChip(name, onRemove) {
  const chip = el(
    "span",
    { class: "label-chip", "data-label": name },
    name,
    onRemove ? el("button", { type: "button", title: `Remove the label ${name}`, "aria-label": `Remove ${name}`, onclick: onRemove }, "×") : null,
  );
  chip.style.backgroundColor = labelColor(name); // a CSSOM property: the page's CSP allows no style attribute
  return chip;
}

let drawnLabels = null;
function drawLabels(record) {
  const labels = record.labels || [];
  const key = JSON.stringify([record.id, labels, labelDefs]);
  if (key === drawnLabels) return;
  drawnLabels = key;
  $("label-chips").replaceChildren(...labels.map((name) => labelChip(name, () => unlabel(record.id, name))));
  const free = labelDefs.filter((label) => !labels.includes(label.name));
  $("label-add").replaceChildren(el("option", { value: "" }, "+ Label"), ...free.map((label) => el("option", { value: label.name }, label.name)));
  $("label-add").hidden = free.length === 0;
}

function addLabel(conversation, label) {
  requestNow({ type: "label", id: `label:${conversation}`, conversation, client_id: crypto.randomUUID(), label });
}

function unlabel(conversation, label) {
  requestNow({ type: "unlabel", id: `unlabel:${conversation}`, conversation, client_id: crypto.randomUUID(), label });
}

function attributeName(object, key) {
  const known = attributeDefs.find((d) => d.object === object && d.key === key);
  return (known && known.name) || key;
}

function valueText(value) {
  if (!value) return "";
  if ("bool" in value) return value.bool ? "yes" : "no";
  if ("date" in value) return new Date(`${value.date}T00:00:00`).toLocaleDateString();
  return String(value.string ?? value.number);
}

// A typed input for a declared attribute; `change` sends `set_attribute` (an empty field removes it).
function attributeInput(conversation, definition, value) {
  const id = `attr-${definition.object}-${definition.key}`;
  const attrs = { id, name: definition.key, "data-object": definition.object, "data-key": definition.key, "data-kind": definition.kind };
  let input;
  if (definition.kind === "bool") {
    input = el("input", { ...attrs, type: "checkbox" });
    input.checked = !!(value && value.bool);
  } else {
    const type = { number: "number", date: "date" }[definition.kind] || "text";
    input = el("input", { ...attrs, type, step: definition.kind === "number" ? "any" : undefined, maxlength: type === "text" ? "1000" : undefined });
    input.value = value ? String(value[definition.kind] ?? "") : "";
  }
  input.addEventListener("change", () => {
    let next = null;
    if (definition.kind === "bool") next = { bool: input.checked };
    else if (input.value.trim() === "") next = null;
    else if (definition.kind === "number") {
      const number = Number(input.value);
      if (!Number.isFinite(number)) {
        toast(`${definition.name || definition.key}: not a number`);
        return;
      }
      next = { number };
    } else next = { [definition.kind]: definition.kind === "string" ? input.value.trim() : input.value };
    requestNow({ type: "set_attribute", id: `attr:${conversation}`, conversation, client_id: crypto.randomUUID(), object: definition.object, key: definition.key, value: next });
  });
  return [el("label", { for: id }, definition.name || definition.key), input];
}

let drawnAttributes = null;
function drawAttributes(record, context) {
  const visitorValues = (context && !context.error && context.attributes) || {};
  const conversationValues = record.attributes || {};
  const key = JSON.stringify([record.id, attributeDefs, visitorValues, conversationValues]);
  if (key === drawnAttributes) return;
  drawnAttributes = key;
  const nodes = [];
  for (const [object, title, values] of [
    ["visitor", "Visitor", visitorValues],
    ["conversation", "Conversation", conversationValues],
  ]) {
    const declared = attributeDefs.filter((d) => d.object === object);
    const other = Object.keys(values).filter((k) => !declared.some((d) => d.key === k));
    if (!declared.length && !other.length) continue;
    nodes.push(el("div", { class: "panel-subtitle" }, title));
    nodes.push(
      el(
        "div",
        { class: "attributes", "data-object": object },
        ...declared.flatMap((definition) => attributeInput(record.id, definition, values[definition.key])),
        // Set by the host or the pre-chat form, not declared: shown, not edited here.
        ...other.flatMap((k) => [el("dt", { class: "muted" }, k), el("dd", { "data-key": k }, valueText(values[k]))]),
      ),
    );
  }
  if (!nodes.length) nodes.push(el("div", { class: "muted" }, "None declared."));
  $("attributes-body").replaceChildren(...nodes);
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

// Quick replies in the composer: `/shortcut` then Tab or Enter replaces it with the quick reply's text (Tab also
// completes a prefix that only one shortcut has). Registered before wireComposer's keydown, which it pre-empts.
function insertText(text, from, to) {
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
  const exact = quickReplies.find((q) => q.shortcut === token.prefix);
  if (exact || !completePrefix) return exact;
  const matches = quickReplies.filter((q) => q.shortcut.startsWith(token.prefix));
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
  return token ? KNOWN_AGENTS.filter((id) => id !== session.agent && id.startsWith(token.prefix)) : [];
}

// The agents a note's text mentions: each `@id` once (a word of its own: not the middle of an email address).
function mentionsIn(text) {
  const found = [];
  for (const match of text.matchAll(/(?:^|\s)@([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)/g)) if (!found.includes(match[1])) found.push(match[1]);
  return found;
}

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

function showHint() {
  const mention = noteMode ? mentionToken() : null;
  if (mention) {
    const names = mentionCandidates(mention);
    $("qr-hint").hidden = names.length === 0;
    $("qr-hint").textContent = names.length ? `Tab mentions ${names.map((id) => `@${id}`).join(", ")}` : "";
    return;
  }
  const token = slashToken();
  const matches = token ? quickReplies.filter((q) => q.shortcut.startsWith(token.prefix)).slice(0, 3) : [];
  $("qr-hint").hidden = matches.length === 0;
  $("qr-hint").textContent = matches.length ? `Tab inserts ${matches.map((q) => `/${q.shortcut}`).join(", ")}` : "";
}

$("input").addEventListener("keydown", (event) => {
  if (event.shiftKey || event.isComposing || (event.key !== "Tab" && event.key !== "Enter")) return;
  const mention = noteMode && event.key === "Tab" ? mentionToken() : null;
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

window.kfAgent = { get client() { return client; }, conversations: () => conversations, mentions: () => mentionsReceived }; // for debugging and the browser check

if (session) startConsole();
else showLogin();
