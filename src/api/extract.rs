//! Extractors: authentication with a declared permission, JSON bodies and ids that fail
//! as problem+json with the right status.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::Problem;
use crate::app::{App, AppError, FieldErrors};
use crate::domain::actor::Actor;
use crate::domain::permission::Permission;

/// The state every handler gets.
pub type AppState = Arc<App>;

/// A permission a route demands, as a type, so that the route's signature declares it.
pub trait Need: Send + Sync + 'static {
    /// The permission, or `None` for "any authenticated user".
    const PERMISSION: Option<Permission>;
}

/// Any authenticated user.
pub struct Authenticated;

impl Need for Authenticated {
    const PERMISSION: Option<Permission> = None;
}

macro_rules! needs {
    ($($name:ident),+ $(,)?) => {
        /// One marker type per permission, for [`Auth`].
        pub mod perm {
            $(
                #[doc = concat!("Requires `", stringify!($name), "`.")]
                pub struct $name;
                impl super::Need for $name {
                    const PERMISSION: Option<crate::domain::permission::Permission> =
                        Some(crate::domain::permission::Permission::$name);
                }
            )+
        }
    };
}

needs!(
    UserRead,
    UserWrite,
    RoleRead,
    RoleWrite,
    GroupRead,
    GroupWrite,
    ServiceRead,
    ServiceWrite,
    IncidentRead,
    IncidentWrite,
    IncidentClose,
    ProblemRead,
    ProblemWrite,
    AlertRead,
    IntegrationRead,
    IntegrationWrite,
    HeartbeatRead,
    HeartbeatWrite,
    SilenceRead,
    SilenceWrite,
    RoutingRead,
    RoutingWrite,
    NotificationRead,
    NotificationWrite,
    EscalationRead,
    EscalationWrite,
    ScheduleRead,
    ScheduleWrite,
    ApprovalRead,
    ApprovalWrite,
    ApprovalDecide,
    AuditRead,
    DashboardRead,
    SettingsWrite,
);

/// The authenticated caller, allowed `N`. Missing or bad token: 401; missing permission: 403.
pub struct Auth<N: Need = Authenticated> {
    /// Who is calling.
    pub actor: Actor,
    _need: PhantomData<N>,
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn bearer(parts: &Parts) -> Option<&str> {
    bearer_token(&parts.headers)
}

impl<N: Need> FromRequestParts<AppState> for Auth<N> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            bearer(parts).ok_or_else(|| AppError::Unauthorized("missing bearer token".into()))?;
        let claims = app
            .tokens
            .verify(token, app.clock.now().timestamp())
            .map_err(|e| AppError::Unauthorized(e.to_string()))?;
        let user_id: u64 = claims
            .sub
            .parse()
            .map_err(|_| AppError::Unauthorized("the token is invalid".into()))?;
        let actor =
            crate::app::users::actor_for(&app.store.read()?, user_id, claims.ver, claims.sid)?;
        if let Some(p) = N::PERMISSION {
            crate::app::require(&actor, p)?;
        }
        Ok(Auth {
            actor,
            _need: PhantomData,
        })
    }
}

/// A JSON body: malformed JSON is 400, a wrong or missing field 422 naming it, a body over
/// the limit 413, a non-JSON content type 415. No body at all reads as `{}`: an action
/// whose fields are all optional (`POST .../escalate`, `/auth/logout`) needs none, and a
/// resource that needs fields gets the 422 naming them rather than a JSON syntax error.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("expected Content-Type application/json, got '{essence}'"),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return parse_json(b"{}").map(Body);
        }
        parse_json(&bytes).map(Body)
    }
}

/// A raw body (webhooks parse it themselves): too large is 413, unreadable 400.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_rejection)
    }
}

/// The query string as `T`, failing as a 422 that names the parameter: a repeated one, and
/// for the API's lists (whose parameter structs deny unknown fields) one it does not know,
/// so that `?stauts=open` is an error rather than a silently unfiltered list. The webhooks'
/// parameters accept unknown ones: a sender's URL is configured once, far from its errors.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Decodes a query string with the parameter of the first error.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, Problem> {
    let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(pairs).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = crate::app::error::json_field(&path, &message);
        let message = match message.strip_prefix("unknown field `") {
            Some(rest) => format!(
                "is not a parameter of this route; {}",
                rest.split_once("`, ")
                    .map_or("it takes none", |(_, known)| known)
            ),
            None if message.starts_with("duplicate field `") => "is given more than once".into(),
            None => message,
        };
        let field = if field == "body" {
            "query".into()
        } else {
            field
        };
        Problem::validation(single(field, message))
    })
}

/// The API operations (`GET /api/v1/incidents/{id}`) that take no query parameter, read
/// once from the OpenAPI document, where every operation's parameters are declared.
fn queryless() -> &'static std::collections::HashSet<(String, String)> {
    static ROUTES: std::sync::OnceLock<std::collections::HashSet<(String, String)>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| {
        let doc = serde_json::to_value(super::openapi()).unwrap_or_default();
        let mut out = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let takes_query = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["in"] == "query");
                if !takes_query {
                    out.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out
    })
}

