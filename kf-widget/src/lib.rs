//! # kf-widget
//!
//! The visitor side of kf as a product a shop drops into its site: one `<script>` tag loads the widget from the
//! kf server, on any origin the tenant allows. This crate is what the server mounts for it — an axum router that
//! serves the widget and the browser client package compiled in (no CDN, no build step for the host):
//!
//! ```text
//! GET {base}/widget.js         the widget (files of clients/widget/src, at the root)
//! GET {base}/client/index.js   the protocol client package (files of clients/js/src, under client/)
//! ```
//!
//! Files carry a strong ETag (a `304` answers a current copy), a short `Cache-Control` and are gzipped when the
//! browser accepts it.
//!
//! ```no_run
//! # async fn run(engine: kf_core::Engine) -> std::io::Result<()> {
//! let app = axum::Router::new().nest("/widget", kf_widget::router());
//! # let _ = engine;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod assets;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The widget's router: its files. Nest it under a prefix of the host's app (the demo uses `/widget`).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/{*path}", get(file))
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match assets::find(assets::ASSETS, &path) {
        Some(asset) => assets::respond(asset, &headers),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(
                serde_json::json!({"error": "not_found", "message": format!("no widget file `{path}`")}),
            ),
        )
            .into_response(),
    }
}
