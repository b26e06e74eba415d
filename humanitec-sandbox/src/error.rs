//! The API error type and the `HumanitecErrorResponse` body (`{"error", "message", "details"?}`) it
//! renders to.
//!
//! Error codes used by the sandbox, one per HTTP status so clients can rely on them:
//!
//! | status | code |
//! |---|---|
//! | 400 invalid request (schema, pattern, semantics, query) | `API-002` |
//! | 401 missing or invalid token | `API-001` |
//! | 404 not found | `API-003` |
//! | 405 method not allowed | `API-006` |
//! | 409 conflict | `API-004` |
//! | 422 body not JSON, empty, or not the expected kind of value | `API-005` |
//! | 429 rate limited (injected) | `API-007` |
//! | 500 internal (injected, or saving `--data` failed) | `API-008` |
//! | 501 endpoint not implemented by the sandbox | `API-010` |
//! | 503 service unavailable (injected) | `API-009` |

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// An error answered with a `HumanitecErrorResponse` body.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The `error` field.
    pub(crate) code: &'static str,
    /// The `message` field.
    pub(crate) message: String,
    /// The optional `details` object.
    pub(crate) details: Option<Map<String, Value>>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// 400: the request is invalid.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "API-002", message)
    }

    /// 400 naming the offending location in the body (`details.path`).
    pub(crate) fn bad_request_at(path: &str, message: impl Into<String>) -> Self {
        let mut err = Self::bad_request(message);
        let mut details = Map::new();
        details.insert("path".to_owned(), Value::String(path.to_owned()));
        err.details = Some(details);
        err
    }

    /// 401: no or a wrong bearer token.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "API-001", message)
    }

    /// 404: the thing is not there.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "API-003", message)
    }

    /// 405 for a known path.
    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "API-006", message)
    }

    /// 409: a conflict with the stored state.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "API-004", message)
    }

    /// 422: the body is not JSON, empty, or not the expected kind of value.
    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "API-005", message)
    }

    /// 500: an internal error.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "API-008", message)
    }

    /// 501: an endpoint of the real API that the sandbox does not provide.
    pub(crate) fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "API-010", message)
    }

    /// The `HumanitecErrorResponse` body.
    pub(crate) fn body(&self) -> Value {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let (Some(details), Value::Object(map)) = (&self.details, &mut body) {
            map.insert("details".to_owned(), Value::Object(details.clone()));
        }
        body
    }
}
