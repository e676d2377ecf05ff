//! problem+json (RFC 9457): the one place where errors become HTTP answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::{AppError, FieldErrors};

/// The media type of error answers.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status code says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status code's reason phrase.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// On 422: field -> messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub errors: Option<std::collections::BTreeMap<String, Vec<String>>>,
    #[serde(skip)]
    retry_after: Option<u64>,
    #[serde(skip)]
    authenticate: bool,
}

impl Problem {
    /// A problem with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
            retry_after: None,
            authenticate: false,
        }
    }

    /// A 422 with field errors.
    pub fn validation(errors: FieldErrors) -> Self {
        let fields: Vec<&str> = errors.0.keys().map(String::as_str).collect();
        let mut p = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid fields: {}", fields.join(", ")),
        );
        p.errors = Some(errors.0);
        p
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Adds `WWW-Authenticate: Bearer` (401 answers).
    pub fn authenticate(mut self) -> Self {
        self.authenticate = true;
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if self.authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(f) => Problem::validation(f),
            AppError::BadRequest(m) => Problem::new(StatusCode::BAD_REQUEST, m),
            AppError::Unauthorized(m) => Problem::new(StatusCode::UNAUTHORIZED, m).authenticate(),
            e @ (AppError::Forbidden(_) | AppError::Refused(_)) => {
                Problem::new(StatusCode::FORBIDDEN, e.to_string())
            }
            e @ (AppError::NotFound { .. } | AppError::NoRoute) => {
                Problem::new(StatusCode::NOT_FOUND, e.to_string())
            }
            AppError::Conflict(m) => Problem::new(StatusCode::CONFLICT, m),
            e @ AppError::Throttled { retry_after } => {
                Problem::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
                    .retry_after(retry_after.as_secs())
            }
            e @ AppError::Busy => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(1)
            }
            e @ AppError::Unavailable(_) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(5)
            }
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the daemon's log",
                )
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

/// Rewrites any error answer that is not problem+json yet (axum's own 404/405, tower's 413,
/// timeouts, caught panics) into one, keeping status and headers; a 503 says when to retry.
pub async fn ensure_problem_json(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    // problem+json already, or a deliberate JSON error body (PagerDuty-compatible answers).
    let is_json = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(PROBLEM_JSON.as_bytes()) || v.starts_with(b"application/json")
    });
    if is_json {
        return res;
    }
    let detail = match status {
        StatusCode::NOT_FOUND => "no such route or resource".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "this route does not take that method".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_owned(),
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
            "the request took too long".to_owned()
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "the request body must be application/json".to_owned()
        }
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let fresh = Problem::new(status, detail).into_response();
    let (fresh_parts, body) = fresh.into_parts();
    for (k, v) in fresh_parts.headers.iter() {
        parts.headers.insert(k.clone(), v.clone());
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        parts
            .headers
            .entry(header::RETRY_AFTER)
            .or_insert(header::HeaderValue::from_static("5"));
    }
    Response::from_parts(parts, body)
}

/// The fallback route: 404 problem+json.
pub async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such route or resource")
}
