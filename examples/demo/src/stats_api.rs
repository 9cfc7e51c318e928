//! `GET /api/stats` and `GET /api/monitor`: the engine's statistics and live monitor as JSON, for the tenant's
//! supervisors and admins (`Authorization: Bearer` token; an agent gets 403).

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kf_core::model::Timestamp;
use kf_core::stats::{StatsBy, StatsError, StatsQuery, StatsStep};
use serde::Deserialize;
use serde_json::json;

use kf_core::auth::Role;

use crate::accounts::require_agent_role;
use crate::{ApiError, AppState};

/// The range a query without `from` covers: the last 7 days.
const DEFAULT_RANGE_MS: u64 = 7 * 24 * 3_600_000;
/// How long `settle=true` waits for the statistics to include everything committed before the request.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// The query string of `/api/stats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatsParams {
    /// Start of the range, ms since the epoch (default: `to` minus 7 days).
    from: Option<u64>,
    /// End of the range, exclusive (default: now).
    to: Option<u64>,
    /// all (default), agent, group or entry.
    by: Option<StatsBy>,
    /// Only this agent, group or entry point.
    key: Option<String>,
    /// total (default), day or hour.
    step: Option<StatsStep>,
    /// Wait (at most 5 s) until everything committed before the request is counted.
    settle: Option<bool>,
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<StatsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require_agent_role(&state, &headers, Role::Supervisor).await?;
    let Query(params) = params.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let to = params.to.unwrap_or_else(|| Timestamp::now().0);
    let from = params.from.unwrap_or_else(|| to.saturating_sub(DEFAULT_RANGE_MS));
    let mut query = StatsQuery::new(state.tenant.clone(), Timestamp(from), Timestamp(to))
        .by(params.by.unwrap_or_default())
        .step(params.step.unwrap_or_default());
    query.key = params.key;
    if params.settle.unwrap_or(false)
        && tokio::time::timeout(SETTLE_WAIT, state.engine.stats_settled())
            .await
            .is_err()
    {
        tracing::warn!("statistics did not settle within {SETTLE_WAIT:?}; answering with what they have");
    }
    let rows = state.engine.stats(&query).map_err(|error| match error {
        StatsError::Invalid(message) => ApiError::bad_request(message),
        other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", other.to_string()),
    })?;
    let status = state.engine.stats_status().ok();
    Ok(no_store(
        axum::Json(json!({"from": from, "to": to, "rows": rows, "status": status})).into_response(),
    ))
}

pub(crate) async fn monitor(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_agent_role(&state, &headers, Role::Supervisor).await?;
    Ok(no_store(
        axum::Json(state.engine.monitor(&state.tenant)).into_response(),
    ))
}
