//! `/api/v1/audit`: the audit log.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{AppState, Auth, Query, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::audit::{self, AuditQuery};
use crate::app::page::{Page, PageRequest};
use crate::domain::audit::AuditEntry;

/// Audit filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// `system`, `<kind>:<id>` (`user:3`, `integration:2`), a user id or a username.
    pub actor: Option<String>,
    /// `<kind>` or `<kind>:<id>`, e.g. `incident:42`, or a number: `INC-42`, `PRB-7`.
    pub target: Option<String>,
    /// RFC 3339; only entries at or after it.
    pub since: Option<String>,
    /// Page size (1..500, default 50).
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Every change: actor, action, target, time and what changed; newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])), params(AuditParams),
    responses((status = 200, body = inline(Page<AuditEntry>)), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::AuditRead>,
    Query(q): Query<AuditParams>,
) -> Result<Json<Page<AuditEntry>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let since = q
        .since
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(audit::parse_since)
        .transpose()?;
    let query = AuditQuery {
        actor: q.actor.filter(|s| !s.trim().is_empty()),
        target: q.target.filter(|s| !s.trim().is_empty()),
        since,
    };
    Ok(Json(audit::list(&app, &auth.actor, &query, page)?))
}
