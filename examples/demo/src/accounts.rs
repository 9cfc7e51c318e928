//! The demo's accounts: agents, the supervisor and the admin with their demo passwords, `POST /api/agent-login`,
//! and the bearer-token checks of the demo's JSON APIs.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use kf_core::auth::{Identity, Role};
use kf_core::model::AgentId;
use serde::Deserialize;
use serde_json::json;

use crate::{AGENT_TOKEN_TTL, ApiError, AppState, agent_id, json_body, token_response};

/// A demo agent account.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DemoAgent {
    /// The agent id (also the login name).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// The demo password.
    pub password: &'static str,
    /// How many open conversations the agent takes at once.
    pub capacity: u32,
    /// What the agent's tokens allow beyond its conversations.
    pub role: Role,
}

/// The agents the demo seeds, with their demo passwords.
pub const DEMO_AGENTS: &[DemoAgent] = &[
    DemoAgent {
        id: "alice",
        name: "Alice",
        password: "alice-demo",
        capacity: 3,
        role: Role::Agent,
    },
    DemoAgent {
        id: "bob",
        name: "Bob",
        password: "bob-demo",
        capacity: 3,
        role: Role::Agent,
    },
];

/// The demo tenant's admin: logs in like an agent (`POST /api/agent-login`) and gets an admin token for the admin
/// API. Not an agent of any group (it takes no conversations).
pub const DEMO_ADMIN: DemoAgent = DemoAgent {
    id: "boss",
    name: "Boss",
    password: "boss-demo",
    capacity: 0,
    role: Role::Admin,
};

/// The demo tenant's supervisor: logs in like an agent and gets a supervisor token — the statistics and the live
/// monitor (`/api/stats`, `/api/monitor`) and every conversation of the tenant to read, but not the admin API.
/// Not an agent of any group (it takes no conversations).
pub const DEMO_SUPERVISOR: DemoAgent = DemoAgent {
    id: "carol",
    name: "Carol",
    password: "carol-demo",
    capacity: 0,
    role: Role::Supervisor,
};

#[derive(Deserialize)]
struct AgentLoginRequest {
    agent: String,
    password: String,
}

/// Compares in time that depends only on the lengths.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

pub(crate) async fn agent_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Some(request): Option<AgentLoginRequest> = json_body(&headers, body)? else {
        return Err(ApiError::bad_request(
            "send a JSON body: {\"agent\": \"alice\", \"password\": \"...\"}",
        ));
    };
    let found = DEMO_AGENTS
        .iter()
        .chain([&DEMO_SUPERVISOR, &DEMO_ADMIN])
        .find(|demo| demo.id == request.agent);
    let Some(demo) = found.filter(|demo| same_secret(demo.password.as_bytes(), request.password.as_bytes()))
    else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "unknown agent or wrong password",
        ));
    };
    let identity = Identity::agent(state.tenant.clone(), agent_id(demo)).with_role(demo.role);
    let token = state.tokens.issue(&identity, AGENT_TOKEN_TTL);
    Ok(token_response(json!({
        "token": token,
        "agent": demo.id,
        "name": demo.name,
        "role": demo.role,
        "expires_in": AGENT_TOKEN_TTL.as_secs(),
    })))
}

/// The agent a request's `Authorization: Bearer` token names, of the demo's tenant; 401 or 403 otherwise.
pub(crate) async fn require_agent(state: &AppState, headers: &HeaderMap) -> Result<AgentId, ApiError> {
    require_agent_role(state, headers, Role::Agent).await
}

/// The agent of the demo tenant whose bearer token the request carries, if its role is at least `minimum`
/// (401 without a valid token, 403 for a visitor, another tenant or a lower role).
pub(crate) async fn require_agent_role(
    state: &AppState,
    headers: &HeaderMap,
    minimum: Role,
) -> Result<AgentId, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send an agent token as `Authorization: Bearer <token>`",
            )
        })?;
    let identity = state
        .engine
        .authenticate(token.trim())
        .await
        .map_err(|error| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", error.to_string()))?;
    let forbidden = |message: String| ApiError::new(StatusCode::FORBIDDEN, "forbidden", message);
    if identity.tenant != state.tenant {
        return Err(forbidden("this API is for the tenant's agents".into()));
    }
    kf_core::engine::require_role(&identity, minimum)
        .cloned()
        .map_err(|error| forbidden(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
