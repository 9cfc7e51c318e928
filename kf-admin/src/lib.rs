//! The kf admin API: the engine's admin operations ([`kf_core::engine::Admin`]) over HTTP, as an axum router a
//! host mounts (`/api/admin` in the demo), with its OpenAPI 3.1 document generated from the handlers and types.
//!
//! Every endpoint but the document takes `Authorization: Bearer <token>`, checked by the engine's
//! authenticator; admin endpoints need an agent of the `admin` role ([`kf_core::auth::Role`]) and act on its own
//! tenant only, so another tenant's object answers 404. Errors are JSON `{"error": code, "message": text}`:
//! `400 invalid_request`, `401 unauthorized`, `403 forbidden`, `404 not_found`, `409 conflict`,
//! `503 unavailable`. `docs/admin.md` lists every endpoint.
//!
//! ```no_run
//! # async fn demo(engine: kf_core::Engine) {
//! let app = axum::Router::new().nest("/api/admin", kf_admin::router(engine));
//! # let _ = app;
//! # }
//! ```
//!
//! [`Caller`] is the extractor for a host's own endpoints behind a role (a supervisor's statistics or monitor).

#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod caller;
mod error;
mod routes;
mod schema;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use kf_core::Engine;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

pub use caller::{AdminCaller, Caller};
pub use error::{AdminError, ErrorBody};
pub use schema::{
    AgentBody, AgentView, AuditEntryView, AuditPageView, AuditParams, EntryPointBody, EntryPointView,
    GroupBody, GroupView, HolidayBody, HoursBody, LabelBody, LabelView, MeView, OriginsBody, QuickReplyBody,
    QuickReplyView, TimersBody,
};

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The OpenAPI document's description of the API, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "kf admin API", description = "Administer a kf tenant: agents, groups, working hours, entry \
        points, quick replies, labels, allowed origins, and the audit log of every change."),
    paths(
        routes::me,
        routes::agents, routes::agent, routes::put_agent, routes::delete_agent,
        routes::deactivate_agent, routes::activate_agent,
        routes::groups, routes::group, routes::put_group, routes::delete_group,
        routes::group_hours, routes::put_group_hours, routes::delete_group_hours,
        routes::quick_replies, routes::add_quick_reply, routes::put_quick_reply, routes::delete_quick_reply,
        routes::entry_points, routes::entry_point, routes::put_entry_point, routes::delete_entry_point,
        routes::labels, routes::put_label, routes::delete_label,
        routes::origins, routes::put_origins,
        routes::audit,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> Response {
    axum::Json(openapi()).into_response()
}

/// The admin API's router, its paths relative to where the host nests it; `GET /openapi.json` serves the
/// document without authentication.
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/me", get(routes::me))
        .route("/agents", get(routes::agents))
        .route(
            "/agents/{id}",
            get(routes::agent)
                .put(routes::put_agent)
                .delete(routes::delete_agent),
        )
        .route("/agents/{id}/deactivate", post(routes::deactivate_agent))
        .route("/agents/{id}/activate", post(routes::activate_agent))
        .route("/groups", get(routes::groups))
        .route(
            "/groups/{id}",
            get(routes::group)
                .put(routes::put_group)
                .delete(routes::delete_group),
        )
        .route(
            "/groups/{id}/hours",
            get(routes::group_hours)
                .put(routes::put_group_hours)
                .delete(routes::delete_group_hours),
        )
        .route(
            "/groups/{id}/quick-replies",
            get(routes::quick_replies).post(routes::add_quick_reply),
        )
        .route("/groups/{id}/quick-replies/{reply}", put(routes::put_quick_reply))
        .route(
            "/quick-replies/{reply}",
            axum::routing::delete(routes::delete_quick_reply),
        )
        .route("/entry-points", get(routes::entry_points))
        .route(
            "/entry-points/{id}",
            get(routes::entry_point)
                .put(routes::put_entry_point)
                .delete(routes::delete_entry_point),
        )
        .route("/labels", get(routes::labels))
        .route(
            "/labels/{name}",
            put(routes::put_label).delete(routes::delete_label),
        )
        .route("/origins", get(routes::origins).put(routes::put_origins))
        .route("/audit", get(routes::audit))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(engine)
}

async fn not_found() -> AdminError {
    AdminError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such admin endpoint",
    )
}
