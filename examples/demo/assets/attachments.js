// Files in the agent console (protocol §23): attachments shown in messages (pictures inline, other files as
// links), and files pasted or dropped on the composer, previewed, then uploaded and sent. agent.js calls
// `attachmentNodes` when it renders a message and `wireAttachments` once.
import { el, toast } from "./ui.js";

/** @type {Map<string, Promise<{url: string, thumbnail_url?: string}>>} signed links asked for, by attachment id */
const links = new Map();

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * The nodes of a message's attachments. Links expire after minutes: one that fails is asked for again at the next
 * render.
 * @param {any} client the KfClient
 * @param {any[]} attachments
 */
export function attachmentNodes(client, attachments) {
  if (!client || !attachments || attachments.length === 0) return [];
  const nodes = attachments.map((a) => {
    const image = typeof a.content_type === "string" && a.content_type.startsWith("image/");
    const img = image ? el("img", { class: "attachment-image", alt: a.name }) : null;
    const link = el(
      "a",
      { class: image ? "attachment image" : "attachment file", target: "_blank", rel: "noopener", "data-attachment-id": a.id },
      img || `📄 ${a.name} (${formatSize(a.size)})`,
    );
    if (!links.has(a.id)) links.set(a.id, client.fileLink(a.id));
    links.get(a.id).then(
      (got) => {
        link.href = got.url;
        if (img) img.src = got.thumbnail_url || got.url;
      },
      () => links.delete(a.id),
    );
    return link;
  });
  return [el("div", { class: "attachments" }, ...nodes)];
}

/**
 * Paste (an image copied to the clipboard) and drag-and-drop of files on the composer: the file is previewed above
 * the composer with Send and Cancel; Send uploads it and sends it as a message of its own.
 * @param {{ client: () => any, conversation: () => string | null, sent: () => void }} hooks
 */
export function wireAttachments(hooks) {
  const composer = document.getElementById("composer");
  const input = document.getElementById("input");
  if (!composer || !input) return;
  const preview = el("div", { class: "attach-preview", id: "attach-preview", hidden: true });
  composer.before(preview);
  /** @type {File | null} */
  let chosen = null;
  let objectUrl = "";

  const clear = () => {
    chosen = null;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = "";
    preview.replaceChildren();
    preview.hidden = true;
  };

  const show = (/** @type {File} */ file) => {
    clear();
    chosen = file;
    const isImage = file.type.startsWith("image/");
    if (isImage) objectUrl = URL.createObjectURL(file);
    const send = el("button", { type: "button", class: "primary", id: "attach-send" }, "Send file");
    const cancel = el("button", { type: "button", id: "attach-cancel" }, "Cancel");
    send.addEventListener("click", () => upload(send));
    cancel.addEventListener("click", clear);
    preview.append(
      isImage ? el("img", { src: objectUrl, alt: file.name }) : el("span", { class: "attach-icon" }, "📄"),
      el("span", { class: "attach-name" }, `${file.name || "pasted image"} (${formatSize(file.size)})`),
      send,
      cancel,
    );
    preview.hidden = false;
  };

  const upload = async (/** @type {HTMLButtonElement} */ button) => {
    const client = hooks.client();
    const conversation = hooks.conversation();
    if (!client || !conversation || !chosen) return;
    button.disabled = true;
    button.textContent = "Sending…";
    try {
      const name = chosen.name || `pasted-${Date.now()}.png`;
      const attachment = await client.upload(conversation, chosen, name);
      client.sendMessage(conversation, "", [attachment.id]);
      clear();
      hooks.sent();
    } catch (error) {
      toast(`Not sent: ${error && error.message ? error.message : error}`);
      button.disabled = false;
      button.textContent = "Send file";
    }
  };

  const firstFile = (/** @type {DataTransfer | null} */ data) => {
    if (!data) return null;
    for (const item of data.files || []) return item;
    return null;
  };
  input.addEventListener("paste", (event) => {
    const file = firstFile(event.clipboardData);
    if (!file || !hooks.conversation()) return;
    event.preventDefault();
    show(file);
  });
  for (const target of [composer, document.getElementById("messages")]) {
    if (!target) continue;
    target.addEventListener("dragover", (event) => {
      if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) {
        event.preventDefault();
        composer.classList.add("dropping");
      }
    });
    target.addEventListener("dragleave", () => composer.classList.remove("dropping"));
    target.addEventListener("drop", (event) => {
      composer.classList.remove("dropping");
      const file = firstFile(event.dataTransfer);
      if (!file || !hooks.conversation()) return;
      event.preventDefault();
      show(file);
    });
  }
}
