// ui.js: small DOM helpers shared by the demo pages (visitor.js, agent.js). Demo-only: the protocol client is the
// kf-client package (clients/js), served by the kf-widget crate at /widget/client/index.js.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function titleCase(id) {
  return id ? id.charAt(0).toUpperCase() + id.slice(1) : "";
}

// Coalesces redraws: the returned function schedules `draw` once for the next animation frame.
export function renderer(draw) {
  let frame = 0;
  return () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      draw();
    });
  };
}

// Shows a short notice in the page's #toast element for 5 s.
let toastTimer = null;
export function toast(text) {
  const node = document.getElementById("toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (node.hidden = true), 5000);
}

// Shows the client's connection status in the page's #status element; `stoppedLabel` names the stopped state.
export function showStatus(status, detail, stoppedLabel = "stopped") {
  const node = document.getElementById("status");
  node.dataset.state = status;
  let text = { connecting: "connecting…", online: "online", offline: "offline", stopped: stoppedLabel }[status] || status;
  if (status === "offline" && detail && detail.retryInMs !== undefined) text = `offline · retrying in ${Math.ceil(detail.retryInMs / 1000)} s`;
  else if (status === "offline") text = "offline · reconnecting…";
  node.querySelector(".status-text").textContent = text;
  node.title = detail && detail.why ? detail.why : status;
}

// Wires the page's #composer form and its #input: Enter sends (Shift+Enter starts a new line), the box grows with
// its text up to `maxHeight` pixels, typing signals follow the input. `send(text)` returns false when it cannot
// send now, and the text stays in the box.
export function wireComposer({ maxHeight, typingSignal, send }) {
  const input = document.getElementById("input");
  const autosize = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, maxHeight)}px`;
  };
  const submit = () => {
    const text = input.value.trim();
    if (!text || !send(text)) return;
    input.value = "";
    autosize();
    typingSignal.stop();
  };
  document.getElementById("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", () => {
    autosize();
    if (input.value.trim()) typingSignal.input();
    else typingSignal.stop();
  });
}

// Typing signals: "active" at most every 3 s while typing, "inactive" 4 s after the last keystroke or on send.
export class TypingSignal {
  constructor(send) {
    this.send = send;
    this.active = false;
    this.lastSent = 0;
    this.idle = null;
  }

  input() {
    const now = Date.now();
    if (!this.active || now - this.lastSent > 3000) {
      this.active = true;
      this.lastSent = now;
      this.send(true);
    }
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stop(), 4000);
  }

  stop() {
    clearTimeout(this.idle);
    if (this.active) {
      this.active = false;
      this.send(false);
    }
  }
}
