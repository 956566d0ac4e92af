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
    /// How long the upstream asked us to wait before trying again (the `Retry-After` of a
    /// rate limit or an outage), when it said.
    pub retry_after: Option<std::time::Duration>,
}

impl UpstreamFailure {
    /// A failure with no problem document (unreachable, timed out, malformed answer).
    pub fn plain(message: impl Into<String>) -> UpstreamFailure {
        UpstreamFailure {
            message: message.into(),
            problem: None,
            retry_after: None,
        }
    }
}

impl From<UpstreamFailure> for Error {
    fn from(f: UpstreamFailure) -> Error {
        Error::Upstream {
            message: f.message,
            problem: f.problem,
            retry_after: f.retry_after,
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

/// What is asked of an upstream CA: one certificate.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamOrder<'a> {
    /// The PKCS#10 request (DER), already approved by the profile.
    pub csr_der: &'a [u8],
    /// The names it asks for.
    pub dns_names: &'a [String],
    /// The certificate (DER) this one replaces, on renewal: an ACME CA that offers renewal
    /// information (RFC 9773) is told so with `replaces`.
    pub replaces: Option<&'a [u8]>,
    /// The latest end of validity the profile allows: asked of a CA that takes a validity
    /// (AWS Private CA); ACME CAs choose their own, checked afterwards.
    pub not_after: time::OffsetDateTime,
}

/// What an upstream issued.
#[derive(Debug, Clone)]
pub struct UpstreamCertificate {
    /// The certificate followed by its chain, PEM.
    pub pem: String,
    /// The upstream's name for it (the PCA certificate ARN, the ACME order URL), recorded
    /// in the audit event.
    pub reference: Option<String>,
}

/// When the upstream suggests renewing a certificate (ACME renewal information, RFC 9773).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalAdvice {
    /// Start of the suggested window.
    pub start: time::OffsetDateTime,
    /// End of the suggested window.
    pub end: time::OffsetDateTime,
    /// A page that explains the window, when the upstream gives one.
    pub explanation_url: Option<String>,
    /// How long until the upstream wants to be asked again (its `Retry-After`).
    pub retry_after: std::time::Duration,
}

/// One upstream CA, as the issuers service uses it.
pub trait UpstreamCa: Send + Sync {
    /// Have the upstream sign `order.csr_der`.
    fn issue<'a>(
        &'a self,
        order: UpstreamOrder<'a>,
        board: &'a dyn ChallengeBoard,
    ) -> BoxFuture<'a, Result<UpstreamCertificate, UpstreamFailure>>;

    /// Revoke the certificate `cert_der` (one this upstream issued) with an RFC 5280
    /// reason code. A refusal leaves it valid upstream and is the caller's error.
    fn revoke<'a>(
        &'a self,
        cert_der: &'a [u8],
        reason: u8,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>>;

    /// When the upstream suggests renewing `cert_der` (one it issued): `None` when it
    /// offers no renewal information.
    fn renewal_info<'a>(
        &'a self,
        cert_der: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<RenewalAdvice>, UpstreamFailure>> {
        let _ = cert_der;
        Box::pin(async { Ok(None) })
    }

    /// Replace the key the upstream knows us by (ACME account key rollover, RFC 8555
    /// §7.3.5); answers the new credentials to seal in place of the old.
    fn rollover_key(&self) -> BoxFuture<'_, Result<String, UpstreamFailure>> {
        Box::pin(async {
            Err(UpstreamFailure::plain(
                "this issuer has no account key to roll over",
            ))
        })
    }

    /// Check that the upstream knows us (the ACME account exists) and that the DNS
    /// provider of dns-01 can be used; answers what it found.
    fn check(&self) -> BoxFuture<'_, Result<Value, UpstreamFailure>>;

    /// Tell the upstream we are leaving (deactivate the ACME account; nothing for PCA).
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
    /// The authoritative servers of the zone that holds `name`, queried until a record
    /// shows on each.
    fn authoritative<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<std::net::SocketAddr>, UpstreamFailure>>;
    /// Check that the provider can be used with these settings (the zone exists and the
    /// credentials are accepted), without changing anything; answers what it found.
    /// Providers with nothing to read back answer `null`.
    fn check(&self) -> BoxFuture<'_, Result<Value, UpstreamFailure>> {
        Box::pin(async { Ok(Value::Null) })
    }
}
