//! The handlers: each reads its input, calls the engine's admin operation ([`kf_core::engine::Admin`]) and
//! answers JSON. Checks, live effects and the audit log are the engine's.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use kf_core::auth::Principal;
use kf_core::model::{AgentId, EntryPointId, GroupId, Timestamp};
use kf_core::store::AuditQuery;

use crate::schema::{
    AgentBody, AgentView, AuditPageView, AuditParams, EntryPointBody, EntryPointView, GroupBody, GroupView,
    HoursBody, LabelBody, LabelView, MeView, OriginsBody, QuickReplyBody, QuickReplyView, record, view,
};
use crate::{AdminCaller, AdminError, Caller, ErrorBody};

type Answer<T> = Result<Json<T>, AdminError>;

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AdminError> {
    body.map(|Json(body)| body)
        .map_err(|rejection| AdminError::invalid(rejection.body_text()))
}

fn id<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, AdminError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|error| AdminError::invalid(format!("bad {what} id {text:?}: {error}")))
}

fn views<T: serde::de::DeserializeOwned>(records: &[impl serde::Serialize]) -> Result<Vec<T>, AdminError> {
    records.iter().map(view).collect()
}

/// Who the caller is (any authenticated identity).
#[utoipa::path(get, path = "/me", tag = "session",
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
pub(crate) async fn me(caller: Caller) -> Answer<MeView> {
    let identity = caller.identity();
    let (agent, role) = match &identity.principal {
        Principal::Agent(agent) => (Some(agent.to_string()), identity.role.to_string()),
        _ => (None, "visitor".to_owned()),
    };
    Ok(Json(MeView {
        tenant: identity.tenant.to_string(),
        agent,
        role,
    }))
}

// ---- agents ----

/// The tenant's agents, ordered by id.
#[utoipa::path(get, path = "/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn agents(AdminCaller(admin): AdminCaller) -> Answer<Vec<AgentView>> {
    Ok(Json(views(&admin.agents())?))
}

/// One agent.
#[utoipa::path(get, path = "/agents/{id}", tag = "agents", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = AgentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn agent(AdminCaller(admin): AdminCaller, Path(agent): Path<String>) -> Answer<AgentView> {
    Ok(Json(view(&admin.agent(&id::<AgentId>("agent", &agent)?)?)?))
}

/// Creates or replaces an agent: its groups and capacities apply at once (queues drain); `active: false`
/// deactivates it, `true` activates it, and without `active` it stays as it is.
#[utoipa::path(put, path = "/agents/{id}", tag = "agents", params(("id" = String, Path, description = "agent id")),
    request_body = AgentBody,
    responses((status = 200, body = AgentView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn put_agent(
    AdminCaller(admin): AdminCaller,
    Path(agent): Path<String>,
    input: Result<Json<AgentBody>, JsonRejection>,
) -> Answer<AgentView> {
    let mut input = body(input)?;
    let existing = admin.agent(&id::<AgentId>("agent", &agent)?).ok();
    // Replacing the record keeps a deactivated agent deactivated unless the body says otherwise.
    input.active = input.active.or(Some(existing.is_none_or(|agent| agent.active)));
    let record = record(&input, admin.tenant().as_str(), Some(("id", &agent)))?;
    Ok(Json(view(&admin.put_agent(record).await?)?))
}

/// Deactivates an agent: no new conversations, its connections closed, its conversations back to their queues.
#[utoipa::path(post, path = "/agents/{id}/deactivate", tag = "agents", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = AgentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn deactivate_agent(
    AdminCaller(admin): AdminCaller,
    Path(agent): Path<String>,
) -> Answer<AgentView> {
    Ok(Json(view(&admin.deactivate_agent(&id("agent", &agent)?).await?)?))
}

/// Activates a deactivated agent again.
#[utoipa::path(post, path = "/agents/{id}/activate", tag = "agents", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = AgentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn activate_agent(
    AdminCaller(admin): AdminCaller,
    Path(agent): Path<String>,
) -> Answer<AgentView> {
    Ok(Json(view(&admin.activate_agent(&id("agent", &agent)?).await?)?))
}

/// Deletes an agent (deactivated first: its conversations are handed on).
#[utoipa::path(delete, path = "/agents/{id}", tag = "agents", params(("id" = String, Path, description = "agent id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn delete_agent(
    AdminCaller(admin): AdminCaller,
    Path(agent): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin.delete_agent(&id("agent", &agent)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- groups ----

/// The tenant's groups, ordered by id.
#[utoipa::path(get, path = "/groups", tag = "groups",
    responses((status = 200, body = Vec<GroupView>), (status = 403, body = ErrorBody)))]
pub(crate) async fn groups(AdminCaller(admin): AdminCaller) -> Answer<Vec<GroupView>> {
    Ok(Json(views(&admin.groups())?))
}

