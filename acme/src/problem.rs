//! RFC 8555 §6.7 problem documents.

use serde::Serialize;

use crate::Identifier;

/// The ACME error types (`urn:ietf:params:acme:error:<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemType {
    /// The account key or request is not allowed to do this.
    AccountDoesNotExist,
    /// A revoked certificate was already revoked.
    AlreadyRevoked,
    /// The CSR is unacceptable.
    BadCsr,
    /// CAA records (RFC 8659) forbid this CA from issuing for the identifier.
    Caa,
    /// The nonce was missing, unknown or already used.
    BadNonce,
    /// The JWS key is unacceptable.
    BadPublicKey,
    /// The revocation reason is not allowed.
    BadRevocationReason,
    /// The JWS algorithm is not supported.
    BadSignatureAlgorithm,
    /// The server could not connect to the validation target.
    Connection,
    /// A DNS lookup failed during validation.
    Dns,
    /// External account binding is required.
    ExternalAccountRequired,
    /// The response received did not match the challenge.
    IncorrectResponse,
    /// A contact URL is invalid.
    InvalidContact,
    /// The request message was malformed.
    Malformed,
    /// The order is not ready to be finalized.
    OrderNotReady,
    /// Too many requests.
    RateLimited,
    /// The server will not issue for this identifier.
    RejectedIdentifier,
    /// The server failed internally.
    ServerInternal,
    /// The TLS handshake during validation failed.
    Tls,
    /// The client lacks authorization.
    Unauthorized,
    /// An identifier type is not supported.
    UnsupportedIdentifier,
    /// Several problems; see subproblems.
    Compound,
    /// A contact URL scheme is not supported.
    UnsupportedContact,
    /// The certificate named in `replaces` was already replaced (RFC 9773).
    AlreadyReplaced,
    /// The request conflicts with existing state (sent as `malformed` with HTTP 409, as for
    /// a key change to a key already in use, RFC 8555 §7.3.5).
    Conflict,
}

impl ProblemType {
    /// The short name (the part after `urn:ietf:params:acme:error:`).
    pub fn name(self) -> &'static str {
        match self {
            ProblemType::AccountDoesNotExist => "accountDoesNotExist",
            ProblemType::AlreadyRevoked => "alreadyRevoked",
            ProblemType::BadCsr => "badCSR",
            ProblemType::Caa => "caa",
            ProblemType::BadNonce => "badNonce",
            ProblemType::BadPublicKey => "badPublicKey",
            ProblemType::BadRevocationReason => "badRevocationReason",
            ProblemType::BadSignatureAlgorithm => "badSignatureAlgorithm",
            ProblemType::Connection => "connection",
            ProblemType::Dns => "dns",
            ProblemType::ExternalAccountRequired => "externalAccountRequired",
            ProblemType::IncorrectResponse => "incorrectResponse",
            ProblemType::InvalidContact => "invalidContact",
            ProblemType::Malformed => "malformed",
            ProblemType::OrderNotReady => "orderNotReady",
            ProblemType::RateLimited => "rateLimited",
            ProblemType::RejectedIdentifier => "rejectedIdentifier",
            ProblemType::ServerInternal => "serverInternal",
            ProblemType::Tls => "tls",
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::UnsupportedIdentifier => "unsupportedIdentifier",
            ProblemType::Compound => "compound",
            ProblemType::UnsupportedContact => "unsupportedContact",
            ProblemType::AlreadyReplaced => "alreadyReplaced",
            ProblemType::Conflict => "malformed",
        }
    }

    /// The full URN.
    pub fn urn(self) -> String {
        format!("urn:ietf:params:acme:error:{}", self.name())
    }

    /// The HTTP status this problem is answered with.
    pub fn status(self) -> u16 {
        match self {
            ProblemType::AccountDoesNotExist
            | ProblemType::AlreadyRevoked
            | ProblemType::BadCsr
            | ProblemType::BadNonce
            | ProblemType::BadPublicKey
            | ProblemType::BadRevocationReason
            | ProblemType::BadSignatureAlgorithm
            | ProblemType::InvalidContact
            | ProblemType::Malformed
            | ProblemType::RejectedIdentifier
            | ProblemType::UnsupportedIdentifier
            | ProblemType::Compound
            | ProblemType::UnsupportedContact
            | ProblemType::Connection
            | ProblemType::Dns
            | ProblemType::IncorrectResponse
            | ProblemType::Tls => 400,
            ProblemType::Unauthorized | ProblemType::ExternalAccountRequired | ProblemType::Caa => {
                403
            }
            ProblemType::OrderNotReady => 403,
            ProblemType::RateLimited => 429,
            ProblemType::Conflict | ProblemType::AlreadyReplaced => 409,
            ProblemType::ServerInternal => 500,
        }
    }
}

