//! # kf-attachments
//!
//! Files in kf conversations over HTTP, as an axum router to nest in a host's app (the demo nests it at
//! `/files`):
//!
//! - `POST /upload?conversation={id}&name={file name}`: the body is the file. The caller (token in
//!   `Authorization: Bearer` or `?token=`, the transports' tokens) must take part in the conversation. Limits
//!   per file and per conversation ([`AttachmentLimits`](kf_core::limits::AttachmentLimits)), the type sniffed
//!   from the bytes and checked against the allowed ones; an image gets its width, height and a thumbnail.
//!   Answers `201 {"attachment": {…}}`; the file is then sent with a message (`send` with `attachments`).
//! - `GET /link/{attachment}`: a short-lived signed link to the file (and its thumbnail) for a caller who may read
//!   the conversation (or, before it is sent, for its uploader).
//! - `GET /blob/{key}?expires=…&sig=…`: the download the link points at.
//!
//! Every refusal is `{"type": "error", "code", "message"}` with the codes of [`AttachmentError`]; the protocol
//! is in `docs/protocol.md`, "Attachments". [`cleanup_task`] runs the cleanup pass that removes uploads no
//! message carries.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn demo(engine: kf_core::Engine) -> Result<(), Box<dyn std::error::Error>> {
//! let blobs = Arc::new(kf_core::blob::FsBlobStore::open("data/attachments").await?);
//! let files = kf_attachments::router(engine.clone(), blobs.clone(), kf_attachments::AttachmentsConfig::new([9; 32]));
//! let app: axum::Router = axum::Router::new().nest("/files", files);
//! tokio::spawn(kf_attachments::cleanup_task(engine, blobs, std::time::Duration::from_secs(600)));
//! # drop(app); Ok(()) }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod download;
mod error;
mod link;
mod picture;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::{HeaderMap, Method, header};
use axum::routing::{get, post};
use kf_core::Engine;
use kf_core::auth::Identity;
use kf_core::blob::BlobStore;
use kf_core::model::Timestamp;
use kf_core::store::Uploads;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::AttachmentError;

use link::LinkSigner;

/// How the attachment endpoints are set up.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AttachmentsConfig {
    link_key: LinkSigner,
    /// The path the router is nested at, which download links start with (default `/files`).
    pub base_path: String,
}

impl AttachmentsConfig {
    /// Signs download links with `link_key` (at least 32 random bytes, kept secret; another key than the
    /// tokens' is best, `kf_core::signing_key::load_or_create` keeps one in a file).
    pub fn new(link_key: impl Into<Vec<u8>>) -> Self {
        Self {
            link_key: LinkSigner::new(link_key.into()),
            base_path: "/files".to_owned(),
        }
    }

    /// The path the router is nested at (download links start with it).
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        self.base_path = path.into().trim_end_matches('/').to_owned();
        self
    }
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) config: AttachmentsConfig,
}

impl Shared {
    /// The engine's upload records, or `unavailable` when it keeps none.
    pub(crate) fn uploads(&self) -> Result<Arc<dyn Uploads>, AttachmentError> {
        self.engine
            .uploads()
            .cloned()
            .ok_or_else(|| AttachmentError::Unavailable("this server keeps no upload records".into()))
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.engine.now()
    }
}

/// The attachment endpoints (see the [crate docs](crate)), to nest at `config.base_path`. The engine must keep
/// upload records ([`EngineBuilder::uploads`](kf_core::EngineBuilder::uploads)).
pub fn router<S>(engine: Engine, blobs: Arc<dyn BlobStore>, config: AttachmentsConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // The blob store enforces the size limit while it streams; axum's own cap (2 MB) must not cut it shorter.
    let body_limit = usize::try_from(engine.limits().attachments.max_file_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let cors = cors(&engine);
    let shared = Arc::new(Shared {
        engine,
        blobs,
        config,
    });
    Router::new()
        .route("/upload", post(upload::upload))
        .route("/link/{attachment}", get(download::link))
        .route("/blob/{key}", get(download::download))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(cors)
        .with_state(shared)
}

/// CORS for pages of other sites (the widget on a shop's pages), as the SSE transport does: origins some tenant
/// allows; the token's tenant is checked on the request itself.
fn cors(engine: &Engine) -> CorsLayer {
    let engine = engine.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin
                .to_str()
                .is_ok_and(|origin| engine.allowed_origins().allows_some_tenant(origin))
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

/// The caller: its token from `Authorization: Bearer` or `?token=`, verified by the engine, from an origin its
/// tenant allows.
pub(crate) async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Identity, AttachmentError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let token = bearer
        .or(query_token)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| AttachmentError::Unauthenticated {
            code: "invalid_token",
            message: "missing token: send `Authorization: Bearer <token>` or `?token=`".into(),
        })?;
    let identity = shared.engine.authenticate(token).await?;
    let origin = kf_core::origin::cross_origin(
        headers.get(ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(HOST).and_then(|v| v.to_str().ok()),
    );
    shared
        .engine
        .check_origin(&identity.tenant, origin)
        .map_err(|refusal| AttachmentError::Forbidden(refusal.to_string()))?;
    Ok(identity)
}

/// Runs the cleanup pass ([`kf_core::attachments::cleanup`]) every `every` until the engine shuts down: uploads
/// older than [`pending_ttl_ms`](kf_core::limits::AttachmentLimits::pending_ttl_ms) that no message carries are
/// removed with their blobs. Spawn it beside the router.
pub async fn cleanup_task(engine: Engine, blobs: Arc<dyn BlobStore>, every: Duration) {
    let shutdown = engine.shutdown_token();
    loop {
        match engine.clean_up_uploads(&*blobs).await {
            Ok(report) if report.removed > 0 || report.recovered > 0 => {
                tracing::info!(
                    removed = report.removed,
                    recovered = report.recovered,
                    "attachments cleaned up"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "the attachments cleanup pass failed; it runs again later"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
