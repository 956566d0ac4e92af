//! The services: one per concept, each the only place where its rules, its audit events
//! and its cache invalidation live. Front ends call one method and render the answer;
//! nothing outside the services and the jobs holds the store.

pub mod acme;
pub mod alerts;
pub mod audit;
pub mod cas;
pub mod certificates;
pub mod dashboard;
pub mod discovery;
pub mod est;
pub mod issuers;
pub mod managed;
pub mod pki;
pub mod ports;
pub mod profiles;
pub mod sealed;
pub mod sessions;
pub mod tokens;

use std::sync::Arc;

use crate::error::Error;
use crate::jobs::Jobs;

/// Whether `name` is 1 to 64 ASCII letters, digits, `-`, `_` or `.`: the shape of every
/// name an object is found by (CAs, managed certificates, destinations, EST labels).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// [`is_plain_name`], refused as a bad request naming `what` ("name", "CA name").
pub fn validate_name(what: &str, name: &str) -> Result<(), Error> {
    if is_plain_name(name) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "{what} must be 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The longest lifetime a client may give a token or an EST credential, in days (100
/// years): far inside what a timestamp can hold, so an end time is always computable.
pub const MAX_LIFETIME_DAYS: u32 = 36_500;

/// The end of a lifetime of `days` (a client's `field`) from `now`: none when no lifetime
/// was given, refused as a bad request outside 1 to [`MAX_LIFETIME_DAYS`].
pub fn expiry_after_days(
    field: &str,
    days: Option<u32>,
    now: time::OffsetDateTime,
) -> Result<Option<time::OffsetDateTime>, Error> {
    match days {
        None => Ok(None),
        Some(d) if (1..=MAX_LIFETIME_DAYS).contains(&d) => {
            Ok(Some(now + time::Duration::days(d.into())))
        }
        Some(d) => Err(Error::BadRequest(format!(
            "{field} must be between 1 and {MAX_LIFETIME_DAYS}, not {d}"
        ))),
    }
}

/// Every service, built once at start and shared by the front ends and the jobs.
#[derive(Debug, Clone)]
pub struct Services {
    /// The registration authority: the one door to signing, CRLs and OCSP.
    pub pki: Arc<pki::Pki>,
    /// Certificate authorities.
    pub cas: cas::CaService,
    /// Profiles.
    pub profiles: profiles::ProfileService,
    /// Certificates.
    pub certificates: certificates::CertificateService,
    /// API tokens.
    pub tokens: tokens::TokenService,
    /// Dashboard sessions.
    pub sessions: sessions::SessionService,
    /// The audit log.
    pub audit: audit::AuditService,
    /// EST labels and credentials.
    pub est: est::EstService,
    /// ACME administration.
    pub acme: acme::AcmeService,
    /// Issuers: our CAs and external (upstream) CAs.
    pub issuers: issuers::IssuerService,
    /// Managed certificates and their destinations.
    pub managed: Arc<managed::Managed>,
    /// Expiry alerts.
    pub alerts: Arc<alerts::Alerts>,
    /// Discovery scans, the inventory and scan schedules.
    pub discovery: discovery::DiscoveryService,
    /// What the dashboard's pages show, gathered from the services above.
    pub dashboard: dashboard::DashboardService,
    /// The background runner.
    pub jobs: Jobs,
}

impl Services {
    /// Every service over one registration authority and one runner.
    pub fn new(pki: Arc<pki::Pki>, jobs: Jobs) -> Services {
        let cas = cas::CaService::new(pki.clone());
        let profiles = profiles::ProfileService::new(pki.clone());
        let certificates = certificates::CertificateService::new(pki.clone());
        let managed = Arc::new(managed::Managed::new(pki.clone()));
        let alerts = Arc::new(alerts::Alerts::new(pki.clone()));
        let discovery = discovery::DiscoveryService::new(pki.clone(), jobs.clone());
        let est = est::EstService::new(pki.clone());
        let acme = acme::AcmeService::new(pki.clone());
        Services {
            dashboard: dashboard::DashboardService::new(
                pki.clone(),
                dashboard::Sources {
                    cas: cas.clone(),
                    certificates: certificates.clone(),
                    profiles: profiles.clone(),
                    managed: managed.clone(),
                    alerts: alerts.clone(),
                    discovery: discovery.clone(),
                    est: est.clone(),
                    acme: acme.clone(),
                },
            ),
            cas,
            profiles,
            certificates,
            tokens: tokens::TokenService::new(pki.clone()),
            sessions: sessions::SessionService::new(pki.clone()),
            audit: audit::AuditService::new(pki.clone()),
            est,
            acme,
            issuers: issuers::IssuerService::new(pki.clone()),
            managed,
            alerts,
            discovery,
            pki,
            jobs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        assert!(is_plain_name("web-1.example_ca"));
        assert!(is_plain_name(&"a".repeat(64)));
        assert!(!is_plain_name(&"a".repeat(65)));
        assert!(!is_plain_name(""));
        assert!(!is_plain_name("a b"));
        assert!(!is_plain_name("a/b"));
        assert_eq!(
            validate_name("CA name", "a b").unwrap_err().to_string(),
            "CA name must be 1 to 64 letters, digits, '-', '_' or '.'"
        );
    }
}
