//! Prometheus metrics in the text exposition format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// End-entity certificates issued.
    pub certificates_issued: Counter,
    /// Certificates revoked.
    pub certificates_revoked: Counter,
    /// Requests refused by profile policy.
    pub policy_rejections: Counter,
    /// CRLs signed.
    pub crls_generated: Counter,
    /// OCSP requests answered.
    pub ocsp_requests: Counter,
    /// HTTP requests answered with 2xx/3xx.
    pub http_ok: Counter,
    /// HTTP requests answered with 4xx.
    pub http_client_errors: Counter,
    /// HTTP requests answered with 5xx.
    pub http_server_errors: Counter,
}

impl Metrics {
    /// Render in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            "certkeeper_certificates_issued_total",
            "End-entity certificates issued.",
            self.certificates_issued.get(),
        );
        counter(
            "certkeeper_certificates_revoked_total",
            "Certificates revoked.",
            self.certificates_revoked.get(),
        );
        counter(
            "certkeeper_policy_rejections_total",
            "Issuance requests refused by profile policy.",
            self.policy_rejections.get(),
        );
        counter(
            "certkeeper_crls_generated_total",
            "CRLs signed.",
            self.crls_generated.get(),
        );
        counter(
            "certkeeper_ocsp_requests_total",
            "OCSP requests answered.",
            self.ocsp_requests.get(),
        );
        let _ = writeln!(
            out,
            "# HELP certkeeper_http_responses_total HTTP responses by status class.\n# TYPE certkeeper_http_responses_total counter\n\
             certkeeper_http_responses_total{{class=\"ok\"}} {}\n\
             certkeeper_http_responses_total{{class=\"client_error\"}} {}\n\
             certkeeper_http_responses_total{{class=\"server_error\"}} {}",
            self.http_ok.get(),
            self.http_client_errors.get(),
            self.http_server_errors.get()
        );
        out
    }
}
