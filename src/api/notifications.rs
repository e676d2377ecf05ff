//! `/api/v1/notification-rules`, `/api/v1/notification-templates`, `/api/v1/notifications`
//! (the delivery log) and `/api/v1/users/{id}/contact-methods`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::notifications::contacts::{self, ContactMethodPatch, NewContactMethod};
use crate::app::notifications::outbox::{self, DeliveryParams};
use crate::app::notifications::rules::{self, NewRule, RulePatch};
use crate::app::notifications::templates::{self, SetTemplate, TemplateView};
use crate::app::page::{Page, PageRequest};
use crate::domain::notification::{ChannelKind, ContactMethod, Delivery, NotificationRule};

/// Lists notification rules.
#[utoipa::path(get, path = "/api/v1/notification-rules", tag = "notifications", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<NotificationRule>)), (status = 403, body = Problem)))]
pub async fn list_rules(
    State(app): State<AppState>,
    auth: Auth<perm::NotificationRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<NotificationRule>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(rules::list(&app, &auth.actor, page)?))
}

/// Creates a notification rule.
#[utoipa::path(post, path = "/api/v1/notification-rules", tag = "notifications", security(("bearer" = [])), request_body = NewRule,
    responses((status = 201, body = NotificationRule), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_rule(
    State(app): State<AppState>,
    auth: Auth<perm::NotificationWrite>,
    Body(input): Body<NewRule>,
) -> Result<(StatusCode, Json<NotificationRule>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(rules::create(&app, &auth.actor, input).await?),
    ))
}

