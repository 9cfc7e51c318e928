// records.js: what the console makes of a conversation's events — its record as they change it (state, owner,
// labels, attributes, rating), and the line the transcript shows for each event that is not a message.
import { timeOf, titleCase } from "./ui.js";
import { attributeName, valueText } from "./panel.js";

// The record after `event` (the server sends records only on assignment; events keep ours current).
export function applyEvent(before, event) {
  const kind = event.data.type;
  const record = { ...before };
  if (kind === "rated") record.rating = event.data.score;
  if (kind === "labeled") {
    record.labels = [...new Set([...(record.labels || []), event.data.label])].sort();
  } else if (kind === "unlabeled") {
    record.labels = (record.labels || []).filter((label) => label !== event.data.label);
  } else if (kind === "attribute_set" && event.data.object === "conversation") {
    record.attributes = { ...(record.attributes || {}) };
    if (event.data.value) record.attributes[event.data.key] = event.data.value;
    else delete record.attributes[event.data.key];
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
  return record;
}

export function untilText(ms) {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return today ? timeOf(ms) : `${date.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })} ${timeOf(ms)}`;
}

// The transcript line of an event that is not a message; `me`: this agent's id.
export function systemText(event, me) {
  const who = event.author.role === "agent" ? (event.author.id === me ? "You" : titleCase(event.author.id)) : event.author.role === "visitor" ? "The visitor" : null;
  switch (event.data.type) {
    case "created":
      return `Conversation started (${event.data.group})`;
    case "assigned":
      return event.data.agent === me ? "Assigned to you" : `Assigned to ${titleCase(event.data.agent)}`;
    case "closed":
      return who ? `${who} closed the conversation` : "The conversation was closed";
    case "reopened":
      return "The conversation was reopened";
    case "transferred": {
      const to = event.data.agent ? (event.data.agent === me ? "you" : titleCase(event.data.agent)) : `the ${event.data.group} queue`;
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
