//! What both servers check of a request before its body is judged: a JSON content type, a
//! declared length within the limit, and the body read whole within the limit and the
//! request's deadline. Each refusal is a Kubernetes `Status` naming `what` was expected.

use crate::status::refuse;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// The refusal of a content type that is not JSON; a missing one is taken as JSON (the API
/// server always sends one).
pub fn not_json(headers: &HeaderMap, what: &str) -> Option<Response> {
    let ct = headers.get(header::CONTENT_TYPE)?;
    let ct = ct.to_str().unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    (!essence.eq_ignore_ascii_case("application/json")).then(|| {
        refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {ct:?}: {what} is application/json"),
        )
    })
}

fn too_large(max: usize, what: &str) -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{what} larger than {max} bytes (--max-body-size)"),
    )
}

/// The refusal of a declared length over `max`, before any of the body is read.
pub fn declared_too_large(headers: &HeaderMap, max: usize, what: &str) -> Option<Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())?;
    (declared > max as u64).then(|| too_large(max, what))
}

/// The whole body, at most `max` bytes (413 past it, chunked or not), by `deadline` (408).
pub async fn read_body(
    body: Body,
    max: usize,
    deadline: tokio::time::Instant,
    what: &str,
) -> Result<Bytes, Response> {
    let Ok(read) = tokio::time::timeout_at(deadline, Limited::new(body, max).collect()).await
    else {
        return Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive within the request timeout",
        ));
    };
    match read {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(max, what)),
        Err(e) => Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {e}"),
        )),
    }
}
