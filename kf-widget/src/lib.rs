//! # kf-widget
//!
//! The visitor side of kf as a product a shop drops into its site: one `<script>` tag loads the widget from the
//! kf server, on any origin the tenant allows. This crate is what the server mounts for it, an axum router:
//!
//! ```text
//! GET  {base}/widget.js         the widget (the files of clients/widget/src, at the root)
//! GET  {base}/client/index.js   the protocol client package (the files of clients/js/src, under client/)
//! GET  {base}/config?tenant=…&entry=…
//!                               the group, its welcome, working hours now, the entry point's pre-chat form,
//!                               the protocol endpoints' paths
//! POST {base}/session           {"tenant", "visitor_id"?, "visitor_key"?, "user_id"?, "user_hash"?}
//!                               -> {"token", "visitor_id", "visitor_key", "identified", "expires_in"}
//! ```
//!
//! Files are compiled in (no CDN, no build step for the host), carry a strong ETag (a `304` answers a current
//! copy) and a short `Cache-Control`, and are gzipped when the browser accepts it.
//!
//! **Who a visitor is.** An anonymous visitor gets a new id and a key that brings the same browser back to it;
//! nobody can become another visitor by choosing its id. A shop that knows its user (a logged-in shopper)
//! passes `user_id` and `user_hash`, the hex HMAC-SHA256 of the user id with the tenant's identity secret
//! ([`WidgetConfig::identity_secret`]), computed by the shop's backend: the visitor is then that user on every
//! device, and a forged hash is refused (`401 invalid_identity`).
//!
//! **Which pages.** `config` and `session` answer a page of another site only when its origin is one the
//! tenant allows ([`EngineBuilder::allowed_origins`](kf_core::engine::EngineBuilder::allowed_origins)), else
//! `403 forbidden_origin`; the kf transports check the same list. Errors are
//! `{"error": code, "message": text}`, readable by any page (CORS), so the widget can say what is wrong.
//!
//! ```no_run
//! # async fn run(engine: kf_core::Engine, tokens: kf_core::auth::SignedTokens) -> std::io::Result<()> {
//! use kf_core::model::TenantId;
//! use kf_widget::WidgetConfig;
//!
//! let shop = TenantId::new("shop").expect("valid id");
//! let config = WidgetConfig::default().identity_secret(shop, b"the shop's identity secret".to_vec());
//! let app = axum::Router::new()
//!     .route("/ws", kf_transport_ws::route(engine.clone(), Default::default()))
//!     .nest("/sse", kf_transport_sse::router(engine.clone(), Default::default()))
//!     .nest("/widget", kf_widget::router(engine, tokens, config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod api;
mod assets;
mod identity;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kf_core::Engine;
use kf_core::auth::SignedTokens;
use kf_core::model::TenantId;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How the widget's endpoints behave.
#[derive(Clone)]
pub struct WidgetConfig {
    ws_path: String,
    sse_path: String,
    token_ttl: Duration,
    identity_secrets: HashMap<TenantId, Vec<u8>>,
}

impl Default for WidgetConfig {
    /// WebSocket at `/ws`, SSE under `/sse`, visitor tokens valid for 24 hours, no identity secrets.
    fn default() -> Self {
        Self {
            ws_path: "/ws".into(),
            sse_path: "/sse".into(),
            token_ttl: Duration::from_secs(24 * 60 * 60),
            identity_secrets: HashMap::new(),
        }
    }
}

impl fmt::Debug for WidgetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WidgetConfig")
            .field("ws_path", &self.ws_path)
            .field("sse_path", &self.sse_path)
            .field("token_ttl", &self.token_ttl)
            .field(
                "identity_secrets",
                &self.identity_secrets.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl WidgetConfig {
    /// Where the host serves the kf WebSocket endpoint, on the widget's server (told to the widget by `config`).
    #[must_use]
    pub fn ws_path(mut self, path: impl Into<String>) -> Self {
        self.ws_path = path.into();
        self
    }

    /// Where the host nests the kf SSE endpoints, on the widget's server.
    #[must_use]
    pub fn sse_path(mut self, path: impl Into<String>) -> Self {
        self.sse_path = path.into();
        self
    }

    /// How long a visitor token is valid (the widget asks for a new one when it expires).
    #[must_use]
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// The secret with which `tenant`'s backend signs its users' ids (`user_hash`). Keep it on the server:
    /// whoever has it can be any of the tenant's users.
    #[must_use]
    pub fn identity_secret(mut self, tenant: TenantId, secret: impl Into<Vec<u8>>) -> Self {
        self.identity_secrets.insert(tenant, secret.into());
        self
    }
}

/// The widget's router. Nest it under a prefix of the host's app (the demo uses `/widget`). `tokens` must be
/// the issuer whose key the engine's authenticator verifies.
pub fn router<S>(engine: Engine, tokens: SignedTokens, config: WidgetConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let shared = Arc::new(api::Shared {
        engine,
        tokens,
        ws_path: config.ws_path,
        sse_path: config.sse_path,
        token_ttl: config.token_ttl,
        identity_secrets: config.identity_secrets,
    });
    // Any page may ask, so that a refused one can read why (`forbidden_origin`); what it gets is decided by the
    // tenant's allowed origins, checked by the handlers. Never with credentials: no cookies are involved.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    let api = Router::new()
        .route("/config", get(api::config))
        .route("/session", post(api::session))
        .layer(cors)
        .with_state(shared);
    Router::new().route("/{*path}", get(file)).merge(api)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match assets::find(assets::ASSETS, &path) {
        Some(asset) => assets::respond(asset, &headers),
        None => api::ApiError::not_found(format!("no widget file `{path}`")).into_response(),
    }
}
