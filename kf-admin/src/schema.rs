//! The request and response bodies, as the OpenAPI document describes them. Each is read into the kf-core record
//! it mirrors through serde (the record's own checks apply), with the tenant and id taken from the caller and
//! the path.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AdminError;

/// Reads `body` as the record `T`, with `tenant` and (when given) `id` added: a field the record refuses is a
/// 400 naming it.
pub(crate) fn record<T: DeserializeOwned>(
    body: &impl Serialize,
    tenant: &str,
    id: Option<(&str, &str)>,
) -> Result<T, AdminError> {
    let mut value = serde_json::to_value(body).map_err(|error| AdminError::invalid(error.to_string()))?;
    if let Some(object) = value.as_object_mut() {
        object.insert("tenant".into(), tenant.into());
        if let Some((key, id)) = id {
            object.insert(key.into(), id.into());
        }
    }
    serde_json::from_value(value).map_err(|error| AdminError::invalid(error.to_string()))
}

/// Converts a kf-core record to its API form.
pub(crate) fn view<T: DeserializeOwned>(record: &impl Serialize) -> Result<T, AdminError> {
    serde_json::to_value(record)
        .and_then(serde_json::from_value)
        .map_err(|error| {
            AdminError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                error.to_string(),
            )
        })
}

fn yes() -> bool {
    true
}

/// An agent, as created or replaced (`PUT /agents/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    /// Display name shown to visitors (1 to 200 bytes).
    #[schema(example = "Alice")]
    pub name: String,
    /// The groups it takes conversations from (each must exist).
    #[serde(default)]
    #[schema(example = json!(["support"]))]
    pub groups: Vec<String>,
    /// Most open conversations at once (0 to 1000).
    #[schema(example = 3)]
    pub capacity: u32,
    /// Per-group overrides of `capacity`, for groups it is in.
    #[serde(default)]
    pub group_capacity: BTreeMap<String, u32>,
    /// False: deactivated (takes nothing, cannot connect). Absent: as it is (a new agent is active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// An agent as the engine routes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    /// The tenant.
    pub tenant: String,
    /// The agent's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Most open conversations at once.
    pub capacity: u32,
    /// Per-group overrides of `capacity`.
    #[serde(default)]
    pub group_capacity: BTreeMap<String, u32>,
    /// Whether it is active.
    #[serde(default = "yes")]
    pub active: bool,
}

/// A group's timers, in milliseconds (absent: off).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimersBody {
    /// Longest wait in the queue; then to `fallback`, or an offline message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_ms: Option<u64>,
    /// Where a conversation waiting too long goes (another group of the tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// After this wait a conversation counts as missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_after_ms: Option<u64>,
    /// An assigned agent who has not answered by then loses the conversation to the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_timeout_ms: Option<u64>,
    /// A conversation whose visitor is silent this long is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_close_ms: Option<u64>,
}

/// A group, as created or replaced (`PUT /groups/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    /// Display name (1 to 200 bytes).
    #[schema(example = "Support")]
    pub name: String,
    /// `default`, `least_busy`, `round_robin`, `manual`, `sticky`, or `{"external": "<policy name>"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "least_busy")]
    pub strategy: Option<serde_json::Value>,
    /// Most conversations assigned at once over all its agents (absent: no cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active: Option<u32>,
    /// A message posted in every new conversation of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<String>,
    /// Its timers.
    #[serde(default)]
    pub timers: TimersBody,
    /// The group a bot-first group hands over to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<String>,
}

/// A group as the engine routes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    /// The tenant.
    pub tenant: String,
    /// The group's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its strategy.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub strategy: Option<serde_json::Value>,
    /// Its cap.
    #[serde(default)]
    pub max_active: Option<u32>,
    /// Its welcome message.
    #[serde(default)]
    pub welcome: Option<String>,
    /// Its timers.
    #[serde(default)]
    pub timers: TimersBody,
    /// Its hand-over group.
    #[serde(default)]
    pub handover: Option<String>,
}

/// A group's working hours (`docs/offline.md`): weekly intervals in a time zone, and holidays.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HoursBody {
    /// An IANA time zone.
    #[schema(example = "Europe/Berlin")]
    pub time_zone: String,
    /// Per day (`mon` … `sun`), its opening intervals `"HH:MM-HH:MM"`; a missing day is closed.
    #[serde(default)]
    #[schema(example = json!({"mon": ["09:00-17:00"]}))]
    pub weekly: BTreeMap<String, Vec<String>>,
    /// Dates (`YYYY-MM-DD`) with their own hours: closed all day without `hours`.
    #[serde(default)]
    pub holidays: Vec<HolidayBody>,
}

