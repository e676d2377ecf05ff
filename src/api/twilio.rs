//! Twilio's callbacks: the key pressed during a notification call.
//!
//! Every callback must carry a valid `X-Twilio-Signature` (HMAC-SHA1 with the account's auth
//! token over the URL Twilio called and the posted parameters); anything else is 403 and
//! changes nothing.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::extract::{AppState, RawBody, form_pairs, parse_id};
use super::problem::Problem;
use crate::app::notifications::voice;
use crate::notify::twilio;

/// A key press during a call (TwiML `<Gather>` action).
#[utoipa::path(post, path = "/hooks/twilio/voice/{delivery_id}", tag = "hooks", params(("delivery_id" = u64, Path)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Twilio's Gather callback (Digits, CallSid, ...)"),
    responses((status = 200, description = "TwiML", content_type = "application/xml"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn voice_gather(
    State(app): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    let Some(config) = app.config.notify.twilio.as_ref() else {
        return Problem::new(StatusCode::NOT_FOUND, "Twilio is not configured").into_response();
    };
    let params: Vec<(String, String)> = form_pairs(&body);
    let url = format!(
        "{}{}",
        app.public_url(),
        uri.path_and_query()
            .map(|p| p.as_str())
            .unwrap_or(uri.path())
    );
    let expected = twilio::signature(&config.auth_token, &url, &params);
    let given = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given.is_empty()
        || !crate::auth::secret::constant_time_eq(given.as_bytes(), expected.as_bytes())
    {
        return Problem::new(StatusCode::FORBIDDEN, "missing or wrong X-Twilio-Signature")
            .into_response();
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let digits = params
        .iter()
        .find(|(k, _)| k == "Digits")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    match voice::key_press(&app, id, digits).await {
        Ok(text) => (
            [(header::CONTENT_TYPE, "application/xml")],
            twilio::say(&text),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::form_pairs as url_decode;

    #[test]
    fn form_decoding() {
        let p = url_decode(b"Digits=1&From=%2B15558675310&Note=a+b&Empty=&Digits=2");
        assert_eq!(p[0], ("Digits".into(), "1".into()));
        assert_eq!(p[1], ("From".into(), "+15558675310".into()));
        assert_eq!(p[2], ("Note".into(), "a b".into()));
        assert_eq!(p[3], ("Empty".into(), "".into()));
        assert_eq!(p.len(), 5);
        assert_eq!(url_decode(b"x=%zz%4")[0].1, "%zz%4");
    }
}
