//! RFC 7807 `application/problem+json`: the one place where the services' [`Error`] becomes
//! an HTTP answer for REST and EST, plus the refusals that only HTTP knows (method, body
//! size, content type). ACME maps [`Error`] to RFC 8555 problems in [`crate::acme`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::{Object, ObjectBuilder, SchemaFormat, Type};

use crate::error::Error;

/// The kinds of problem, as the last part of a problem's `type`.
const KINDS: [&str; 12] = [
    "bad-request",
    "bad-csr",
    "policy-violation",
    "unauthorized",
    "forbidden",
    "not-found",
    "conflict",
    "method-not-allowed",
    "payload-too-large",
    "unsupported-media-type",
    "upstream",
    "internal",
];

/// An RFC 7807 problem document. The fields are in the order of their names, the order
/// the answers have always had their keys in.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// What went wrong in this case.
    detail: String,
    /// Policy violations only: the profile whose rule was broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    profile: Option<String>,
    /// Policy violations only: the rule, as named in the profile's JSON (or `ca_name_constraints`, `issuer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        value_type = String,
        examples("allowed_dns_names", "max_validity_days", "allowed_key_types", "ca_name_constraints")
    )]
    rule: Option<&'static str>,
    /// The HTTP status code.
    #[schema(value_type = i64)]
    status: u16,
    /// Upstream failures only: the upstream CA's own problem document, as it sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    upstream: Option<serde_json::Value>,
    /// A fixed summary of the kind of problem.
    title: &'static str,
    /// The kind of problem.
    #[serde(rename = "type")]
    #[schema(schema_with = problem_type)]
    kind: String,
}

/// `Problem::kind`: `urn:certkeeper:problem:` and one of [`KINDS`].
fn problem_type() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uri".into())))
        .enum_values(Some(
            KINDS.iter().map(|k| format!("urn:certkeeper:problem:{k}")),
        ))
        .description(Some("The kind of problem."))
        .build()
}

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
        Error::TooManyRequests(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many failed attempts",
        ),
        Error::Upstream { .. } => (
            StatusCode::BAD_GATEWAY,
            "upstream",
            "The upstream CA refused or failed",
        ),
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
        let (profile, rule) = match &self {
            HttpError::Domain(Error::Policy(v)) => (Some(v.profile.clone()), Some(v.rule)),
            _ => (None, None),
        };
        let upstream = match &self {
            HttpError::Domain(Error::Upstream { problem, .. }) => problem.clone(),
            _ => None,
        };
        let body = Problem {
            detail,
            profile,
            rule,
            status: status.as_u16(),
            upstream,
            title,
            kind: format!("urn:certkeeper:problem:{kind}"),
        };
        let body = serde_json::to_string(&body).expect("a problem serializes");
        let mut resp = (status, body).into_response();
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

#[cfg(test)]
mod tests {
    use certkeeper_ca::PolicyViolation;
    use serde_json::json;

    use super::*;

    async fn body(e: HttpError) -> String {
        let resp = e.into_response();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("the body reads");
        String::from_utf8(bytes.to_vec()).expect("the body is UTF-8")
    }

    /// The problem document is written exactly as the JSON object it replaced was: keys in
    /// the order of their names, `profile` and `rule` only for policy violations.
    #[tokio::test]
    async fn problems_keep_their_bytes() {
        let plain = HttpError::Domain(Error::NotFound("no such CA".into()));
        assert_eq!(
            body(plain).await,
            json!({
                "type": "urn:certkeeper:problem:not-found",
                "title": "Not found",
                "status": 404,
                "detail": "no such CA",
            })
            .to_string()
        );
        let v = PolicyViolation {
            profile: "web".into(),
            rule: "max_validity_days",
            detail: "too long".into(),
        };
        let detail = Error::Policy(v.clone()).to_string();
        assert_eq!(
            body(HttpError::Domain(Error::Policy(v))).await,
            json!({
                "type": "urn:certkeeper:problem:policy-violation",
                "title": "Request violates profile policy",
                "status": 403,
                "detail": detail,
                "profile": "web",
                "rule": "max_validity_days",
            })
            .to_string()
        );
    }
}
