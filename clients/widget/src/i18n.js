// i18n.js: every string the widget shows, in English and Simplified Chinese (one table).
//
// A string is either text or a function of its arguments. `translator(lang)` picks the language: `data-lang`
// when given, else the browser's (`navigator.language`); anything starting with "zh" is Simplified Chinese,
// everything else English. Missing keys fall back to English.

/** @typedef {"en" | "zh-CN"} Lang */

/** @type {Record<Lang, Record<string, string | ((...args: any[]) => string)>>} */
export const STRINGS = {
  en: {
    launcherOpen: "Open chat",
    launcherClose: "Close chat",
    unreadLabel: (n) => `${n} unread ${n === 1 ? "message" : "messages"}`,
    dialogLabel: (team) => `Chat with ${team}`,
    defaultTeam: "Support",
    minimise: "Minimise chat",
    endChat: "End chat",
    endChatConfirm: "End this conversation?",
    endChatYes: "End",
    endChatNo: "Keep chatting",
    subtitleDefault: "We usually answer within a few minutes",
    subtitleAgent: (agent) => `You are talking to ${agent}`,
    subtitleQueued: "Waiting for an agent…",
    subtitleOffline: "We are away right now",
    subtitleClosed: "This chat has ended",
    connecting: "Connecting…",
    reconnecting: "Reconnecting… your messages will be sent",
    messagesLabel: "Messages",
    emptyIntro: "Hi there! Send us a message and we will answer you here.",
    you: "You",
    agentFallback: "Agent",
    system: "System",
    inputLabel: "Message",
    inputPlaceholder: "Write a message…",
    send: "Send",
    sending: "Sending…",
    pending: "Waiting for connection…",
    sent: "Sent",
    seen: "Seen",
    notSent: (why) => `Not sent: ${why}`,
    typing: (who) => `${who} is typing…`,
    created: "Conversation started",
    assigned: (agent) => `${agent} joined the conversation`,
    closedBy: (who) => `${who} closed the conversation`,
    closedSystem: "The conversation was closed",
    reopened: "The conversation was reopened",
    transferredAgent: (agent) => `You were passed on to ${agent}`,
    transferredQueue: "You are back in the queue for the next agent",
    offlineEvent: "Nobody is available right now: leave a message and we will answer",
    queueWaiting: "Waiting for an agent… you can already write.",
    queuePosition: (n) => `You are number ${n} in the queue.`,
    queueWait: (minutes) => `Estimated wait: about ${minutes} min.`,
    closedNotice: "This conversation has ended.",
    newConversation: "Start a new conversation",
    prechatIntro: "Please tell us a little about yourself before we start.",
    prechatSubmit: "Start chat",
    required: "required",
    optional: "optional",
    fieldRequired: (label) => `${label} is required.`,
    fieldEmail: (label) => `${label} must be an email address.`,
    fieldTooLong: (label) => `${label} is too long.`,
    selectPlaceholder: "Choose…",
    offlineTitle: "We are away right now",
    offlineIntro: "Leave us a message and your email: we will answer as soon as we are back.",
    offlineNextOpening: (when) => `We are back ${when}.`,
    offlineMessage: "Your message",
    offlineEmail: "Your email",
    offlineSubmit: "Send message",
    offlineThanks: "Thank you! We received your message and will answer by email or here.",
    offlineEmailLine: (email) => `Email: ${email}`,
    offlineAskEmail: "Leave your email so we can answer you:",
    offlineSaveEmail: "Save",
    errorOrigin: "This website is not allowed to use this chat.",
    errorUnreachable: "The chat is unavailable right now (the chat server cannot be reached from this page).",
    errorTenant: "This chat is not set up (unknown account or entry point).",
    errorIdentity: "We could not verify your account, so the chat is not available. Please sign in again or reload the page.",
    errorSession: (why) => `The chat could not start: ${why}`,
    errorStopped: (why) => `The chat is disconnected${why ? ` (${why})` : ""}. Reload the page to try again.`,
    retry: "Try again",
    notificationTitle: (agent) => `New message from ${agent}`,
    poweredBy: "Live chat by kf",
  },
  "zh-CN": {
    launcherOpen: "打开在线客服",
    launcherClose: "关闭在线客服",
    unreadLabel: (n) => `${n} 条未读消息`,
    dialogLabel: (team) => `与${team}对话`,
    defaultTeam: "客服",
    minimise: "最小化",
    endChat: "结束对话",
    endChatConfirm: "确定结束本次对话吗？",
    endChatYes: "结束",
    endChatNo: "继续对话",
    subtitleDefault: "我们通常几分钟内回复",
    subtitleAgent: (agent) => `${agent} 正在为您服务`,
    subtitleQueued: "正在等待客服接入…",
    subtitleOffline: "客服暂时不在线",
    subtitleClosed: "本次对话已结束",
    connecting: "正在连接…",
    reconnecting: "正在重新连接… 您的消息稍后会发出",
    messagesLabel: "消息",
    emptyIntro: "您好！请留言，我们会在这里回复您。",
    you: "我",
    agentFallback: "客服",
    system: "系统",
    inputLabel: "消息",
    inputPlaceholder: "请输入消息…",
    send: "发送",
    sending: "发送中…",
    pending: "等待网络连接…",
    sent: "已发送",
    seen: "已读",
    notSent: (why) => `发送失败：${why}`,
    typing: (who) => `${who} 正在输入…`,
    created: "对话已开始",
    assigned: (agent) => `${agent} 加入了对话`,
    closedBy: (who) => `${who} 结束了对话`,
    closedSystem: "对话已结束",
    reopened: "对话已重新打开",
    transferredAgent: (agent) => `已为您转接到 ${agent}`,
    transferredQueue: "您已重新排队，等待下一位客服",
    offlineEvent: "当前没有客服在线：请留言，我们会尽快回复",
    queueWaiting: "正在等待客服接入… 您可以先留言。",
    queuePosition: (n) => `您当前排在第 ${n} 位。`,
    queueWait: (minutes) => `预计等待约 ${minutes} 分钟。`,
    closedNotice: "本次对话已结束。",
    newConversation: "开始新的对话",
    prechatIntro: "开始对话前，请先填写以下信息。",
    prechatSubmit: "开始对话",
    required: "必填",
    optional: "选填",
    fieldRequired: (label) => `请填写${label}。`,
    fieldEmail: (label) => `${label}不是有效的邮箱地址。`,
    fieldTooLong: (label) => `${label}内容过长。`,
    selectPlaceholder: "请选择…",
    offlineTitle: "客服暂时不在线",
    offlineIntro: "请留下您的问题和邮箱，我们上线后会尽快回复您。",
    offlineNextOpening: (when) => `我们将于 ${when} 恢复服务。`,
    offlineMessage: "您的留言",
    offlineEmail: "您的邮箱",
    offlineSubmit: "提交留言",
    offlineThanks: "谢谢！我们已收到您的留言，会通过邮件或在这里回复您。",
    offlineEmailLine: (email) => `邮箱：${email}`,
    offlineAskEmail: "请留下邮箱，方便我们回复您：",
    offlineSaveEmail: "保存",
    errorOrigin: "本网站未获授权使用此在线客服。",
    errorUnreachable: "在线客服暂时不可用（无法从本页面连接到客服服务器）。",
    errorTenant: "在线客服尚未配置（未知的账户或入口）。",
    errorIdentity: "无法验证您的账户，在线客服暂不可用。请重新登录或刷新页面。",
    errorSession: (why) => `在线客服无法启动：${why}`,
    errorStopped: (why) => `在线客服已断开${why ? `（${why}）` : ""}。请刷新页面重试。`,
    retry: "重试",
    notificationTitle: (agent) => `${agent} 发来新消息`,
    poweredBy: "在线客服由 kf 提供",
  },
};

/**
 * Picks the widget's language.
 * @param {string | null | undefined} requested `data-lang`, if any
 * @returns {Lang}
 */
export function pickLang(requested) {
  const wanted = (requested || (typeof navigator !== "undefined" && navigator.language) || "en").toLowerCase();
  return wanted.startsWith("zh") ? "zh-CN" : "en";
}

/**
 * A translation function for `lang`: `t(key, ...args)`.
 * @param {Lang} lang
 * @returns {(key: string, ...args: any[]) => string}
 */
export function translator(lang) {
  const table = STRINGS[lang] || STRINGS.en;
  return (key, ...args) => {
    const entry = key in table ? table[key] : STRINGS.en[key];
    if (entry === undefined) return key;
    return typeof entry === "function" ? entry(...args) : entry;
  };
}
