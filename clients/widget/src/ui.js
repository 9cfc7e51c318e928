// ui.js: the widget's DOM, inside a shadow root on its one host element.
//
// `WidgetUI` builds the launcher and the panel once, then `render(view)` brings them up to date with a plain
// view object computed by app.js (no framework). It owns the keyboard behaviour: Tab stays inside the open panel,
// Esc closes it and gives focus back to the launcher; Enter sends, Shift+Enter starts a new line.
import { applyStyles } from "./styles.js";

const SVG_NS = "http://www.w3.org/2000/svg";
// The server's limit on one pre-chat answer (UTF-8 bytes).
const MAX_ANSWER_BYTES = 1024;
const ICONS = {
  chat: "M12 3C6.5 3 2 6.8 2 11.5c0 2.4 1.2 4.6 3.1 6.1-.2 1.4-.9 2.8-2 3.9 2.1-.1 4-.8 5.5-2 1.1.3 2.2.5 3.4.5 5.5 0 10-3.8 10-8.5S17.5 3 12 3z",
  close: "M18.3 5.7a1 1 0 0 0-1.4 0L12 10.6 7.1 5.7a1 1 0 1 0-1.4 1.4l4.9 4.9-4.9 4.9a1 1 0 1 0 1.4 1.4l4.9-4.9 4.9 4.9a1 1 0 0 0 1.4-1.4L13.4 12l4.9-4.9a1 1 0 0 0 0-1.4z",
  minimise: "M6.7 9.3a1 1 0 0 1 1.4 0L12 13.2l3.9-3.9a1 1 0 1 1 1.4 1.4l-4.6 4.6a1 1 0 0 1-1.4 0l-4.6-4.6a1 1 0 0 1 0-1.4z",
  send: "M3.4 20.4 21.5 12.9a1 1 0 0 0 0-1.8L3.4 3.6a1 1 0 0 0-1.4 1.2L4.3 11 13 12l-8.7 1-2.3 6.2a1 1 0 0 0 1.4 1.2z",
  attach: "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5.5a3 3 0 0 1 6 0V16a1.5 1.5 0 0 1-3 0V6.5H9V16a3 3 0 0 0 6 0V5.5a4.5 4.5 0 0 0-9 0v11a6 6 0 0 0 12 0v-10z",
};

