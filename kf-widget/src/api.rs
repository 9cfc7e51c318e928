//! The widget's two HTTP endpoints: `GET config` (what to show before a conversation starts) and
//! `POST session` (a visitor token: anonymous or a host's verified user).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kf_core::Engine;
use kf_core::auth::{Identity, SignedTokens};
use kf_core::model::{EntryPointId, TenantId, VisitorId};
use serde::Deserialize;
use serde_json::json;

use crate::identity::{self, MAX_USER_ID_BYTES};

/// What the endpoints share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub engine: Engine,
    pub tokens: SignedTokens,
    pub ws_path: String,
    pub sse_path: String,
    pub token_ttl: Duration,
    pub identity_secrets: HashMap<TenantId, Vec<u8>>,
}

/// An error answer: `{"error": code, "message": text}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code, "message": self.message}));
        no_store((self.status, body).into_response())
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The tenant named by a request, refused unless it exists (has a group) and, for a page of another site,
/// allows the page's origin.
fn tenant(shared: &Shared, headers: &HeaderMap, tenant: &str) -> Result<TenantId, ApiError> {
    let tenant =
        TenantId::new(tenant).map_err(|error| ApiError::bad_request(format!("`tenant`: {error}")))?;
    let origin = kf_core::origin::cross_origin(
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    );
    if shared.engine.check_origin(&tenant, origin).is_err() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            format!("tenant {tenant} does not allow pages of this origin to use the chat"),
        ));
    }
    if shared.engine.groups(&tenant).is_empty() {
        return Err(ApiError::not_found(format!("no tenant {tenant}")));
    }
    Ok(tenant)
}

#[derive(Deserialize)]
pub(crate) struct ConfigQuery {
    tenant: String,
    entry: Option<String>,
}

/// `GET config?tenant=…&entry=…`: the group the widget's conversations go to, its welcome, whether it is
/// within working hours now, the entry point's pre-chat form, and where the protocol endpoints are.
pub(crate) async fn config(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<ConfigQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let tenant = tenant(&shared, &headers, &query.tenant)?;
    let engine = &shared.engine;
    let entry = match query.entry.as_deref().filter(|entry| !entry.is_empty()) {
        Some(id) => {
            let id =
                EntryPointId::new(id).map_err(|error| ApiError::bad_request(format!("`entry`: {error}")))?;
            let entry = engine
                .entry_point(&tenant, &id)
                .ok_or_else(|| ApiError::not_found(format!("no entry point {id}")))?;
            Some(entry)
        }
        None => None,
    };
    let group_id = match &entry {
        Some(entry) => Some(entry.group.clone()),
        None => engine.default_group(&tenant),
    };
    let group = group_id.as_ref().and_then(|id| engine.group(&tenant, id));
    let welcome = entry
        .as_ref()
        .and_then(|entry| entry.welcome.clone())
        .or_else(|| group.as_ref().and_then(|group| group.welcome.clone()));
    let open = group_id
        .as_ref()
        .is_none_or(|id| engine.is_group_open(&tenant, id));
    let next_opening = group_id
        .as_ref()
        .and_then(|id| engine.next_opening(&tenant, id))
        .map(|at| at.as_millis());
    let body = json!({
        "tenant": tenant,
        "entry": entry.as_ref().map(|entry| &entry.id),
        "group": group_id,
        "group_name": group.as_ref().map(|group| &group.name),
        "welcome": welcome,
        "open": open,
        "next_opening": next_opening,
        "prechat": entry.as_ref().map(|entry| entry.prechat.as_slice()).unwrap_or_default(),
        "ws_path": shared.ws_path,
        "sse_path": shared.sse_path,
    });
    Ok(no_store(Json(body).into_response()))
}

#[derive(Deserialize)]
pub(crate) struct SessionRequest {
    tenant: String,
    visitor_id: Option<String>,
    visitor_key: Option<String>,
    user_id: Option<String>,
    user_hash: Option<String>,
}

/// `POST session`: a visitor token. A host's user (`user_id` + `user_hash`) gets the visitor id of that user,
/// the same everywhere; an anonymous visitor gets a new id and a key to come back as it (`visitor_id` +
/// `visitor_key`).
pub(crate) async fn session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Json<SessionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body
        .map_err(|rejection| ApiError::new(rejection.status(), "invalid_request", rejection.body_text()))?;
    let tenant = tenant(&shared, &headers, &request.tenant)?;
    let (visitor, key) = match (&request.user_id, &request.user_hash) {
        (Some(user_id), Some(user_hash)) => (verified_user(&shared, &tenant, user_id, user_hash)?, None),
        (Some(_), None) | (None, Some(_)) => {
            return Err(ApiError::bad_request("`user_id` and `user_hash` go together"));
        }
        (None, None) => {
            let visitor = anonymous(&shared, &tenant, &request)?;
            let key = identity::visitor_key(&shared.tokens, &tenant, &visitor);
            (visitor, Some(key))
        }
    };
    let token = shared
        .tokens
        .issue(&Identity::visitor(tenant, visitor.clone()), shared.token_ttl);
    let body = json!({
        "token": token,
        "visitor_id": visitor,
        "visitor_key": key,
        "identified": key.is_none(),
        "expires_in": shared.token_ttl.as_secs(),
    });
    Ok(no_store(Json(body).into_response()))
}

fn verified_user(
    shared: &Shared,
    tenant: &TenantId,
    user_id: &str,
    user_hash: &str,
) -> Result<VisitorId, ApiError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_BYTES {
        return Err(ApiError::bad_request(format!(
            "`user_id` must be 1 to {MAX_USER_ID_BYTES} bytes"
        )));
    }
    let Some(secret) = shared.identity_secrets.get(tenant) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "identity_not_enabled",
            format!("tenant {tenant} has no identity secret: it cannot verify users"),
        ));
    };
    if !identity::is_user_hash(secret, user_id, user_hash) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_identity",
            "`user_hash` is not the HMAC-SHA256 of `user_id` with the tenant's identity secret",
        ));
    }
    Ok(identity::user_visitor_id(user_id))
}

fn anonymous(shared: &Shared, tenant: &TenantId, request: &SessionRequest) -> Result<VisitorId, ApiError> {
    let Some(id) = &request.visitor_id else {
        return identity::new_visitor_id().map_err(|error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("random number generator: {error}"),
            )
        });
    };
    let invalid_key = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_visitor_key",
            "`visitor_key` does not belong to `visitor_id`: start over without them",
        )
    };
    let visitor = VisitorId::new(id.as_str()).map_err(|_| invalid_key())?;
    let key = request.visitor_key.as_deref().unwrap_or_default();
    if !identity::is_visitor_key(&shared.tokens, tenant, &visitor, key) {
        return Err(invalid_key());
    }
    Ok(visitor)
}
