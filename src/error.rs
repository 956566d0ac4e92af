//! The server's error type and its RFC 7807 `application/problem+json` rendering.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use certkeeper_ca::{CaError, PolicyViolation};
use serde_json::json;

use crate::store::StoreError;

/// Everything a request can fail with. Internal details are logged, never sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// Malformed or invalid input.
    #[error("{0}")]
    BadRequest(String),
    /// A CSR that cannot be used.
    #[error("{0}")]
    BadCsr(String),
    /// A request refused by profile policy.
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials lack the right.
    #[error("{0}")]
    Forbidden(String),
    /// No such object.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The method is not supported on this path.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Something broke inside; the text is logged only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            AppError::BadCsr(_) => (
                StatusCode::BAD_REQUEST,
                "bad-csr",
                "Unusable certificate signing request",
            ),
            AppError::Policy(_) => (
                StatusCode::FORBIDDEN,
                "policy-violation",
                "Request violates profile policy",
            ),
            AppError::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            AppError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            AppError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            AppError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Conflict(what) => AppError::Conflict(what),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<CaError> for AppError {
    fn from(e: CaError) -> Self {
        match e {
            CaError::Policy(v) => AppError::Policy(v),
            CaError::BadCsr(m) => AppError::BadCsr(m),
            CaError::BadCertificate(m) => AppError::BadRequest(format!("bad certificate: {m}")),
            CaError::BadKey(m) => AppError::BadRequest(format!("bad key: {m}")),
            CaError::InvalidCa(m) => AppError::BadRequest(m),
            CaError::UnsupportedKey(m) => {
                AppError::BadRequest(format!("unsupported key algorithm: {m}"))
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<certkeeper_ca::ocsp::OcspError> for AppError {
    fn from(e: certkeeper_ca::ocsp::OcspError) -> Self {
        AppError::Internal(format!("OCSP: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.parts();
        let detail = match &self {
            AppError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                "The server failed to complete the request; the error has been logged.".to_string()
            }
            other => other.to_string(),
        };
        let mut body = json!({
            "type": format!("urn:certkeeper:problem:{kind}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        });
        if let AppError::Policy(v) = &self {
            body["profile"] = json!(v.profile);
            body["rule"] = json!(v.rule);
        }
        let mut resp = (status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"certkeeper\""),
            );
        }
        resp
    }
}
