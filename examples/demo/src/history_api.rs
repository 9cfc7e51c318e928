//! `GET /api/history/search` and `GET /api/history/export`: history search and export for the tenant's agents.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kf_core::model::{AgentId, GroupId, TenantId, Timestamp};
use kf_core::store::{ExportFormat, ExportKind, HistoryCursor, HistoryQuery, StateFilter, StoreError};
use serde::Deserialize;

use crate::accounts::require_agent;
use crate::{ApiError, AppState};

/// The query string of the history endpoints.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryParams {
    q: Option<String>,
    agent: Option<String>,
    group: Option<String>,
    label: Option<String>,
    state: Option<String>,
    min_rating: Option<u8>,
    max_rating: Option<u8>,
    from: Option<u64>,
    until: Option<u64>,
    limit: Option<usize>,
    cursor: Option<String>,
    notes: Option<bool>,
    format: Option<String>,
    kind: Option<String>,
}

impl HistoryParams {
    /// The query for the demo's tenant. Agents see notes unless they ask `notes=false`.
    fn query(&self, tenant: &TenantId) -> Result<HistoryQuery, ApiError> {
        let bad =
            |what: &str, error: &dyn std::fmt::Display| ApiError::bad_request(format!("{what}: {error}"));
        let mut query = HistoryQuery::new(tenant.clone());
        query.text = self.q.clone();
        query.agent = self
            .agent
            .as_deref()
            .map(AgentId::new)
            .transpose()
            .map_err(|e| bad("agent", &e))?;
        query.group = self
            .group
            .as_deref()
            .map(GroupId::new)
            .transpose()
            .map_err(|e| bad("group", &e))?;
        query.label = self.label.clone();
        query.state = self
            .state
            .as_deref()
            .map(str::parse::<StateFilter>)
            .transpose()
            .map_err(|e| bad("state", &e))?;
        query.min_rating = self.min_rating;
        query.max_rating = self.max_rating;
        query.from = self.from.map(Timestamp);
        query.until = self.until.map(Timestamp);
        query.limit = self.limit.unwrap_or(20);
        query.cursor = self
            .cursor
            .as_deref()
            .map(str::parse::<HistoryCursor>)
            .transpose()
            .map_err(|e| bad("cursor", &e))?;
        query.notes = self.notes.unwrap_or(true);
        query.check().map_err(|e| bad("query", &e))?;
        Ok(query)
    }
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Invalid(message) => ApiError::bad_request(message),
        other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", other.to_string()),
    }
}

pub(crate) async fn history_search(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require_agent(&state, &headers).await?;
    let Query(params) = params.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let query = params.query(&state.tenant)?;
    let page = state.engine.search_history(&query).await.map_err(store_error)?;
    let mut response = axum::Json(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub(crate) async fn history_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require_agent(&state, &headers).await?;
    let Query(params) = params.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let query = params.query(&state.tenant)?;
    let format: ExportFormat = params
        .format
        .as_deref()
        .unwrap_or("csv")
        .parse()
        .map_err(store_error)?;
    let kind = match params.kind.as_deref().unwrap_or("messages") {
        "messages" => ExportKind::Messages,
        "conversations" => ExportKind::Conversations,
        other => return Err(ApiError::bad_request(format!("unknown export kind {other:?}"))),
    };
    let stream = state
        .engine
        .export_history(query, kind, format)
        .map_err(store_error)?;
    let extension = match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Jsonl => "jsonl",
    };
    let disposition = format!(
        "attachment; filename=\"kf-{}.{extension}\"",
        match kind {
            ExportKind::Messages => "messages",
            ExportKind::Conversations => "conversations",
        }
    );
    let mut response = axum::body::Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
