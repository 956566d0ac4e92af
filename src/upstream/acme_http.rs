//! The HTTP client under instant-acme: hyper over rustls (the system's roots, or only a
//! private ACME server's trust bundle), which also keeps the `Retry-After` of the last
//! refusal (429 or 503), so that a rate limit or an outage is waited out before the next
//! try rather than hammered (RFC 8555 §6.6). instant-acme honours `Retry-After` while it
//! polls an order, but does not hand it back with an error.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, StatusCode, header::RETRY_AFTER};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

/// Longest wait taken from a `Retry-After` (a day): a longer one is an error upstream.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Where a client leaves the `Retry-After` of the last refusal it saw.
#[derive(Debug, Clone, Default)]
pub struct RetrySlot(Arc<Mutex<Option<SystemTime>>>);

impl RetrySlot {
    /// How long from now the last refusal asked us to wait, if it did; clears the slot.
    pub fn take(&self) -> Option<Duration> {
        let at = self.0.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        Some(
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
                .min(MAX_RETRY_AFTER),
        )
    }

    fn set(&self, at: SystemTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
    }
}

/// The client: hyper with rustls, watching refusals.
pub struct WatchingClient {
    inner: HyperClient<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
    slot: RetrySlot,
}

impl WatchingClient {
    /// A client trusting `roots` (DER) only, or the system's roots when none are given,
    /// that leaves `Retry-After` in `slot`.
    pub fn new(roots: &[Vec<u8>], slot: RetrySlot) -> Result<WatchingClient, String> {
        let builder = HttpsConnectorBuilder::new();
        let builder = if roots.is_empty() {
            builder
                .try_with_platform_verifier()
                .map_err(|e| format!("the system's trust store: {e}"))?
        } else {
            let mut store = rustls::RootCertStore::empty();
            for der in roots {
                store
                    .add(rustls::pki_types::CertificateDer::from(der.clone()))
                    .map_err(|e| format!("trust bundle: {e}"))?;
            }
            builder.with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(store)
                    .with_no_client_auth(),
            )
        };
        let connector = builder.https_only().enable_http1().enable_http2().build();
        Ok(WatchingClient {
            inner: HyperClient::builder(TokioExecutor::new()).build(connector),
            slot,
        })
    }
}

/// The time a `Retry-After` value (seconds or an HTTP date) names.
fn retry_at(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    match value.parse::<u64>() {
        Ok(secs) => Some(SystemTime::now() + Duration::from_secs(secs).min(MAX_RETRY_AFTER)),
        Err(_) => httpdate::parse_http_date(value).ok(),
    }
}

impl HttpClient for WatchingClient {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let fut = HttpClient::request(&self.inner, req);
        let slot = self.slot.clone();
        Box::pin(async move {
            let resp = fut.await?;
            let status = resp.parts.status;
            if (status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE)
                && let Some(at) = resp
                    .parts
                    .headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_at)
            {
                slot.set(at);
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let in_a_minute = retry_at("60").unwrap();
        let d = in_a_minute.duration_since(SystemTime::now()).unwrap();
        assert!(d > Duration::from_secs(58) && d <= Duration::from_secs(60));
        assert_eq!(
            retry_at("Fri, 31 Dec 1999 23:59:59 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_799))
        );
        assert_eq!(retry_at("soon"), None);
        // A wait longer than a day is capped.
        let far = retry_at("99999999").unwrap();
        assert!(far.duration_since(SystemTime::now()).unwrap() <= MAX_RETRY_AFTER);
        let slot = RetrySlot::default();
        assert_eq!(slot.take(), None);
        slot.set(SystemTime::now() + Duration::from_secs(30));
        assert!(slot.take().unwrap() <= Duration::from_secs(30));
        assert_eq!(slot.take(), None, "taken once");
    }
}