/// One group.
#[utoipa::path(get, path = "/groups/{id}", tag = "groups", params(("id" = String, Path, description = "group id")),
    responses((status = 200, body = GroupView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn group(AdminCaller(admin): AdminCaller, Path(group): Path<String>) -> Answer<GroupView> {
    Ok(Json(view(&admin.group(&id::<GroupId>("group", &group)?)?)?))
}

/// Creates or replaces a group (strategy, cap, welcome, timers, fallback, hand-over).
#[utoipa::path(put, path = "/groups/{id}", tag = "groups", params(("id" = String, Path, description = "group id")),
    request_body = GroupBody,
    responses((status = 200, body = GroupView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn put_group(
    AdminCaller(admin): AdminCaller,
    Path(group): Path<String>,
    input: Result<Json<GroupBody>, JsonRejection>,
) -> Answer<GroupView> {
    let input = body(input)?;
    id::<GroupId>("group", &group)?;
    let record = record(&input, admin.tenant().as_str(), Some(("id", &group)))?;
    Ok(Json(view(&admin.put_group(record).await?)?))
}

/// Deletes a group and its hours; 409 while agents, open conversations, entry points or other groups use it.
#[utoipa::path(delete, path = "/groups/{id}", tag = "groups", params(("id" = String, Path, description = "group id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn delete_group(
    AdminCaller(admin): AdminCaller,
    Path(group): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin.delete_group(&id("group", &group)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A group's working hours and holidays; `null` when it has none (always open).
#[utoipa::path(get, path = "/groups/{id}/hours", tag = "groups", params(("id" = String, Path, description = "group id")),
    responses((status = 200, body = Option<HoursBody>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn group_hours(
    AdminCaller(admin): AdminCaller,
    Path(group): Path<String>,
) -> Answer<Option<HoursBody>> {
    let hours = admin.group_hours(&id("group", &group)?)?;
    Ok(Json(hours.as_ref().map(view).transpose()?))
}

/// Sets a group's working hours and holidays: the next visitor to open follows them.
#[utoipa::path(put, path = "/groups/{id}/hours", tag = "groups", params(("id" = String, Path, description = "group id")),
    request_body = HoursBody,
    responses((status = 200, body = HoursBody), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn put_group_hours(
    AdminCaller(admin): AdminCaller,
    Path(group): Path<String>,
    input: Result<Json<HoursBody>, JsonRejection>,
) -> Answer<HoursBody> {
    let input = body(input)?;
    let hours: kf_core::hours::WorkingHours = serde_json::to_value(&input)
        .and_then(serde_json::from_value)
        .map_err(|error| AdminError::invalid(error.to_string()))?;
    admin
        .put_group_hours(&id("group", &group)?, Some(hours.clone()))
        .await?;
    Ok(Json(view(&hours)?))
}

/// Removes a group's working hours: always open.
#[utoipa::path(delete, path = "/groups/{id}/hours", tag = "groups", params(("id" = String, Path, description = "group id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_group_hours(
    AdminCaller(admin): AdminCaller,
    Path(group): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin.put_group_hours(&id("group", &group)?, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- quick replies ----

/// A group's shared quick replies, ordered by shortcut.
#[utoipa::path(get, path = "/groups/{id}/quick-replies", tag = "quick replies", params(("id" = String, Path, description = "group id")),
    responses((status = 200, body = Vec<QuickReplyView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn quick_replies(
    AdminCaller(admin): AdminCaller,
    Path(group): Path<String>,
) -> Answer<Vec<QuickReplyView>> {
    Ok(Json(views(&admin.quick_replies(&id("group", &group)?).await?)?))
}

/// Adds a quick reply to a group (the server makes its id).
#[utoipa::path(post, path = "/groups/{id}/quick-replies", tag = "quick replies", params(("id" = String, Path, description = "group id")),
    request_body = QuickReplyBody,
    responses((status = 201, body = QuickReplyView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn add_quick_reply(
    AdminCaller(admin): AdminCaller,
    Path(group): Path<String>,
    input: Result<Json<QuickReplyBody>, JsonRejection>,
) -> Result<(StatusCode, Json<QuickReplyView>), AdminError> {
    let input = body(input)?;
    let reply = admin
        .put_quick_reply(&id("group", &group)?, None, input.shortcut, input.text)
        .await?;
    Ok((StatusCode::CREATED, Json(view(&reply)?)))
}

/// Replaces (or creates with this id) a group's quick reply.
#[utoipa::path(put, path = "/groups/{id}/quick-replies/{reply}", tag = "quick replies",
    params(("id" = String, Path, description = "group id"), ("reply" = String, Path, description = "quick reply id")),
    request_body = QuickReplyBody,
    responses((status = 200, body = QuickReplyView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn put_quick_reply(
    AdminCaller(admin): AdminCaller,
    Path((group, reply)): Path<(String, String)>,
    input: Result<Json<QuickReplyBody>, JsonRejection>,
) -> Answer<QuickReplyView> {
    let input = body(input)?;
    let reply = admin
        .put_quick_reply(&id("group", &group)?, Some(reply), input.shortcut, input.text)
        .await?;
    Ok(Json(view(&reply)?))
}

/// Deletes a quick reply of the tenant (a group's or an agent's).
#[utoipa::path(delete, path = "/quick-replies/{reply}", tag = "quick replies", params(("reply" = String, Path, description = "quick reply id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_quick_reply(
    AdminCaller(admin): AdminCaller,
    Path(reply): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin.delete_quick_reply(&reply).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- entry points ----

/// The tenant's entry points, ordered by id.
#[utoipa::path(get, path = "/entry-points", tag = "entry points",
    responses((status = 200, body = Vec<EntryPointView>), (status = 403, body = ErrorBody)))]
pub(crate) async fn entry_points(AdminCaller(admin): AdminCaller) -> Answer<Vec<EntryPointView>> {
    Ok(Json(views(&admin.entry_points())?))
}

/// One entry point.
#[utoipa::path(get, path = "/entry-points/{id}", tag = "entry points", params(("id" = String, Path, description = "entry point id")),
    responses((status = 200, body = EntryPointView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn entry_point(
    AdminCaller(admin): AdminCaller,
    Path(entry): Path<String>,
) -> Answer<EntryPointView> {
    Ok(Json(view(
        &admin.entry_point(&id::<EntryPointId>("entry point", &entry)?)?,
    )?))
}

/// Creates or replaces an entry point (group, welcome, page rules, pre-chat form).
#[utoipa::path(put, path = "/entry-points/{id}", tag = "entry points", params(("id" = String, Path, description = "entry point id")),
    request_body = EntryPointBody,
    responses((status = 200, body = EntryPointView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn put_entry_point(
    AdminCaller(admin): AdminCaller,
    Path(entry): Path<String>,
    input: Result<Json<EntryPointBody>, JsonRejection>,
) -> Answer<EntryPointView> {
    let input = body(input)?;
    id::<EntryPointId>("entry point", &entry)?;
    let record = record(&input, admin.tenant().as_str(), Some(("id", &entry)))?;
    Ok(Json(view(&admin.put_entry_point(record).await?)?))
}

/// Deletes an entry point.
#[utoipa::path(delete, path = "/entry-points/{id}", tag = "entry points", params(("id" = String, Path, description = "entry point id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_entry_point(
    AdminCaller(admin): AdminCaller,
    Path(entry): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin.delete_entry_point(&id("entry point", &entry)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- labels ----

/// The tenant's label definitions, ordered by name.
#[utoipa::path(get, path = "/labels", tag = "labels",
    responses((status = 200, body = Vec<LabelView>), (status = 403, body = ErrorBody)))]
pub(crate) async fn labels(AdminCaller(admin): AdminCaller) -> Answer<Vec<LabelView>> {
    Ok(Json(views(&admin.labels().await?)?))
}

/// Creates or replaces a label definition.
#[utoipa::path(put, path = "/labels/{name}", tag = "labels", params(("name" = String, Path, description = "label name")),
    request_body = LabelBody,
    responses((status = 200, body = LabelView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn put_label(
    AdminCaller(admin): AdminCaller,
    Path(name): Path<String>,
    input: Result<Json<LabelBody>, JsonRejection>,
) -> Answer<LabelView> {
    let input = body(input)?;
    let record = record(&input, admin.tenant().as_str(), Some(("name", &name)))?;
    Ok(Json(view(&admin.put_label(record).await?)?))
}

/// Deletes a label definition (conversations keep the label).
#[utoipa::path(delete, path = "/labels/{name}", tag = "labels", params(("name" = String, Path, description = "label name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_label(
    AdminCaller(admin): AdminCaller,
    Path(name): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin.delete_label(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- allowed origins ----

/// The web origins whose pages may connect to the tenant.
#[utoipa::path(get, path = "/origins", tag = "tenant",
    responses((status = 200, body = OriginsBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn origins(AdminCaller(admin): AdminCaller) -> Answer<OriginsBody> {
    Ok(Json(OriginsBody {
        origins: admin.allowed_origins(),
    }))
}

/// Replaces the web origins whose pages may connect to the tenant (from the next handshake on).
#[utoipa::path(put, path = "/origins", tag = "tenant", request_body = OriginsBody,
    responses((status = 200, body = OriginsBody), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn put_origins(
    AdminCaller(admin): AdminCaller,
    input: Result<Json<OriginsBody>, JsonRejection>,
) -> Answer<OriginsBody> {
    let input = body(input)?;
    Ok(Json(OriginsBody {
        origins: admin.put_allowed_origins(input.origins).await?,
    }))
}

// ---- audit ----

/// The tenant's audit log, newest first, filtered and paged.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPageView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn audit(
    AdminCaller(admin): AdminCaller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Answer<AuditPageView> {
    let Query(params) = params.map_err(|rejection| AdminError::invalid(rejection.body_text()))?;
    let mut query = AuditQuery::new(admin.tenant().clone());
    query.actor = params
        .actor
        .as_deref()
        .map(|actor| id("agent", actor))
        .transpose()?;
    query.object_kind = params.object_kind;
    query.object_id = params.object_id;
    query.action = params.action;
    query.since = params.since.map(Timestamp);
    query.until = params.until.map(Timestamp);
    query.before = params.before;
    query.limit = params.limit;
    Ok(Json(view(&admin.audit(query).await?)?))
}
