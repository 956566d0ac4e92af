//! RFC 7807 `application/problem+json`: the one place where the services' [`Error`] becomes
//! an HTTP answer for REST and EST, plus the refusals that only HTTP knows (method, body
//! size, content type). ACME maps [`Error`] to RFC 8555 problems in [`crate::acme`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

/// A refusal at the HTTP edge: a service error, or one that no service ever sees.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// What a service refused.
    #[error(transparent)]
    Domain(#[from] Error),
    /// The method is not supported on this path.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
}

impl From<crate::store::StoreError> for HttpError {
    fn from(e: crate::store::StoreError) -> Self {
        HttpError::Domain(e.into())
    }
}

impl From<certkeeper_ca::CaError> for HttpError {
    fn from(e: certkeeper_ca::CaError) -> Self {
        HttpError::Domain(e.into())
    }
}

/// Status, problem type suffix and title of a service error.
fn domain_parts(e: &Error) -> (StatusCode, &'static str, &'static str) {
    match e {
        Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
        Error::BadCsr(_) => (
            StatusCode::BAD_REQUEST,
            "bad-csr",
            "Unusable certificate signing request",
        ),
        Error::Policy(_) => (
            StatusCode::FORBIDDEN,
            "policy-violation",
            "Request violates profile policy",
        ),
        Error::Unauthorized(_) => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
        ),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
        Error::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
        Error::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
        ),
    }
}

impl HttpError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            HttpError::Domain(e) => domain_parts(e),
            HttpError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            HttpError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            HttpError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
        }
    }

    /// The HTTP status this refusal maps to.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.parts();
        let detail = match &self {
            HttpError::Domain(Error::Internal(msg)) => {
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
        if let HttpError::Domain(Error::Policy(v)) = &self {
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

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
    }
}