/// One notification rule.
#[utoipa::path(get, path = "/api/v1/notification-rules/{id}", tag = "notifications", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = NotificationRule), (status = 404, body = Problem)))]
pub async fn get_rule(
    State(app): State<AppState>,
    auth: Auth<perm::NotificationRead>,
    Path(id): Path<String>,
) -> Result<Json<NotificationRule>, AppError> {
    Ok(Json(rules::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes a notification rule.
#[utoipa::path(patch, path = "/api/v1/notification-rules/{id}", tag = "notifications", security(("bearer" = [])), params(("id" = u64, Path)), request_body = RulePatch,
    responses((status = 200, body = NotificationRule), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_rule(
    State(app): State<AppState>,
    auth: Auth<perm::NotificationWrite>,
    Path(id): Path<String>,
    Body(patch): Body<RulePatch>,
) -> Result<Json<NotificationRule>, AppError> {
    Ok(Json(
        rules::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes a notification rule.
#[utoipa::path(delete, path = "/api/v1/notification-rules/{id}", tag = "notifications", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_rule(
    State(app): State<AppState>,
    auth: Auth<perm::NotificationWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    rules::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every template: shipped defaults and overrides.
#[utoipa::path(get, path = "/api/v1/notification-templates", tag = "notifications", security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = inline(Page<TemplateView>)), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list_templates(
    State(app): State<AppState>,
    auth: Auth<perm::NotificationRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<TemplateView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(Page::positional(
        templates::list(&app, &auth.actor)?,
        page,
    )))
}

/// Sets a template override; a template that does not compile, or that would fail on any
/// event (unknown function, filter, test or method; too much work), is 422 with its line.
#[utoipa::path(put, path = "/api/v1/notification-templates", tag = "notifications", security(("bearer" = [])), request_body = SetTemplate,
    responses((status = 200, body = TemplateView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn set_template(
    State(app): State<AppState>,
    auth: Auth<perm::NotificationWrite>,
    Body(input): Body<SetTemplate>,
) -> Result<Json<TemplateView>, AppError> {
    Ok(Json(templates::set(&app, &auth.actor, input).await?))
}

/// Which override to remove.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TemplateKey {
    /// An event name, or `*` (default).
    pub event: Option<String>,
}

/// Removes an override.
#[utoipa::path(delete, path = "/api/v1/notification-templates/{channel}/{part}", tag = "notifications", security(("bearer" = [])),
    params(("channel" = String, Path), ("part" = String, Path), TemplateKey),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn reset_template(
    State(app): State<AppState>,
    auth: Auth<perm::NotificationWrite>,
    Path((channel, part)): Path<(String, String)>,
    Query(q): Query<TemplateKey>,
) -> Result<StatusCode, AppError> {
    let channel: ChannelKind = channel
        .parse()
        .map_err(|_| AppError::not_found("template channel", &channel))?;
    templates::reset(
        &app,
        &auth.actor,
        q.event.unwrap_or_else(|| templates::ANY_EVENT.into()),
        channel,
        part,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The delivery log: channel, target, status, attempts, last error, latency.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])), params(DeliveryParams),
    responses((status = 200, body = inline(Page<Delivery>)), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn deliveries(
    State(app): State<AppState>,
    auth: Auth<perm::NotificationRead>,
    Query(q): Query<DeliveryParams>,
) -> Result<Json<Page<Delivery>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(outbox::list(&app, &auth.actor, &q, page)?))
}

/// A user's contact methods (the user themself, or `user:read`).
#[utoipa::path(get, path = "/api/v1/users/{id}/contact-methods", tag = "users", security(("bearer" = [])), params(("id" = u64, Path), ListParams),
    responses((status = 200, body = inline(Page<ContactMethod>)), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list_contacts(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<ContactMethod>>, AppError> {
    // Who may see them (403, 404) before what the query asks (422).
    let contacts = contacts::list(&app, &auth.actor, parse_id(&id)?)?;
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(Page::positional(contacts, page)))
}

/// Adds a contact method (the user themself, or `user:write`).
#[utoipa::path(post, path = "/api/v1/users/{id}/contact-methods", tag = "users", security(("bearer" = [])), params(("id" = u64, Path)), request_body = NewContactMethod,
    responses((status = 201, body = ContactMethod), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_contact(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Result<Body<NewContactMethod>, Problem>,
) -> Result<(StatusCode, Json<ContactMethod>), Response> {
    // Who may is decided before the body is looked at: 403 before 400/422.
    let id = parse_id(&id).map_err(IntoResponse::into_response)?;
    contacts::allowed(&app, &auth.actor, id, true).map_err(IntoResponse::into_response)?;
    let Body(input) = body.map_err(IntoResponse::into_response)?;
    Ok((
        StatusCode::CREATED,
        Json(
            contacts::create(&app, &auth.actor, id, input)
                .await
                .map_err(IntoResponse::into_response)?,
        ),
    ))
}

/// Changes a contact method.
#[utoipa::path(patch, path = "/api/v1/users/{id}/contact-methods/{method_id}", tag = "users", security(("bearer" = [])), params(("id" = u64, Path), ("method_id" = u64, Path)), request_body = ContactMethodPatch,
    responses((status = 200, body = ContactMethod), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_contact(
    State(app): State<AppState>,
    auth: Auth,
    Path((id, method)): Path<(String, String)>,
    body: Result<Body<ContactMethodPatch>, Problem>,
) -> Result<Json<ContactMethod>, Response> {
    let id = parse_id(&id).map_err(IntoResponse::into_response)?;
    contacts::allowed(&app, &auth.actor, id, true).map_err(IntoResponse::into_response)?;
    let Body(patch) = body.map_err(IntoResponse::into_response)?;
    let method = parse_id(&method).map_err(IntoResponse::into_response)?;
    Ok(Json(
        contacts::update(&app, &auth.actor, id, method, patch)
            .await
            .map_err(IntoResponse::into_response)?,
    ))
}

/// Removes a contact method.
#[utoipa::path(delete, path = "/api/v1/users/{id}/contact-methods/{method_id}", tag = "users", security(("bearer" = [])), params(("id" = u64, Path), ("method_id" = u64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_contact(
    State(app): State<AppState>,
    auth: Auth,
    Path((id, method)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    contacts::delete(&app, &auth.actor, parse_id(&id)?, parse_id(&method)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
