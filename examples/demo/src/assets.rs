//! The demo's pages and their static assets, compiled into the binary (no build step).

use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

const VISITOR_HTML: &str = include_str!("../assets/visitor.html");
const AGENT_HTML: &str = include_str!("../assets/agent.html");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const UI_JS: &str = include_str!("../assets/ui.js");
const VISITOR_JS: &str = include_str!("../assets/visitor.js");
const AGENT_JS: &str = include_str!("../assets/agent.js");
// The console's modules (agent.js imports them).
const PANEL_JS: &str = include_str!("../assets/panel.js");
const RECORDS_JS: &str = include_str!("../assets/records.js");
const ALERTS_JS: &str = include_str!("../assets/alerts.js");
const COMPOSER_JS: &str = include_str!("../assets/composer.js");
const CONTROLS_JS: &str = include_str!("../assets/controls.js");
const TABS_JS: &str = include_str!("../assets/tabs.js");
const SIDEBAR_JS: &str = include_str!("../assets/sidebar.js");
const SHORTCUTS_JS: &str = include_str!("../assets/shortcuts.js");
const EMOJI_JS: &str = include_str!("../assets/emoji.js");
const ATTACHMENTS_JS: &str = include_str!("../assets/attachments.js");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn static_response(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn visitor_page() -> Response {
    static_response("text/html; charset=utf-8", VISITOR_HTML)
}

pub(crate) async fn agent_page() -> Response {
    static_response("text/html; charset=utf-8", AGENT_HTML)
}

pub(crate) async fn asset(UrlPath(file): UrlPath<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        "ui.js" => ("text/javascript; charset=utf-8", UI_JS),
        "visitor.js" => ("text/javascript; charset=utf-8", VISITOR_JS),
        "agent.js" => ("text/javascript; charset=utf-8", AGENT_JS),
        "panel.js" => ("text/javascript; charset=utf-8", PANEL_JS),
        "records.js" => ("text/javascript; charset=utf-8", RECORDS_JS),
        "alerts.js" => ("text/javascript; charset=utf-8", ALERTS_JS),
        "composer.js" => ("text/javascript; charset=utf-8", COMPOSER_JS),
        "controls.js" => ("text/javascript; charset=utf-8", CONTROLS_JS),
        "tabs.js" => ("text/javascript; charset=utf-8", TABS_JS),
        "sidebar.js" => ("text/javascript; charset=utf-8", SIDEBAR_JS),
        "shortcuts.js" => ("text/javascript; charset=utf-8", SHORTCUTS_JS),
        "emoji.js" => ("text/javascript; charset=utf-8", EMOJI_JS),
        "attachments.js" => ("text/javascript; charset=utf-8", ATTACHMENTS_JS),
        _ => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no asset named `{file}`"),
            )
            .into_response();
        }
    };
    static_response(content_type, body)
}
