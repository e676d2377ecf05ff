//! `/api/v1/auth`: login, refresh, logout, me, own password.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{AppState, Auth, Body, ClientAddr};
use super::problem::Problem;
use crate::app::auth::{self, Me, PasswordChange, TokenPair};
use crate::app::{AppError, FieldErrors};

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A refresh token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// From the login or the last refresh.
    pub refresh_token: String,
}

/// Exchanges credentials for tokens. Wrong username and wrong password get the same 401.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Body(input): Body<Login>,
) -> Result<Json<TokenPair>, AppError> {
    Ok(Json(
        auth::login(&app, &input.username, &input.password, addr).await?,
    ))
}

/// Rotates a refresh token into a new pair.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = Refresh,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem)))]
pub async fn refresh(
    State(app): State<AppState>,
    Body(input): Body<Refresh>,
) -> Result<Json<TokenPair>, AppError> {
    Ok(Json(auth::refresh(&app, &input.refresh_token).await?))
}

/// What `/auth/logout` ends: the session of a refresh token, or without one the session
/// of the bearer access token.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Logout {
    /// From the login or the last refresh; absent: the session of the bearer token.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Ends a session: the one of the refresh token given, or the one of the bearer access
/// token (a client that only kept its access token can still log out).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = Logout,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn logout(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    Body(input): Body<Logout>,
) -> Result<StatusCode, AppError> {
    match input.refresh_token.filter(|t| !t.trim().is_empty()) {
        Some(token) => auth::logout(&app, &token).await?,
        None => {
            let Some(bearer) = super::extract::bearer_token(&headers) else {
                return Err(FieldErrors::single(
                    "refresh_token",
                    "is required without a bearer access token",
                ));
            };
            // A bad or expired access token is a 401, as on every route; one from before
            // sessions were recorded in tokens names none, and expires on its own.
            let claims = app
                .tokens
                .verify(bearer, app.clock.now().timestamp())
                .map_err(|e| AppError::Unauthorized(e.to_string()))?;
            let sid = claims.sid.ok_or_else(|| {
                FieldErrors::single(
                    "refresh_token",
                    "is required: this access token names no session",
                )
            })?;
            auth::end_session(&app, sid).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The calling user and their permissions.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn me(State(app): State<AppState>, auth: Auth) -> Result<Json<Me>, AppError> {
    Ok(Json(auth::me(&app, &auth.actor)?))
}

/// Changes the caller's password; all their tokens stop working.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn password(
    State(app): State<AppState>,
    auth: Auth,
    ClientAddr(addr): ClientAddr,
    Body(input): Body<PasswordChange>,
) -> Result<StatusCode, AppError> {
    auth::change_own_password(&app, &auth.actor, input, addr).await?;
    Ok(StatusCode::NO_CONTENT)
}