/// Middleware: a query parameter on an API route that takes none is a 422 naming it, as
/// on the lists (`GET /api/v1/users/1?expand=roles` would otherwise look like it worked).
pub async fn refuse_stray_query(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let stray = match (
        req.uri().query(),
        req.extensions().get::<axum::extract::MatchedPath>(),
    ) {
        // Without credentials the handler's 401 comes first, as on every route.
        (Some(q), Some(route))
            if !q.is_empty()
                && req
                    .headers()
                    .contains_key(axum::http::header::AUTHORIZATION)
                && route.as_str().starts_with("/api/")
                && queryless()
                    .contains(&(req.method().as_str().to_owned(), route.as_str().to_owned())) =>
        {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
        }
        _ => None,
    };
    match stray {
        Some(name) => {
            let name = if name.is_empty() {
                "query".to_owned()
            } else {
                name
            };
            Problem::validation(single(
                name,
                "is not a parameter of this route; it takes none".to_owned(),
            ))
            .into_response()
        }
        None => next.run(req).await,
    }
}

/// Maps a body read failure: too large is 413, anything else 400.
pub fn body_rejection(e: BytesRejection) -> Problem {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than the limit",
        )
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the request body could not be read: {e}"),
        )
    }
}

/// Parses JSON with the field path of the first error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end().map_err(|e| {
                Problem::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}"))
            })?;
            Ok(v)
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // A data error can surface before the parser reaches a syntax error further on
            // (`{"a": 1} trailing` misses a field before the garbage is seen): the body is
            // malformed JSON all the same, and that is a 400, not a 422.
            let syntax = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).err();
            if let Some(syntax) = syntax.filter(|e| !e.is_data()) {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("malformed JSON: {syntax}"),
                ));
            }
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let message = strip_position(&inner.to_string());
                    let field = crate::app::error::json_field(&path, &message);
                    Err(Problem::validation(single(field, message)))
                }
                _ => Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("malformed JSON: {inner}"),
                )),
            }
        }
    }
}

fn single(field: String, message: String) -> FieldErrors {
    let mut f = FieldErrors::new();
    f.add(field, message);
    f
}

/// serde_json appends " at line L column C" to data errors; the field name says more.
fn strip_position(m: &str) -> String {
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_owned(),
        None => m.to_owned(),
    }
}

/// A positive integer id from the path; anything else is 404 (no such resource).
pub fn parse_id(raw: &str) -> Result<u64, AppError> {
    raw.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::not_found("resource", raw))
}

/// Decodes an `application/x-www-form-urlencoded` body, keeping repeated keys.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                )
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    std::str::from_utf8(body)
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The client's address, for throttling.
pub struct ClientAddr(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        Ok(ClientAddr(addr))
    }
}

/// A record id as people write it: `42`, `#42` or `PREFIX-42` (any case), as chat and the
/// `number` fields show it; anything else is a 404 like an unknown id.
pub fn parse_ref(raw: &str, prefix: &str) -> Result<u64, AppError> {
    crate::domain::incident::parse_prefixed_id(raw, prefix)
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::not_found("resource", raw))
}

/// An incident id in a path: `42`, `INC-42` or `#42`.
pub fn incident_id(raw: &str) -> Result<u64, AppError> {
    parse_ref(raw, "INC-")
}

/// A problem id in a path: `7`, `PRB-7` or `#7`.
pub fn problem_id(raw: &str) -> Result<u64, AppError> {
    parse_ref(raw, "PRB-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        title: String,
        nested: Option<Nested>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        count: u32,
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<Input>(b"{").expect_err("syntax");
        assert_eq!(e.status, 400);
        let e = parse_json::<Input>(b"{}").expect_err("missing");
        assert_eq!(e.status, 422);
        assert!(
            e.errors.as_ref().expect("errors").contains_key("title"),
            "{e:?}"
        );
        let e = parse_json::<Input>(br#"{"title": 5}"#).expect_err("type");
        assert!(
            e.errors.as_ref().expect("errors").contains_key("title"),
            "{e:?}"
        );
        let e =
            parse_json::<Input>(br#"{"title": "x", "nested": {"count": -1}}"#).expect_err("nested");
        assert!(
            e.errors
                .as_ref()
                .expect("errors")
                .contains_key("nested.count"),
            "{e:?}"
        );
        let e = parse_json::<Input>(br#"{"title": "x", "bogus": 1}"#).expect_err("unknown");
        assert!(
            e.errors.as_ref().expect("errors").contains_key("bogus"),
            "{e:?}"
        );
        let e = parse_json::<Input>(br#"{"title": "x"} trailing"#).expect_err("trailing");
        assert_eq!(e.status, 400);
        let e = parse_json::<Input>(br#"{"nested": null} trailing"#).expect_err("missing+trailing");
        assert_eq!(
            e.status, 400,
            "malformed JSON wins over a missing field: {e:?}"
        );
        let e = parse_json::<Input>(br#"{"title": 5, "#).expect_err("type+eof");
        assert_eq!(e.status, 400, "{e:?}");
        assert!(parse_json::<Input>(br#"{"title": "x"}"#).is_ok());
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id("42").expect("id"), 42);
        assert!(parse_id("0").is_err());
        assert!(parse_id("x").is_err());
    }
}