/**
 * Makes an element. `attrs` values of null/undefined/false are skipped; `on*` keys add listeners; `class` sets
 * className; `text` sets textContent.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Node | string | null | undefined | false | Array<any>)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") /** @type {any} */ (node)[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * An inline SVG icon.
 * @param {keyof typeof ICONS} name
 * @param {string} [cls]
 */
function icon(name, cls) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  if (cls) svg.setAttribute("class", cls);
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

/**
 * @typedef {object} UIHandlers
 * @property {() => void} toggle          the launcher was clicked
 * @property {() => void} close           minimise (header button, Esc)
 * @property {(text: string) => boolean} send   the composer's text; false keeps it in the box
 * @property {(active: boolean) => void} typing  the visitor types (throttled by app.js)
 * @property {() => void} endChat         the visitor confirmed "end chat"
 * @property {() => void} newConversation the "start a new conversation" button
 * @property {(score: number, comment: string) => void} rate  the rating form of a closed conversation
 * @property {(fields: Record<string,string>) => void} prechat  the pre-chat form, validated
 * @property {(message: string, email: string, fields: Record<string,string>) => void} offline  the offline form
 * @property {(email: string) => void} offlineEmail  the email asked for in an offline conversation
 * @property {() => void} retry           "try again" after an error
 * @property {() => void} gesture         any user gesture in the widget (unlocks sound)
 * @property {(file: File) => void} attach  a file the visitor picked to send
 * @property {(id: string) => Promise<{url: string, thumbnail_url?: string}>} fileLink  a download link of an attachment
 */

export class WidgetUI {
  /**
   * @param {{t: (key: string, ...args: any[]) => string, lang: string, position: string, color: string | null}} options
   * @param {UIHandlers} handlers
   */
  constructor(options, handlers) {
    this.t = options.t;
    this.handlers = handlers;
    this.host = document.createElement("kf-chat-widget");
    this.shadow = this.host.attachShadow({ mode: "open" });
    applyStyles(this.shadow);
    const t = this.t;

    this.badge = h("span", { class: "badge", "aria-hidden": "true", hidden: true });
    this.launcher = h(
      "button",
      { type: "button", class: "launcher", "aria-label": t("launcherOpen"), "aria-expanded": "false", "aria-controls": "kf-panel", part: "launcher" },
      icon("chat", "icon-chat"),
      icon("close", "icon-close"),
      this.badge,
    );
    this.launcher.addEventListener("click", () => {
      handlers.gesture();
      handlers.toggle();
    });

    this.title = h("h2", { class: "title", id: "kf-title" });
    this.subtitle = h("p", { class: "subtitle" });
    this.avatar = h("div", { class: "avatar", "aria-hidden": "true" });
    this.endButton = h("button", { type: "button", class: "icon-button end", hidden: true, text: t("endChat") });
    this.endButton.addEventListener("click", () => {
      this.confirmingEnd = true;
      this.rerender();
      const keep = this.shadow.querySelector(".confirm-keep");
      if (keep) /** @type {HTMLElement} */ (keep).focus();
    });
    const minimise = h("button", { type: "button", class: "icon-button minimise", "aria-label": t("minimise"), title: t("minimise") }, icon("minimise"));
    minimise.addEventListener("click", () => handlers.close());
    this.conn = h("div", { class: "conn", role: "status", hidden: true });
    this.messages = h("div", { class: "messages", role: "list", "aria-label": t("messagesLabel"), tabindex: "0" });
    this.form = h("div", { class: "form", hidden: true });
    this.errorBox = h("div", { class: "error-box", role: "alert", hidden: true });
    this.typingLine = h("div", { class: "typing", hidden: true });
    this.banner = h("div", { class: "banner", hidden: true });
    this.live = h("div", { class: "sr-only", "aria-live": "polite", "aria-atomic": "false" });
    this.input = /** @type {HTMLTextAreaElement} */ (
      h("textarea", { rows: "1", placeholder: t("inputPlaceholder"), "aria-label": t("inputLabel"), maxlength: "4000", enterkeyhint: "send" })
    );
    this.sendButton = /** @type {HTMLButtonElement} */ (h("button", { type: "submit", class: "send", "aria-label": t("send"), title: t("send") }, icon("send")));
    this.fileInput = /** @type {HTMLInputElement} */ (
      h("input", { type: "file", class: "file-input", accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf", hidden: true })
    );
    this.attachButton = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "attach", "aria-label": t("attachFile"), title: t("attachFile") }, icon("attach")));
    this.attachButton.addEventListener("click", () => this.fileInput.click());
    this.fileInput.addEventListener("change", () => {
      const file = this.fileInput.files && this.fileInput.files[0];
      this.fileInput.value = "";
      if (file) {
        handlers.gesture();
        handlers.attach(file);
      }
    });
    /** @type {Map<string, Promise<{url: string, thumbnail_url?: string}>>} links asked for, by attachment id */
    this.links = new Map();
    this.composer = h("form", { class: "composer", autocomplete: "off" }, this.attachButton, this.fileInput, this.input, this.sendButton);
    this.wireComposer();

    this.panel = h(
      "section",
      { class: "panel", id: "kf-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "kf-title", hidden: true, part: "panel" },
      h("header", { class: "header" }, this.avatar, h("div", { class: "titles" }, this.title, this.subtitle), this.endButton, minimise),
      this.conn,
      this.errorBox,
      this.messages,
      this.form,
      this.typingLine,
      this.banner,
      this.composer,
      h("div", { class: "brand", text: t("poweredBy") }),
      this.live,
    );
    this.panel.addEventListener("keydown", (event) => this.keydown(event));
    this.panel.addEventListener("pointerdown", () => handlers.gesture());

    this.root = h("div", { class: "root", "data-position": options.position === "left" ? "left" : "right", "data-open": "false", lang: options.lang, dir: "ltr" }, this.panel, this.launcher);
    if (options.color) {
      this.root.style.setProperty("--kf-accent", options.color);
      this.root.style.setProperty("--kf-accent-text", readableOn(options.color));
    }
    this.shadow.append(this.root);
    /** @type {string | null} which form is built (so typing in it survives re-renders) */
    this.formKey = null;
    /** @type {string} the error shown */
    this.errorKey = "";
    /** @type {string} what the banner shows */
    this.bannerKey = "";
    this.confirmingEnd = false;
    this.lastView = null;
    this.lastMessagesKey = "";
  }

  /** Puts the host element at the end of <body> (once). */
  mount() {
    const attach = () => document.body.append(this.host);
    if (document.body) attach();
    else document.addEventListener("DOMContentLoaded", attach, { once: true });
  }

  wireComposer() {
    const autosize = () => {
      this.input.style.height = "auto";
      this.input.style.height = `${Math.min(this.input.scrollHeight, 120)}px`;
    };
    const submit = () => {
      const text = this.input.value.trim();
      if (!text) return;
      this.handlers.gesture();
      if (!this.handlers.send(text)) return;
      this.input.value = "";
      autosize();
      this.handlers.typing(false);
    };
    this.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });
    this.input.addEventListener("input", () => {
      autosize();
      this.handlers.typing(this.input.value.trim() !== "");
    });
  }

  /** @param {KeyboardEvent} event */
  keydown(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      if (this.confirmingEnd) {
        this.confirmingEnd = false;
        this.rerender();
        this.endButton.focus();
        return;
      }
      this.handlers.close();
      return;
    }
    if (event.key !== "Tab") return;
    // Focus stays inside the open panel: Tab from the last control goes to the first, Shift+Tab the other way.
    const focusable = this.focusables();
    if (focusable.length === 0) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    const active = this.shadow.activeElement;
    if (event.shiftKey && (active === first || !this.panel.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && active === last) {
      event.preventDefault();
      first.focus();
    }
  }

  /** @returns {HTMLElement[]} the panel's visible, enabled controls in document order */
  focusables() {
    const nodes = this.panel.querySelectorAll("button, textarea, input, select, [tabindex]:not([tabindex='-1'])");
    return /** @type {HTMLElement[]} */ (Array.from(nodes)).filter((node) => {
      const el = /** @type {HTMLElement & {disabled?: boolean}} */ (node);
      return !el.disabled && el.getClientRects().length > 0;
    });
  }

  /** Moves focus into the panel: the composer, else the form's first field, else the panel's first control. */
  focusPanel() {
    const target =
      (!this.composer.hidden && !this.input.disabled && this.input) ||
      /** @type {HTMLElement | null} */ (this.form.hidden ? null : this.form.querySelector("input, textarea, select")) ||
      this.focusables()[0];
    if (target) target.focus({ preventScroll: true });
  }

  focusLauncher() {
    this.launcher.focus({ preventScroll: true });
  }

  /** Says `text` to screen readers (the polite live region). @param {string} text */
  announce(text) {
    const line = h("div", { text });
    this.live.append(line);
    while (this.live.childNodes.length > 5) this.live.firstChild && this.live.firstChild.remove();
  }

  rerender() {
    if (this.lastView) this.render(this.lastView);
  }

  /**
   * Brings the DOM up to date.
   * @param {any} view (see app.js `view()`)
   */
  render(view) {
    this.lastView = view;
    const t = this.t;
    this.root.dataset.open = view.open ? "true" : "false";
    this.panel.hidden = !view.open;
    this.launcher.setAttribute("aria-expanded", view.open ? "true" : "false");
    const unreadText = view.unread > 0 ? `, ${t("unreadLabel", view.unread)}` : "";
    this.launcher.setAttribute("aria-label", (view.open ? t("launcherClose") : t("launcherOpen")) + unreadText);
    this.badge.hidden = view.open || view.unread <= 0;
    this.badge.textContent = view.unread > 99 ? "99+" : String(view.unread);

    this.title.textContent = view.team;
    this.avatar.textContent = (view.agentName || view.team || "?").trim().charAt(0).toUpperCase();
    this.subtitle.textContent = view.subtitle;
    this.endButton.hidden = !view.canEnd;

    this.conn.hidden = !view.connection;
    this.conn.textContent = view.connection || "";

    this.errorBox.hidden = !view.error;
    const errorKey = view.error ? `${view.error}|${view.retry}` : "";
    if (errorKey !== this.errorKey) {
      this.errorKey = errorKey;
      this.errorBox.replaceChildren();
    }
    if (view.error && !this.errorBox.firstChild) {
      this.errorBox.append(h("div", { text: view.error }));
      if (view.retry) {
        const retry = h("button", { type: "button", class: "button", text: t("retry") });
        retry.style.marginTop = "10px";
        retry.addEventListener("click", () => this.handlers.retry());
        this.errorBox.append(retry);
      }
    }

    // The form (pre-chat / offline) or the transcript.
    const formKey = view.form ? `${view.form.kind}:${view.form.key}` : null;
    if (formKey !== this.formKey) {
      this.formKey = formKey;
      this.form.replaceChildren();
      if (view.form) this.form.append(...this.buildForm(view.form));
    }
    this.form.hidden = !view.form;
    this.messages.hidden = !!view.form || !!view.error;
    if (!this.messages.hidden) this.renderMessages(view.items);

    this.typingLine.hidden = !view.typing;
    this.typingLine.textContent = view.typing || "";

    this.renderBanner(view);
    this.composer.hidden = !view.composer;
    this.input.disabled = !view.composer;
    this.sendButton.disabled = !view.composer;
    this.attachButton.disabled = !view.composer || !view.canAttach;
  }

  /**
   * The nodes of a message's attachments: images inline (their thumbnail, a link to the full image), other files
   * as links. The signed links are asked for once per attachment and filled in when they come.
   * @param {any[]} attachments
   */
  attachmentNodes(attachments) {
    return attachments.map((/** @type {any} */ a) => {
      const label = `${a.name} (${formatSize(a.size)})`;
      const image = a.content_type && a.content_type.startsWith("image/");
      const img = image ? h("img", { class: "attachment-image", alt: a.name, width: a.width || null, height: a.height || null }) : null;
      // A picture grows the list when it loads: keep the newest message in view.
      if (img) img.addEventListener("load", () => (this.messages.scrollTop = this.messages.scrollHeight));
      const link = h("a", { class: image ? "attachment image" : "attachment file", target: "_blank", rel: "noopener", "data-attachment-id": a.id }, img || label);
      if (!this.links.has(a.id)) this.links.set(a.id, this.handlers.fileLink(a.id));
      const asked = /** @type {Promise<{url: string, thumbnail_url?: string}>} */ (this.links.get(a.id));
      asked.then(
        (got) => {
          link.setAttribute("href", got.url);
          if (img) img.setAttribute("src", got.thumbnail_url || got.url);
        },
        () => this.links.delete(a.id),
      );
      return link;
    });
  }

  /** @param {any[]} items */
  renderMessages(items) {
    const key = JSON.stringify(items);
    if (key === this.lastMessagesKey) return;
    this.lastMessagesKey = key;
    const list = this.messages;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const nodes = items.map((item) => {
      if (item.kind === "system") return h("div", { class: item.intro ? "system intro" : "system", role: "listitem", text: item.text });
      const meta = item.meta ? h("div", { class: `meta${item.seen ? " seen" : ""}`, text: item.meta }) : null;
      return h(
        "div",
        {
          class: `message ${item.mine ? "mine" : "theirs"}${item.pending ? " pending" : ""}${item.failed ? " failed" : ""}`,
          role: "listitem",
          "data-seq": item.seq || null,
          "data-client-id": item.clientId || null,
        },
        !item.mine && item.author ? h("div", { class: "author", text: item.author }) : null,
        h("div", { class: "bubble", text: item.text, hidden: !item.text }),
        item.attachments && item.attachments.length ? h("div", { class: "attachments" }, ...this.attachmentNodes(item.attachments)) : null,
        meta,
      );
    });
    list.replaceChildren(...nodes);
    if (nearBottom || items.length <= 1) list.scrollTop = list.scrollHeight;
  }

  /** @param {any} view */
  renderBanner(view) {
    const t = this.t;
    const banner = this.banner;
    // Rebuilt only when what it shows changes (the email box keeps its text and focus across renders).
    const key =
      this.confirmingEnd && view.canEnd
        ? "confirm"
        : view.closed
          ? `closed:${view.rating ? view.rating.state : ""}`
          : view.askEmail ? "email" : view.notice ? `notice:${view.noticeId}:${view.notice}` : "";
    if (key === this.bannerKey) return;
    this.bannerKey = key;
    banner.replaceChildren();
    let show = true;
    if (this.confirmingEnd && view.canEnd) {
      const yes = h("button", { type: "button", class: "button danger", text: t("endChatYes") });
      const no = h("button", { type: "button", class: "button confirm-keep", text: t("endChatNo") });
      yes.addEventListener("click", () => {
        this.confirmingEnd = false;
        this.handlers.endChat();
      });
      no.addEventListener("click", () => {
        this.confirmingEnd = false;
        this.rerender();
        this.focusPanel();
      });
      banner.append(h("div", { text: t("endChatConfirm") }), h("div", { class: "row" }, yes, no));
    } else if (view.closed) {
      const again = h("button", { type: "button", class: "button primary new-conversation", text: t("newConversation") });
      again.addEventListener("click", () => this.handlers.newConversation());
      const rating = view.rating || null;
      const state = rating ? rating.state : null;
      const nodes = [h("div", { class: "closed-notice", text: t("closedNotice") })];
      if (state === "form" || state === "sending" || state === "failed") nodes.push(this.buildRating(rating));
      else if (state === "done") nodes.push(h("div", { class: "rate-thanks", role: "status", text: t("rateThanks") }));
      else if (state === "refused") nodes.push(h("div", { class: "rate-note", text: t("rateClosed") }));
      nodes.push(h("div", { class: "row" }, again));
      banner.append(...nodes);
    } else if (view.askEmail) {
      const input = /** @type {HTMLInputElement} */ (h("input", { type: "email", "aria-label": t("offlineEmail"), placeholder: t("offlineEmail"), autocomplete: "email" }));
      const save = h("button", { type: "button", class: "button", text: t("offlineSaveEmail") });
      const submit = () => {
        const email = input.value.trim();
        if (!isEmail(email)) {
          input.setAttribute("aria-invalid", "true");
          input.focus();
          return;
        }
        this.handlers.offlineEmail(email);
      };
      save.addEventListener("click", submit);
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          submit();
        }
      });
      banner.append(h("div", { text: t("offlineAskEmail") }), h("div", { class: "row" }, input, save));
    } else if (view.notice) {
      banner.append(h("div", { class: "notice", id: view.noticeId || null, text: view.notice }));
    } else {
      show = false;
    }
    this.confirmingEnd = this.confirmingEnd && view.canEnd;
    banner.hidden = !show;
  }

  /**
   * The rating form of a closed conversation: five stars, an optional comment, one submit (protocol §7.19).
   * @param {{state: string, score: number, comment: string}} rating what was chosen, while it is sent or after it failed
   * @returns {HTMLElement}
   */
  buildRating(rating) {
    const t = this.t;
    const sending = rating.state === "sending";
    let score = rating.score || 0;
    const stars = [1, 2, 3, 4, 5].map((n) =>
      h("button", { type: "button", class: "star", "aria-label": t("rateStar", n), "aria-pressed": "false", "data-score": String(n), text: "★" }),
    );
    const comment = /** @type {HTMLTextAreaElement} */ (
      // 333 UTF-16 units are at most 999 bytes of UTF-8: within the server's 1 000.
      h("textarea", { class: "rate-comment", rows: "2", maxlength: "333", placeholder: t("rateComment"), "aria-label": t("rateComment") })
    );
    comment.value = rating.comment || "";
    const submit = /** @type {HTMLButtonElement} */ (h("button", { type: "submit", class: "button primary rate-submit", text: sending ? t("rateSending") : t("rateSubmit") }));
    const paint = () => {
      stars.forEach((star, i) => {
        star.setAttribute("aria-pressed", String(i < score));
        star.classList.toggle("on", i < score);
      });
      submit.disabled = sending || score === 0;
    };
    stars.forEach((star, i) =>
      star.addEventListener("click", () => {
        if (sending) return;
        score = i + 1;
        paint();
      }),
    );
    paint();
    comment.disabled = sending;
    const form = h(
      "form",
      { class: "rating", "aria-label": t("rateTitle") },
      h("div", { class: "rate-title", text: t("rateTitle") }),
      h("div", { class: "stars", role: "group", "aria-label": t("rateTitle") }, stars),
      comment,
      rating.state === "failed" ? h("div", { class: "rate-error", role: "alert", text: t("rateFailed") }) : null,
      h("div", { class: "row" }, submit),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (sending || score === 0) return;
      this.handlers.rate(score, comment.value);
    });
    return form;
  }

  /**
   * The pre-chat or offline form's nodes.
   * @param {{kind: "prechat" | "offline", fields: any[], intro: string[], note?: string | null, values: Record<string,string>}} form
   * @returns {Node[]}
   */
  buildForm(form) {
    const t = this.t;
    /** @type {{spec: any, control: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, wrap: HTMLElement, error: HTMLElement}[]} */
    const controls = [];
    const nodes = [];
    form.intro.forEach((line, i) => nodes.push(h("p", { class: `intro${i === 0 && form.kind === "offline" ? " title" : ""}`, text: line })));
    if (form.note) nodes.push(h("p", { class: "note", text: form.note }));
    for (const spec of form.fields) {
      const id = `kf-field-${form.kind}-${spec.name}`;
      const errorId = `${id}-error`;
      /** @type {any} */
      let control;
      const common = { id, name: spec.name, required: !!spec.required, "aria-required": spec.required ? "true" : "false", "aria-describedby": errorId };
      if (spec.kind === "textarea") control = h("textarea", { ...common, rows: "4", maxlength: "4000" });
      else if (spec.kind === "select") {
        control = h("select", common, h("option", { value: "", text: t("selectPlaceholder") }), (spec.options || []).map((/** @type {string} */ o) => h("option", { value: o, text: o })));
      } else {
        control = h("input", { ...common, type: spec.kind === "email" ? "email" : "text", autocomplete: spec.kind === "email" ? "email" : spec.name === "name" ? "name" : "off", maxlength: "256" });
      }
      if (form.values && form.values[spec.name]) control.value = form.values[spec.name];
      const error = h("div", { class: "error", id: errorId, hidden: true });
      const label = h("label", { for: id }, spec.label || spec.name, h("span", { class: "hint", text: spec.required ? `(${t("required")})` : `(${t("optional")})` }));
      const wrap = h("div", { class: "field", "data-field": spec.name }, label, control, error);
      controls.push({ spec, control, wrap, error });
      nodes.push(wrap);
    }
    const submit = h("button", { type: "submit", class: "button primary", text: form.kind === "offline" ? t("offlineSubmit") : t("prechatSubmit") });
    const element = h("form", { class: "form-inner", novalidate: true }, nodes, submit);
    element.style.display = "flex";
    element.style.flexDirection = "column";
    element.style.gap = "12px";
    element.addEventListener("submit", (event) => {
      event.preventDefault();
      this.handlers.gesture();
      /** @type {Record<string,string>} */
      const values = {};
      let firstInvalid = null;
      for (const { spec, control, wrap, error } of controls) {
        const value = control.value.trim();
        let problem = "";
        if (spec.required && !value) problem = t("fieldRequired", spec.label || spec.name);
        else if (value && spec.kind === "email" && !isEmail(value)) problem = t("fieldEmail", spec.label || spec.name);
        else if (!spec.name.startsWith("__") && new TextEncoder().encode(value).length > MAX_ANSWER_BYTES) problem = t("fieldTooLong", spec.label || spec.name);
        wrap.dataset.invalid = problem ? "true" : "false";
        control.setAttribute("aria-invalid", problem ? "true" : "false");
        error.hidden = !problem;
        error.textContent = problem;
        if (problem && !firstInvalid) firstInvalid = control;
        if (value) values[spec.name] = value;
      }
      if (firstInvalid) {
        firstInvalid.focus();
        return;
      }
      if (form.kind === "offline") {
        const { __message: message = "", __email: email = "", ...fields } = values;
        this.handlers.offline(message, email, fields);
      } else this.handlers.prechat(values);
    });
    return [element];
  }
}

/** @param {string} value */
export function isEmail(value) {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value);
}

/**
 * Black or white text, whichever reads better on `color` (any CSS colour the browser understands).
 * @param {string} color
 */
function readableOn(color) {
  try {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 1;
    const ctx = canvas.getContext("2d");
    if (!ctx) return "#ffffff";
    ctx.fillStyle = color;
    ctx.fillRect(0, 0, 1, 1);
    const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
    const luminance = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    return luminance > 0.62 ? "#1d2130" : "#ffffff";
  } catch {
    return "#ffffff";
  }
}

/**
 * A file size for people: 532 B, 48 KB, 2.1 MB.
 * @param {number} bytes
 */
function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

