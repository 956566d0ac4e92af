//! What the REST destinations (Azure Key Vault, Cloudflare) share: an HTTP client with a
//! timeout, no redirects and an optional extra trust anchor, and how its errors and
//! `Retry-After` are read.

use std::time::Duration;

use crate::SyncError;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client that follows no redirects, gives up after [`TIMEOUT`], and also trusts
/// `ca_certificate` (PEM) when given.
pub(crate) fn client(ca_certificate: Option<&str>) -> Result<reqwest::Client, SyncError> {
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_certificate {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes())
            .map_err(|e| SyncError::Config(format!("ca_certificate: {e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| SyncError::Config(format!("HTTP client: {e}")))
}

/// A request error with its causes, without the URL (it may carry a query).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "");
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The `Retry-After` of an answer, in seconds.
pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
