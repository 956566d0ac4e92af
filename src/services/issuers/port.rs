//! The outbound port to upstream CAs: what the issuers service asks of an adapter
//! ([`crate::upstream`]), and the board an adapter publishes http-01 answers on.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::error::Error;

/// A boxed future, for the object-safe port traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an upstream call failed: a message for people and the upstream's problem document
/// (RFC 7807) when it sent one.
#[derive(Debug, Clone)]
pub struct UpstreamFailure {
    /// What failed.
    pub message: String,
    /// The upstream's problem document.
    pub problem: Option<Value>,
}

impl UpstreamFailure {
    /// A failure with no problem document (unreachable, timed out, malformed answer).
    pub fn plain(message: impl Into<String>) -> UpstreamFailure {
        UpstreamFailure {
            message: message.into(),
            problem: None,
        }
    }
}

impl From<UpstreamFailure> for Error {
    fn from(f: UpstreamFailure) -> Error {
        Error::Upstream {
            message: f.message,
            problem: f.problem,
        }
    }
}

/// Where http-01 answers are published while an upstream validates (served by
/// `/.well-known/acme-challenge/{token}` on every replica).
pub trait ChallengeBoard: Send + Sync {
    /// Publish the key authorization for `token`.
    fn publish<'a>(
        &'a self,
        token: &'a str,
        key_authorization: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Withdraw the answer for `token` (best effort).
    fn withdraw<'a>(&'a self, token: &'a str) -> BoxFuture<'a, ()>;
}

/// One upstream CA, as the issuers service uses it.
pub trait UpstreamCa: Send + Sync {
    /// Have the upstream sign `csr_der` (a PKCS#10 request for `dns_names`); answers the
    /// certificate followed by its chain, PEM.
    fn issue<'a>(
        &'a self,
        csr_der: &'a [u8],
        dns_names: &'a [String],
        board: &'a dyn ChallengeBoard,
    ) -> BoxFuture<'a, Result<String, UpstreamFailure>>;

    /// Check that the upstream knows us (the ACME account exists); answers what it found.
    fn check(&self) -> BoxFuture<'_, Result<Value, UpstreamFailure>>;

    /// Tell the upstream we are leaving (deactivate the ACME account).
    fn deactivate(&self) -> BoxFuture<'_, Result<(), UpstreamFailure>>;
}

/// A DNS provider for dns-01: sets and removes the `_acme-challenge` TXT records, and says
/// which servers answer for the zone (to wait for a record to show on every one).
pub trait DnsProvider: Send + Sync {
    /// Add the TXT record `value` at `name` (a fully qualified name), beside any others.
    fn set_txt<'a>(
        &'a self,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>>;
    /// Remove the TXT record `value` at `name` (best effort: answers what failed).
    fn remove_txt<'a>(
        &'a self,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>>;
    /// The zone's authoritative servers, queried until a record shows on each.
    fn authoritative(&self) -> Vec<std::net::SocketAddr>;
}