/// A problem about one identifier of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subproblem {
    /// The error type URN.
    #[serde(rename = "type")]
    pub kind: String,
    /// What is wrong.
    pub detail: String,
    /// The identifier concerned.
    pub identifier: Identifier,
}

/// An ACME problem document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", kind.name())]
pub struct Problem {
    /// The error type.
    pub kind: ProblemType,
    /// A human-readable explanation.
    pub detail: String,
    /// Problems per identifier.
    pub subproblems: Vec<Subproblem>,
    /// Seconds after which the client may retry (`rateLimited`).
    pub retry_after: Option<u64>,
    /// A related resource (the existing account on a key-change conflict).
    pub location: Option<String>,
    /// An HTTP status other than the type's usual one (404 for an unknown resource).
    pub status_override: Option<u16>,
}

impl Problem {
    /// A problem of the given type.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            detail: detail.into(),
            subproblems: Vec::new(),
            retry_after: None,
            location: None,
            status_override: None,
        }
    }

    /// Tell the client when to retry.
    pub fn with_retry_after(mut self, secs: u64) -> Problem {
        self.retry_after = Some(secs);
        self
    }

    /// Point at a related resource.
    pub fn with_location(mut self, url: String) -> Problem {
        self.location = Some(url);
        self
    }

    /// Seconds after which the client may retry.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// `malformed`.
    pub fn malformed(detail: impl Into<String>) -> Problem {
        Problem::new(ProblemType::Malformed, detail)
    }

    /// `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(ProblemType::Unauthorized, detail)
    }

    /// `serverInternal` (the caller logs the cause; the client sees only this text).
    pub fn internal() -> Problem {
        Problem::new(ProblemType::ServerInternal, "internal server error")
    }

    /// Add a subproblem for one identifier.
    pub fn with_subproblem(
        mut self,
        kind: ProblemType,
        detail: impl Into<String>,
        identifier: Identifier,
    ) -> Problem {
        self.subproblems.push(Subproblem {
            kind: kind.urn(),
            detail: detail.into(),
            identifier,
        });
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status_override.unwrap_or(self.kind.status())
    }

    /// Answer with another HTTP status.
    pub fn with_status(mut self, status: u16) -> Problem {
        self.status_override = Some(status);
        self
    }

    /// The JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "type": self.kind.urn(),
            "detail": self.detail,
            "status": self.status(),
        });
        if !self.subproblems.is_empty() {
            v["subproblems"] = serde_json::to_value(&self.subproblems).unwrap_or_default();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_have_urns_and_subproblems() {
        let p = Problem::new(ProblemType::RejectedIdentifier, "no").with_subproblem(
            ProblemType::RejectedIdentifier,
            "bad name",
            Identifier::dns("a.example").unwrap(),
        );
        let j = p.to_json();
        assert_eq!(j["type"], "urn:ietf:params:acme:error:rejectedIdentifier");
        assert_eq!(j["status"], 400);
        assert_eq!(j["subproblems"][0]["identifier"]["value"], "a.example");
    }
}
