// panel.js: the console's side panel — the visitor's context (source, device, page trail, earlier conversations,
// each opening read-only), the conversation's labels and typed attributes, its rating and its private notes.
// agent.js owns the state; this module draws from it and sends the edits through `configurePanel`'s `requestNow`.
import { el, timeOf, titleCase, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);

// The tenant's labels ([{name, color}]) and declared attributes ([{object, key, kind, name?}]), from `definitions`.
export const definitions = { labels: [], attributes: [] };
let request = () => false;

export function configurePanel({ requestNow }) {
  request = requestNow;
}

// The visitor context panel: where the visitor came from, with what, the pages seen and earlier conversations.
export function contextView(reply, online, openPast) {
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
  nodes.push(el("div", { class: "panel-subtitle" }, `Other conversations of this visitor (${past.length})`));
  if (past.length) {
    nodes.push(
      // Each opens read-only in a tab of its own: its whole log, its notes and its rating.
      el(
        "ul",
        { class: "past" },
        ...past.map((c) =>
          el(
            "li",
            { "data-conversation": c.id },
            el(
              "button",
              { type: "button", class: "past-open", title: "Open this conversation (read only)", onclick: () => openPast(c) },
              el("span", { class: `badge ${c.status}` }, c.status.replace("_", " ")),
              ` ${new Date(c.created_at).toLocaleDateString()} ${timeOf(c.created_at)}${c.last_agent ? ` · ${titleCase(c.last_agent)}` : ""}`,
              c.rating ? el("span", { class: "rating-badge" }, ` ★${c.rating}`) : null,
            ),
          ),
        ),
      ),
    );
  }
  return nodes;
}

// ---- labels and attributes ----

function labelColor(name) {
  const known = definitions.labels.find((label) => label.name === name);
  return known ? known.color : "#6b7185"; // a label deleted since: grey
}

export function labelChip(name, onRemove) {
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
export function drawLabels(record) {
  const labels = record.labels || [];
  const key = JSON.stringify([record.id, labels, definitions.labels]);
  if (key === drawnLabels) return;
  drawnLabels = key;
  $("label-chips").replaceChildren(...labels.map((name) => labelChip(name, () => unlabel(record.id, name))));
  const free = definitions.labels.filter((label) => !labels.includes(label.name));
  $("label-add").replaceChildren(el("option", { value: "" }, "+ Label"), ...free.map((label) => el("option", { value: label.name }, label.name)));
  $("label-add").hidden = free.length === 0;
}

export function addLabel(conversation, label) {
  request({ type: "label", id: `label:${conversation}`, conversation, client_id: crypto.randomUUID(), label });
}

function unlabel(conversation, label) {
  request({ type: "unlabel", id: `unlabel:${conversation}`, conversation, client_id: crypto.randomUUID(), label });
}

export function attributeName(object, key) {
  const known = definitions.attributes.find((d) => d.object === object && d.key === key);
  return (known && known.name) || key;
}

export function valueText(value) {
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
    request({ type: "set_attribute", id: `attr:${conversation}`, conversation, client_id: crypto.randomUUID(), object: definition.object, key: definition.key, value: next });
  });
  return [el("label", { for: id }, definition.name || definition.key), input];
}

let drawnAttributes = null;
export function drawAttributes(record, context) {
  const visitorValues = (context && !context.error && context.attributes) || {};
  const conversationValues = record.attributes || {};
  const key = JSON.stringify([record.id, definitions.attributes, visitorValues, conversationValues]);
  if (key === drawnAttributes) return;
  drawnAttributes = key;
  const nodes = [];
  for (const [object, title, values] of [
    ["visitor", "Visitor", visitorValues],
    ["conversation", "Conversation", conversationValues],
  ]) {
    const declared = definitions.attributes.filter((d) => d.object === object);
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

// The conversation's rating (stars and comment, once the visitor rated it) and its private notes, newest last;
// a click on a note shows it in the transcript.
let drawnWorkspace = null;
export function drawWorkspace(entry, { isMine, showNote }) {
  const rated = entry.events.findLast((e) => e.data.type === "rated");
  const notes = entry.events.filter((e) => e.data.type === "note");
  const key = JSON.stringify([entry.record.id, entry.record.rating, rated && rated.seq, notes.map((n) => n.seq)]);
  if (key === drawnWorkspace) return;
  drawnWorkspace = key;
  const score = rated ? Number(rated.data.score) : entry.record.rating;
  const nodes = [
    score
      ? el(
          "div",
          { class: "panel-rating", "data-score": String(score) },
          el("span", { class: "rating-stars", "aria-label": `${score} of 5 stars` }, "★".repeat(score) + "☆".repeat(5 - score)),
          ` ${score}/5`,
          rated && rated.data.comment ? el("div", { class: "rating-comment" }, `“${rated.data.comment}”`) : null,
        )
      : el("div", { class: "muted" }, entry.record.status === "closed" ? "Not rated." : "Not rated yet: the visitor can rate it once it is closed."),
    el("div", { class: "panel-subtitle" }, `Private notes (${notes.length})`),
  ];
  if (!notes.length) nodes.push(el("div", { class: "muted" }, "None. Tick “Note” in the reply box (Alt+N) to write one."));
  else {
    nodes.push(
      el(
        "ul",
        { class: "panel-notes" },
        ...notes.map((note) =>
          el(
            "li",
            { "data-seq": String(note.seq) },
            el("button", { type: "button", class: "note-link", title: "Show it in the transcript", onclick: () => showNote(note.seq) }, note.data.text),
            el("span", { class: "muted" }, ` · ${isMine(note.author) ? "you" : titleCase(note.author.id)}, ${timeOf(note.at)}`),
          ),
        ),
      ),
    );
  }
  $("workspace-body").replaceChildren(...nodes);
}
