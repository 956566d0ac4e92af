//! The one error of the services: what a rule, a policy or the store refused, with no
//! notion of HTTP. Each front end maps it once: [`crate::problem`] to RFC 7807 for REST and
//! EST, [`crate::acme`] to RFC 8555 problem documents.

use certkeeper_ca::{CaError, PolicyViolation};

use crate::store::StoreError;

/// Everything a service call can fail with. Internal details are logged, never sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// Too many failed attempts from this client; try again later.
    #[error("{0}")]
    TooManyRequests(String),
    /// An upstream CA refused or failed; `problem` is its RFC 7807 document when it sent
    /// one.
    #[error("upstream CA: {message}")]
    Upstream {
        /// What failed, for people.
        message: String,
        /// The upstream's problem document.
        problem: Option<serde_json::Value>,
        /// How long the upstream asked us to wait (its `Retry-After`), when it said.
        retry_after: Option<std::time::Duration>,
    },
    /// Something broke inside; the text is logged only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Error::NotFound(what),
            StoreError::Conflict(what) => Error::Conflict(what),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<CaError> for Error {
    fn from(e: CaError) -> Self {
        match e {
            CaError::Policy(v) => Error::Policy(v),
            CaError::BadCsr(m) => Error::BadCsr(m),
            CaError::BadCertificate(m) => Error::BadRequest(format!("bad certificate: {m}")),
            CaError::BadKey(m) => Error::BadRequest(format!("bad key: {m}")),
            CaError::InvalidCa(m) => Error::BadRequest(m),
            CaError::UnsupportedKey(m) => {
                Error::BadRequest(format!("unsupported key algorithm: {m}"))
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<certkeeper_ca::ocsp::OcspError> for Error {
    fn from(e: certkeeper_ca::ocsp::OcspError) -> Self {
        Error::Internal(format!("OCSP: {e}"))
    }
}
