//! Refusals as Kubernetes clients read them: a `Status` object with the HTTP code, a reason
//! and a message. client-go (the API server's webhook clients, kubectl) shows the message.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A refusal, as the `Status` object Kubernetes clients read (client-go, the API server's
/// webhook client and kubectl show its `message`).
pub fn refuse(code: StatusCode, why: impl Into<String>) -> Response {
    let reason = match code {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::REQUEST_TIMEOUT => "Timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        _ => "InternalError",
    };
    let status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": why.into(),
        "reason": reason,
        "code": code.as_u16(),
    });
    let mut r = (code, axum::Json(status)).into_response();
    if code == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
    }
    r
}
