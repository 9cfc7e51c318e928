//! Who calls: the `Authorization: Bearer` token checked by the engine's authenticator, and the role checks.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use kf_core::Engine;
use kf_core::auth::{Identity, Role};
use kf_core::engine::require_role;

use crate::AdminError;

/// The caller's identity, from its `Authorization: Bearer <token>` header (401 without a valid one). An axum
/// extractor for any router whose state gives an [`Engine`] (`Engine: FromRef<S>`): a host puts its own
/// supervisor endpoints (statistics, a live monitor) behind [`Caller::require`].
///
/// ```no_run
/// use axum::{Json, Router, routing::get};
/// use kf_admin::{AdminError, Caller};
/// use kf_core::{Engine, auth::Role};
///
/// async fn monitor(caller: Caller) -> Result<Json<String>, AdminError> {
///     caller.require(Role::Supervisor)?;
///     Ok(Json(format!("the monitor of {}", caller.identity().tenant)))
/// }
/// # fn app(engine: Engine) -> Router {
/// Router::new().route("/api/monitor", get(monitor)).with_state(engine)
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Caller(pub Identity);

impl Caller {
    /// The caller's identity.
    pub fn identity(&self) -> &Identity {
        &self.0
    }

    /// Refuses (403 `forbidden`) a caller that is not an agent of at least `role`.
    pub fn require(&self, role: Role) -> Result<(), AdminError> {
        require_role(&self.0, role)?;
        Ok(())
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Engine: FromRef<S>,
{
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let unauthorized =
            |message: String| AdminError::new(axum::http::StatusCode::UNAUTHORIZED, "unauthorized", message);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("send a token as `Authorization: Bearer <token>`".into()))?;
        let engine = Engine::from_ref(state);
        let identity = engine.authenticate(token.trim()).await?;
        Ok(Caller(identity))
    }
}

/// An admin of its tenant: the extractor of every admin endpoint (401 without a token, 403 for another role).
#[derive(Clone, Debug)]
pub struct AdminCaller(pub kf_core::engine::Admin);

impl<S> FromRequestParts<S> for AdminCaller
where
    S: Send + Sync,
    Engine: FromRef<S>,
{
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(AdminCaller(Engine::from_ref(state).admin(caller.identity())?))
    }
}
