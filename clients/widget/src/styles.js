// styles.js: the widget's stylesheet, applied inside its shadow root (a constructed stylesheet where the browser
// has them, which no Content-Security-Policy `style-src` blocks; else a <style> element). Nothing here can reach
// the host page, and `:host { all: initial !important }` keeps the host page's rules for `*`, `div` etc. off the
// widget's host element, whose inherited properties (font, colour, line height…) would otherwise flow in.

/**
 * The CSS text. `--kf-accent` is the brand colour (`data-color`).
 * @type {string}
 */
export const CSS = `
:host {
  all: initial !important;
  display: block !important;
  position: fixed !important;
  inset: auto !important;
  width: 0 !important;
  height: 0 !important;
  margin: 0 !important;
  padding: 0 !important;
  border: 0 !important;
  transform: none !important;
  filter: none !important;
  contain: none !important;
  z-index: 2147483000 !important;
  visibility: visible !important;
  opacity: 1 !important;
}
.root {
  --kf-accent: #4f46e5;
  --kf-accent-text: #ffffff;
  --kf-bg: #ffffff;
  --kf-text: #1d2130;
  --kf-muted: #656b80;
  --kf-line: #e3e6ef;
  --kf-theirs: #f0f2f7;
  --kf-danger: #c52a3d;
  --kf-ok: #1f9d63;
  --kf-radius: 16px;
  --kf-shadow: 0 12px 40px rgba(20, 24, 50, 0.18), 0 2px 8px rgba(20, 24, 50, 0.08);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans CJK SC",
    "PingFang SC", "Microsoft YaHei", sans-serif;
  font-size: 15px;
  font-weight: 400;
  line-height: 1.4;
  color: var(--kf-text);
  text-align: left;
  letter-spacing: normal;
  -webkit-font-smoothing: antialiased;
}
.root *, .root *::before, .root *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button, input, textarea, select {
  font: inherit;
  color: inherit;
  letter-spacing: inherit;
  margin: 0;
}
button { cursor: pointer; }
:focus-visible { outline: 2px solid var(--kf-accent); outline-offset: 2px; }
.sr-only {
  position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}

/* launcher */
.launcher {
  position: fixed;
  bottom: 20px;
  right: 20px;
  width: 60px;
  height: 60px;
  padding: 0;
  border: 0;
  border-radius: 50%;
  background: var(--kf-accent);
  color: var(--kf-accent-text);
  box-shadow: var(--kf-shadow);
  display: flex;
  align-items: center;
  justify-content: center;
  transition: transform 0.15s ease;
}
.root[data-position="left"] .launcher { right: auto; left: 20px; }
.launcher:hover { transform: scale(1.05); }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.launcher .icon-close { display: none; }
.root[data-open="true"] .launcher .icon-chat { display: none; }
.root[data-open="true"] .launcher .icon-close { display: block; }
.badge {
  position: absolute;
  top: -2px;
  right: -2px;
  min-width: 22px;
  height: 22px;
  padding: 0 6px;
  border-radius: 11px;
  background: var(--kf-danger);
  color: #fff;
  font-size: 12px;
  font-weight: 700;
  line-height: 22px;
  text-align: center;
  box-shadow: 0 0 0 2px #fff;
}

/* panel */
.panel {
  position: fixed;
  bottom: 96px;
  right: 20px;
  width: 380px;
  height: min(620px, calc(100vh - 120px));
  max-height: calc(100vh - 120px);
  display: flex;
  flex-direction: column;
  background: var(--kf-bg);
  border-radius: var(--kf-radius);
  box-shadow: var(--kf-shadow);
  overflow: hidden;
}
.root[data-position="left"] .panel { right: auto; left: 20px; }

.header {
  display: flex;
  align-items: center;
  gap: 12px;
  padding: 14px 12px 14px 16px;
  background: var(--kf-accent);
  color: var(--kf-accent-text);
  flex: none;
}
.avatar {
  flex: none;
  width: 38px;
  height: 38px;
  border-radius: 50%;
  background: rgba(255, 255, 255, 0.22);
  display: flex;
  align-items: center;
  justify-content: center;
  font-weight: 700;
  font-size: 16px;
}
.titles { flex: 1; min-width: 0; }
.title { margin: 0; font-size: 16px; font-weight: 700; line-height: 1.25; }
.subtitle { margin: 2px 0 0; font-size: 12.5px; opacity: 0.88; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.icon-button {
  flex: none;
  border: 0;
  background: transparent;
  color: inherit;
  width: 34px;
  height: 34px;
  padding: 0;
  border-radius: 8px;
  display: flex;
  align-items: center;
  justify-content: center;
  opacity: 0.9;
}
.icon-button:hover { background: rgba(255, 255, 255, 0.16); opacity: 1; }
.icon-button svg { width: 20px; height: 20px; fill: currentColor; }
.header .end {
  width: auto;
  padding: 0 8px;
  font-size: 12.5px;
  font-weight: 600;
  border: 1px solid rgba(255, 255, 255, 0.45);
  height: 28px;
}

.conn {
  flex: none;
  padding: 6px 14px;
  font-size: 12.5px;
  background: #fff6e0;
  color: #7a5200;
  border-bottom: 1px solid #f3e2b5;
}

.messages {
  flex: 1;
  min-height: 0;
  overflow-y: auto;
  padding: 16px 14px 8px;
  display: flex;
  flex-direction: column;
  gap: 8px;
  background: var(--kf-bg);
}
.message { display: flex; flex-direction: column; max-width: 82%; }
.message.mine { align-self: flex-end; align-items: flex-end; }
.message.theirs { align-self: flex-start; align-items: flex-start; }
.author { font-size: 12px; color: var(--kf-muted); margin: 0 4px 3px; }
.bubble {
  padding: 9px 13px;
  border-radius: 18px;
  line-height: 1.4;
  white-space: pre-wrap;
  overflow-wrap: anywhere;
  font-size: 14.5px;
}
.mine .bubble { background: var(--kf-accent); color: var(--kf-accent-text); border-bottom-right-radius: 6px; }
.theirs .bubble { background: var(--kf-theirs); color: var(--kf-text); border-bottom-left-radius: 6px; }
.message.pending .bubble { opacity: 0.6; }
.attachments { display: flex; flex-direction: column; gap: 4px; margin-top: 4px; }
.mine .attachments { align-items: flex-end; }
.attachment.image img { display: block; max-width: 220px; max-height: 220px; width: auto; height: auto; border-radius: 12px; background: var(--kf-theirs); }
.attachment.file { display: inline-block; padding: 8px 12px; border-radius: 12px; background: var(--kf-theirs); color: var(--kf-text); text-decoration: underline; word-break: break-all; }
.attach { flex: none; width: 36px; height: 36px; border: 0; border-radius: 50%; background: transparent; color: var(--kf-muted, #667); cursor: pointer; display: grid; place-items: center; }
.attach:hover:not(:disabled) { color: var(--kf-accent); }
.attach:disabled { opacity: 0.4; cursor: default; }
.attach svg { width: 22px; height: 22px; fill: currentColor; }
.message.failed .bubble { background: #fbe3e6; color: var(--kf-danger); }
.meta { font-size: 11.5px; color: var(--kf-muted); margin: 3px 4px 0; }
.seen { color: var(--kf-ok); font-weight: 600; }
.system {
  align-self: center;
  max-width: 90%;
  text-align: center;
  font-size: 12px;
  color: var(--kf-muted);
  padding: 2px 8px;
}

.system.intro {
  margin: 24px auto 0;
  max-width: 80%;
  padding: 12px 16px;
  font-size: 13.5px;
  line-height: 1.45;
  color: var(--kf-text);
  background: var(--kf-theirs);
  border-radius: 14px;
}
.typing { flex: none; padding: 2px 18px 6px; font-size: 12.5px; color: var(--kf-muted); font-style: italic; }
.banner {
  flex: none;
  margin: 0 12px 10px;
  padding: 10px 12px;
  border-radius: 12px;
  background: #f5f6fb;
  border: 1px solid var(--kf-line);
  font-size: 13px;
  display: flex;
  flex-direction: column;
  gap: 8px;
}
.banner .row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.banner input { flex: 1; min-width: 140px; }
.rating { display: flex; flex-direction: column; gap: 6px; }
.rate-title { font-weight: 600; }
.stars { display: flex; gap: 2px; }
.star { border: none; background: none; font-size: 24px; line-height: 1; padding: 2px; color: #c9ccd6; cursor: pointer; }
.star.on { color: #f5a623; }
.star:focus-visible { outline: 2px solid var(--kf-accent); border-radius: 4px; }
.rate-comment { font: inherit; font-size: 13px; padding: 6px 8px; border: 1px solid var(--kf-line); border-radius: 8px; resize: vertical; }
.rate-error { color: var(--kf-danger); }
.rate-thanks { font-weight: 600; }

.button {
  border: 1px solid var(--kf-line);
  background: var(--kf-bg);
  color: var(--kf-text);
  padding: 8px 14px;
  border-radius: 10px;
  font-weight: 600;
  font-size: 14px;
}
.button.primary { background: var(--kf-accent); border-color: var(--kf-accent); color: var(--kf-accent-text); }
.button.danger { color: var(--kf-danger); border-color: #f1c4ca; }
.button:disabled { opacity: 0.5; cursor: default; }

.composer {
  flex: none;
  display: flex;
  gap: 8px;
  align-items: flex-end;
  padding: 10px 12px;
  border-top: 1px solid var(--kf-line);
  background: var(--kf-bg);
}
.composer textarea {
  flex: 1;
  resize: none;
  min-height: 40px;
  max-height: 120px;
  padding: 9px 12px;
  border: 1px solid var(--kf-line);
  border-radius: 12px;
  background: #fff;
  color: var(--kf-text);
  font-size: 14.5px;
  line-height: 1.4;
  outline: none;
}
.composer textarea:focus { border-color: var(--kf-accent); }
.send {
  flex: none;
  width: 40px;
  height: 40px;
  border: 0;
  border-radius: 50%;
  background: var(--kf-accent);
  color: var(--kf-accent-text);
  padding: 0;
  display: flex;
  align-items: center;
  justify-content: center;
}
.send svg { width: 19px; height: 19px; fill: currentColor; }
.send:disabled { opacity: 0.45; cursor: default; }

/* forms: pre-chat and offline */
.form {
  flex: 1;
  min-height: 0;
  overflow-y: auto;
  padding: 16px;
  display: flex;
  flex-direction: column;
  gap: 12px;
}
.form .intro { margin: 0; font-size: 14px; color: var(--kf-text); }
.form .intro.title { font-weight: 700; font-size: 15.5px; }
.form .note { margin: 0; font-size: 12.5px; color: var(--kf-muted); }
.field { display: flex; flex-direction: column; gap: 4px; }
.field label { font-size: 13px; font-weight: 600; color: var(--kf-text); }
.field label .hint { font-weight: 400; color: var(--kf-muted); margin-left: 4px; }
.field input, .field textarea, .field select, .banner input {
  width: 100%;
  padding: 9px 11px;
  border: 1px solid #cfd3e1;
  border-radius: 10px;
  background: #fff;
  color: var(--kf-text);
  font-size: 14.5px;
  outline: none;
}
.field textarea { min-height: 90px; resize: vertical; }
.field input:focus, .field textarea:focus, .field select:focus, .banner input:focus { border-color: var(--kf-accent); }
.field[data-invalid="true"] input, .field[data-invalid="true"] textarea, .field[data-invalid="true"] select { border-color: var(--kf-danger); }
.field .error { font-size: 12.5px; color: var(--kf-danger); }
.form .button.primary { align-self: stretch; padding: 10px 14px; }

.error-box {
  margin: 16px;
  padding: 14px;
  border-radius: 12px;
  background: #fdecee;
  border: 1px solid #f3c2c9;
  color: var(--kf-danger);
  font-size: 14px;
}
.brand { flex: none; margin-top: auto; text-align: center; font-size: 11px; color: var(--kf-muted); padding: 0 0 8px; }

/* phones: the panel takes the whole screen */
@media (max-width: 480px) {
  .panel {
    inset: 0;
    width: 100%;
    height: 100%;
    max-height: none;
    border-radius: 0;
  }
  .root[data-position="left"] .panel { left: 0; }
  .root[data-open="true"] .launcher { display: none; }
  .launcher { bottom: 16px; right: 16px; }
  .root[data-position="left"] .launcher { left: 16px; }
}
@media (prefers-reduced-motion: reduce) {
  .launcher { transition: none; }
}
`;

/**
 * Applies the stylesheet to a shadow root.
 * @param {ShadowRoot} root
 */
export function applyStyles(root) {
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch {
    const style = document.createElement("style");
    style.textContent = CSS;
    root.append(style);
  }
}
