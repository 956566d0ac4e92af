//! Prometheus metrics, kept and encoded (OpenMetrics text) by the `prometheus-client` library.
//!
//! Two kinds: counters and histograms this process updates as it works (issuance, OCSP,
//! HTTP responses and latency per front end), and gauges read from the database when the
//! endpoint is scraped ([`Gauges`]: certificate and CA expiry, the alert outbox, ACME orders
//! and challenges, managed-certificate renewals and syncs, discovery scans). The gauges
//! are the same on every replica; label values are CA and profile names, statuses and
//! kinds, so their number stays small whatever the inventory's size.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::store::gauges::{Gauges, WINDOWS};

/// Label pairs of a series.
type Labels = Vec<(String, String)>;

fn labels<const N: usize>(pairs: [(&str, &str); N]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A gauge family set afresh from the database at each scrape.
type GaugeFamily = Family<Labels, Gauge>;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
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
    http_responses: Family<Labels, Counter>,
    http_duration: Family<Labels, Histogram>,
    cert_expiry: GaugeFamily,
    cert_count: GaugeFamily,
    ca_expiry: GaugeFamily,
    outbox: GaugeFamily,
    acme_orders: GaugeFamily,
    acme_challenges: GaugeFamily,
    managed_events: GaugeFamily,
    scans: GaugeFamily,
    last_scan: Gauge,
    store_batches: Counter,
    store_writes: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// The status class of an HTTP response, as the `class` label writes it.
fn class(status: u16) -> &'static str {
    match status {
        500..=599 => "server_error",
        400..=499 => "client_error",
        _ => "ok",
    }
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("certkeeper");
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.clone());
            c
        };
        let certificates_issued = counter(
            &mut r,
            "certificates_issued",
            "End-entity certificates issued.",
        );
        let certificates_revoked = counter(&mut r, "certificates_revoked", "Certificates revoked.");
        let policy_rejections = counter(
            &mut r,
            "policy_rejections",
            "Issuance requests refused by profile policy.",
        );
        let crls_generated = counter(&mut r, "crls_generated", "CRLs signed.");
        let ocsp_requests = counter(&mut r, "ocsp_requests", "OCSP requests answered.");

        let http_responses = Family::<Labels, Counter>::default();
        r.register(
            "http_responses",
            "HTTP responses by status class.",
            http_responses.clone(),
        );
        for c in ["ok", "client_error", "server_error"] {
            let _ = http_responses.get_or_create(&labels([("class", c)]));
        }
        let http_duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.5, 14))
        });
        r.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by front end (api, acme, est, public, web).",
            Unit::Seconds,
            http_duration.clone(),
        );

        let gauge_family = |r: &mut Registry, name: &str, help: &str, unit: Option<Unit>| {
            let f = GaugeFamily::default();
            match unit {
                Some(u) => r.register_with_unit(name, help, u, f.clone()),
                None => r.register(name, help, f.clone()),
            }
            f
        };
        let cert_expiry = gauge_family(
            &mut r,
            "certificate_expiration_timestamp",
            "The earliest expiry among valid certificates, per CA and profile.",
            Some(Unit::Seconds),
        );
        let cert_count = gauge_family(
            &mut r,
            "certificates_valid",
            "Valid, unexpired certificates per CA and profile, in all and expiring within a window (7d, 30d, 90d).",
            None,
        );
        let ca_expiry = gauge_family(
            &mut r,
            "ca_expiration_timestamp",
            "When each CA's certificate expires.",
            Some(Unit::Seconds),
        );
        let outbox = gauge_family(
            &mut r,
            "alert_outbox",
            "Alert notifications by status (pending, delivered, dead).",
            None,
        );
        let acme_orders = gauge_family(&mut r, "acme_orders", "ACME orders kept, by status.", None);
        let acme_challenges = gauge_family(
            &mut r,
            "acme_challenges",
            "ACME challenges kept, by type and status (valid, invalid: validation outcomes).",
            None,
        );
        let managed_events = gauge_family(
            &mut r,
            "managed_events",
            "Managed-certificate events by kind (renewed, renewal_failed, synced, sync_failed, ...).",
            None,
        );
        let scans = gauge_family(
            &mut r,
            "discovery_scans",
            "Discovery scans by status.",
            None,
        );
        let last_scan = Gauge::default();
        r.register_with_unit(
            "discovery_last_scan_duration",
            "How long the last finished discovery scan ran.",
            Unit::Seconds,
            last_scan.clone(),
        );
        let store_batches = counter(
            &mut r,
            "store_write_batches",
            "Transactions this process's group-commit writer ran.",
        );
        let store_writes = counter(
            &mut r,
            "store_batched_writes",
            "Writes those transactions held (certificate records; on SQLite also ACME state changes): divided by the batches, the mean batch.",
        );
        let build = Family::<Labels, Gauge>::default();
        build
            .get_or_create(&labels([("version", env!("CARGO_PKG_VERSION"))]))
            .set(1);
        r.register("build_info", "The running build.", build);

        Metrics {
            registry: r,
            certificates_issued,
            certificates_revoked,
            policy_rejections,
            crls_generated,
            ocsp_requests,
            http_responses,
            http_duration,
            cert_expiry,
            cert_count,
            ca_expiry,
            outbox,
            acme_orders,
            acme_challenges,
            managed_events,
            scans,
            last_scan,
            store_batches,
            store_writes,
        }
    }

    /// Count an HTTP response of `front_end` and the time it took.
    pub fn observe_http(&self, front_end: &str, status: u16, seconds: f64) {
        self.http_responses
            .get_or_create(&labels([("class", class(status))]))
            .inc();
        self.http_duration
            .get_or_create(&labels([("front_end", front_end)]))
            .observe(seconds);
    }

    /// Responses answered with a status of this class so far (`ok`, `client_error`,
    /// `server_error`).
    pub fn responses(&self, class: &str) -> u64 {
        self.http_responses
            .get_or_create(&labels([("class", class)]))
            .get()
    }

    /// Set the gauges from what the database holds now.
    pub fn set_gauges(&self, g: &Gauges) {
        for f in [
            &self.cert_expiry,
            &self.cert_count,
            &self.ca_expiry,
            &self.outbox,
            &self.acme_orders,
            &self.acme_challenges,
            &self.managed_events,
            &self.scans,
        ] {
            f.clear();
        }
        for c in &g.certificates {
            let at = [("ca", c.ca.as_str()), ("profile", c.profile.as_str())];
            self.cert_expiry
                .get_or_create(&labels(at))
                .set(c.earliest_not_after);
            self.cert_count
                .get_or_create(&labels([at[0], at[1], ("within", "all")]))
                .set(c.total);
            for (days, n) in WINDOWS.iter().zip(c.expiring) {
                let within = format!("{days}d");
                self.cert_count
                    .get_or_create(&labels([at[0], at[1], ("within", within.as_str())]))
                    .set(n);
            }
        }
        for (ca, not_after) in &g.cas {
            self.ca_expiry
                .get_or_create(&labels([("ca", ca)]))
                .set(*not_after);
        }
        let by = |f: &GaugeFamily, key: &str, rows: &[(String, i64)]| {
            for (v, n) in rows {
                f.get_or_create(&labels([(key, v.as_str())])).set(*n);
            }
        };
        by(&self.outbox, "status", &g.outbox);
        by(&self.acme_orders, "status", &g.acme_orders);
        by(&self.managed_events, "kind", &g.managed_events);
        by(&self.scans, "status", &g.scans);
        for (kind, status, n) in &g.acme_challenges {
            self.acme_challenges
                .get_or_create(&labels([("type", kind), ("status", status)]))
                .set(*n);
        }
        self.last_scan.set(g.last_scan_seconds.unwrap_or(0));
        // The writer's counts only grow: bring the counters up to them.
        for (c, now) in [
            (&self.store_batches, g.writer.batches),
            (&self.store_writes, g.writer.writes),
        ] {
            c.inc_by(now.saturating_sub(c.get()));
        }
    }

    /// Encode every metric as OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
