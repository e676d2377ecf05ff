//! `/api/v1/approval-workflows` and `/api/v1/approvals`: multi-level approvals.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::approvals::{
    self, ApprovalParams, DecisionRequest, NewApproval, NewWorkflow, WorkflowPatch,
};
use crate::app::page::{Page, PageRequest};
use crate::domain::approval::{ApprovalRequest, ApprovalWorkflow};

/// An approval request as the API shows it: the record and its display number.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ApprovalView {
    /// The record.
    #[serde(flatten)]
    pub request: ApprovalRequest,
    /// `APR-<id>`, as chat and notifications name it.
    pub number: String,
}

impl From<ApprovalRequest> for ApprovalView {
    fn from(request: ApprovalRequest) -> Self {
        let number = request.number();
        Self { request, number }
    }
}

/// An approval id: `12`, `APR-12` (any case) or `#12`, as chat accepts.
fn approval_id(raw: &str) -> Result<u64, AppError> {
    super::extract::parse_ref(raw, "APR-")
}

/// Lists approval workflows.
#[utoipa::path(get, path = "/api/v1/approval-workflows", tag = "approvals", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<ApprovalWorkflow>)), (status = 403, body = Problem)))]
pub async fn list_workflows(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<ApprovalWorkflow>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(approvals::list_workflows(&app, &auth.actor, page)?))
}

/// Creates an approval workflow.
#[utoipa::path(post, path = "/api/v1/approval-workflows", tag = "approvals", security(("bearer" = [])), request_body = NewWorkflow,
    responses((status = 201, body = ApprovalWorkflow), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_workflow(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalWrite>,
    Body(input): Body<NewWorkflow>,
) -> Result<(StatusCode, Json<ApprovalWorkflow>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(approvals::create_workflow(&app, &auth.actor, input).await?),
    ))
}

/// One approval workflow.
#[utoipa::path(get, path = "/api/v1/approval-workflows/{id}", tag = "approvals", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = ApprovalWorkflow), (status = 404, body = Problem)))]
pub async fn get_workflow(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalRead>,
    Path(id): Path<String>,
) -> Result<Json<ApprovalWorkflow>, AppError> {
    Ok(Json(approvals::get_workflow(
        &app,
        &auth.actor,
        parse_id(&id)?,
    )?))
}

/// Changes an approval workflow; pending requests keep their levels.
#[utoipa::path(patch, path = "/api/v1/approval-workflows/{id}", tag = "approvals", security(("bearer" = [])), params(("id" = u64, Path)), request_body = WorkflowPatch,
    responses((status = 200, body = ApprovalWorkflow), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_workflow(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalWrite>,
    Path(id): Path<String>,
    Body(patch): Body<WorkflowPatch>,
) -> Result<Json<ApprovalWorkflow>, AppError> {
    Ok(Json(
        approvals::update_workflow(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes an approval workflow.
#[utoipa::path(delete, path = "/api/v1/approval-workflows/{id}", tag = "approvals", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_workflow(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    approvals::delete_workflow(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists approval requests, newest first (`?status=pending`).
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", security(("bearer" = [])), params(ApprovalParams),
    responses((status = 200, body = inline(Page<ApprovalView>)), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalRead>,
    Query(q): Query<ApprovalParams>,
) -> Result<Json<Page<ApprovalView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(
        approvals::list(&app, &auth.actor, q.status.as_deref(), page)?.map(ApprovalView::from),
    ))
}

/// Asks for an approval; level 1's approvers are told.
#[utoipa::path(post, path = "/api/v1/approvals", tag = "approvals", security(("bearer" = [])), request_body = NewApproval,
    responses((status = 201, body = ApprovalView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalWrite>,
    Body(input): Body<NewApproval>,
) -> Result<(StatusCode, Json<ApprovalView>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(approvals::request(&app, &auth.actor, input).await?.into()),
    ))
}

/// One approval request (`12` or `APR-12`).
#[utoipa::path(get, path = "/api/v1/approvals/{id}", tag = "approvals", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ApprovalView), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalRead>,
    Path(id): Path<String>,
) -> Result<Json<ApprovalView>, AppError> {
    Ok(Json(
        approvals::get(&app, &auth.actor, approval_id(&id)?)?.into(),
    ))
}

/// Approves or rejects at the current level: 403 for the requester or a non-approver,
/// 409 once decided, past its deadline, or for a second decision at the same level.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/decision", tag = "approvals", security(("bearer" = [])), params(("id" = String, Path)), request_body = DecisionRequest,
    responses((status = 200, body = ApprovalView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn decision(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalDecide>,
    Path(id): Path<String>,
    Body(input): Body<DecisionRequest>,
) -> Result<Json<ApprovalView>, AppError> {
    Ok(Json(
        approvals::decide(&app, &auth.actor, approval_id(&id)?, input)
            .await?
            .into(),
    ))
}

/// Withdraws a pending request (the requester, or anybody who may decide approvals);
/// 409 once decided or past its deadline.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/cancel", tag = "approvals", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ApprovalView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(app): State<AppState>,
    auth: Auth<perm::ApprovalWrite>,
    Path(id): Path<String>,
) -> Result<Json<ApprovalView>, AppError> {
    Ok(Json(
        approvals::cancel(&app, &auth.actor, approval_id(&id)?)
            .await?
            .into(),
    ))
}
