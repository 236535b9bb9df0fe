//! The HTTP error type, shared by the handlers (`crate::api`) and the access-control middleware
//! (`crate::auth`): every error is a JSON body `{"error": {"code", "message"}}`, and [`ApiError`]
//! maps error kinds to HTTP statuses in exactly one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An API error. The status, the JSON `code` and the metrics category come from one match.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or invalid credentials (401 with `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the role the request needs.
    #[error("{0}")]
    Forbidden(String),
    /// A rate limit was reached. Retry after the given seconds.
    #[error("{message}")]
    RateLimited {
        /// What was limited.
        message: String,
        /// Seconds until a retry can succeed (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// Malformed input: bad JSON, bad query, bad header, bad path.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing there (unknown route, index past the tree, unknown leaf hash).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request is consistent but conflicts with the log (idempotency key reuse).
    #[error("{0}")]
    Conflict(String),
    /// The body or an item is larger than the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The content type is not one this endpoint accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client took too long to send the request.
    #[error("{0}")]
    Timeout(String),
    /// Back-pressure: the queue is full. Retry after the given seconds.
    #[error("{0}")]
    Busy(String),
    /// The log cannot serve this now (not accepting writes, shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// The data directory's disk is nearly full; nothing was written.
    #[error("{0}")]
    DiskFull(String),
    /// The witnesses did not cosign in time (the write itself succeeded).
    #[error("{0}")]
    WitnessTimeout(String),
    /// A request feature the server does not implement (a transfer coding other than chunked).
    #[error("{0}")]
    NotImplemented(String),
    /// A failure inside the server. The message is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

/// The challenge sent with every 401.
const WWW_AUTHENTICATE: &str = "Bearer realm=\"sealtrail\"";
/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::DiskFull(_) => (StatusCode::SERVICE_UNAVAILABLE, "disk_full"),
            ApiError::WitnessTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "witness_timeout"),
            ApiError::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The metrics category of an error response, carried as a response extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorCategory(pub(crate) &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({ "error": { "code": code, "message": message } });
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = &self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        resp.extensions_mut().insert(ErrorCategory(code));
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    /// A failed read (the database unreachable, an I/O error) is worth retrying: 503. Anything
    /// else is the server's fault: 500.
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Io(_) => ApiError::Unavailable(format!("store: {e}")),
            _ => ApiError::Internal(format!("store: {e}")),
        }
    }
}

/// Query parameters as handlers receive them (rejections are mapped to JSON errors by hand).
pub(crate) type QueryResult = Result<
    axum::extract::Query<std::collections::HashMap<String, String>>,
    axum::extract::rejection::QueryRejection,
>;