/// A holiday.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HolidayBody {
    /// The date, `YYYY-MM-DD`.
    #[schema(example = "2026-12-25")]
    pub date: String,
    /// Its hours instead of the weekly ones (absent: closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<Vec<String>>,
}

/// An entry point, as created or replaced (`PUT /entry-points/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryPointBody {
    /// The group its conversations go to.
    #[schema(example = "support")]
    pub group: String,
    /// A welcome message instead of the group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<String>,
    /// Page rules: a visitor on a matching page opens here (`*` matches any text).
    #[serde(default)]
    #[schema(example = json!(["https://shop.example/pricing*"]))]
    pub pages: Vec<String>,
    /// The pre-chat form's fields (`docs/prechat.md`).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub prechat: Vec<serde_json::Value>,
}

/// An entry point.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntryPointView {
    /// The tenant.
    pub tenant: String,
    /// Its id.
    pub id: String,
    /// Its group.
    pub group: String,
    /// Its welcome message.
    #[serde(default)]
    pub welcome: Option<String>,
    /// Its page rules.
    #[serde(default)]
    pub pages: Vec<String>,
    /// Its pre-chat form.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub prechat: Vec<serde_json::Value>,
}

/// A group's shared quick reply, as created or replaced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickReplyBody {
    /// What agents type: lowercase letters, digits, `-`, `_`.
    #[schema(example = "refund")]
    pub shortcut: String,
    /// The text inserted.
    #[schema(example = "Your refund is on its way.")]
    pub text: String,
}

/// A quick reply.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuickReplyView {
    /// Its id.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// `group` or `agent`.
    pub scope: String,
    /// The group's id (group quick replies).
    #[serde(default)]
    pub group: Option<String>,
    /// The agent's id (agent quick replies).
    #[serde(default)]
    pub agent: Option<String>,
    /// Its shortcut.
    pub shortcut: String,
    /// Its text.
    pub text: String,
}

/// A label definition, as created or replaced (`PUT /labels/{name}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelBody {
    /// Its colour, `#rrggbb`.
    #[schema(example = "#d97706")]
    pub color: String,
}

/// A label definition.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LabelView {
    /// The tenant.
    pub tenant: String,
    /// Its name.
    pub name: String,
    /// Its colour.
    pub color: String,
}

/// One admin change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Increasing with time; a page's `next` is the `before` of the next page.
    pub id: u64,
    /// The tenant.
    pub tenant: String,
    /// The admin who made it.
    pub actor: String,
    /// When, in milliseconds since the Unix epoch.
    pub at: u64,
    /// `<object kind>.<verb>`, e.g. `agent.deactivate`.
    pub action: String,
    /// `agent`, `group`, `hours`, `entry_point`, `quick_reply` or `label`.
    pub object_kind: String,
    /// The object's id.
    pub object_id: String,
    /// The object before (absent: it did not exist).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The object after (absent: deleted).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPageView {
    /// The entries.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; absent on the last one.
    pub next: Option<u64>,
}

/// The audit log's filters (all optional, combined).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only this admin's changes.
    pub actor: Option<String>,
    /// Only changes of this object kind.
    pub object_kind: Option<String>,
    /// Only changes of this object id.
    pub object_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only changes at or after this time (ms since the epoch).
    pub since: Option<u64>,
    /// Only changes before this time (ms since the epoch).
    pub until: Option<u64>,
    /// Only entries older than this id (the `next` of the previous page).
    pub before: Option<u64>,
    /// Entries per page, 1 to 200 (default 50).
    pub limit: Option<usize>,
}

/// The web origins a tenant allows (`GET`/`PUT /origins`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginsBody {
    /// `scheme://host[:port]`, with `*.` for any subdomain; at most 100.
    #[schema(example = json!(["https://shop.example", "https://*.shop.example"]))]
    pub origins: Vec<String>,
}

/// Who the caller is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeView {
    /// Its tenant.
    pub tenant: String,
    /// Its agent id (absent for a visitor).
    pub agent: Option<String>,
    /// `agent`, `supervisor` or `admin` (`visitor` for a visitor).
    pub role: String,
}
