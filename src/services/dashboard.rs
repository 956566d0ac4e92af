//! What the dashboard's pages show, each gathered in one call: a page needs facts from
//! several services (the overview counts certificates, lists CAs, failures and scans), and
//! a front end calls one service method per request. No rules live here; every fact comes
//! from the service that owns it. The two actions here (renew or push a managed
//! certificate now) read the certificate, let the caller's permit decide from its profile,
//! and hand over to the managed-certificate service, as the REST handlers do.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::error::Error;
use crate::services::acme::AcmeService;
use crate::services::alerts::Alerts;
use crate::services::cas::CaService;
use crate::services::certificates::{CertPage, CertificateService, Search};
use crate::services::discovery::DiscoveryService;
use crate::services::est::EstService;
use crate::services::managed::{Deployments, Managed, ManagedDetail};
use crate::services::pki::{Actor, Pki};
use crate::services::profiles::ProfileService;
use crate::store::{
    AcmeAccountSummary, AcmeEabKey, CaRecord, CertCounts, CertRecord, ChannelRecord, EstCredential,
    EstLabel, FailedPush, InventoryCertificate, InventoryEndpoint, ManagedRecord, OutboxRecord,
    ProfileRecord, RuleRecord, ScanRecord, ScheduleRecord,
};

/// How many recent failures of each kind the overview shows.
const RECENT_FAILURES: usize = 10;

/// The overview page.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Certificates by state.
    pub counts: CertCounts,
    /// Every CA.
    pub cas: Vec<CaRecord>,
    /// Managed certificates whose last renewal failed.
    pub failed_renewals: Vec<ManagedRecord>,
    /// Pushes to destinations whose last attempt failed.
    pub failed_syncs: Vec<FailedPush>,
    /// Alert notifications that will not be retried.
    pub dead_alerts: Vec<OutboxRecord>,
    /// The most recent discovery scan.
    pub last_scan: Option<ScanRecord>,
    /// The enabled schedule due first.
    pub next_scan: Option<ScheduleRecord>,
    /// When this was read.
    pub now: OffsetDateTime,
}

/// A CA in the hierarchy, with what it signed.
#[derive(Debug, Clone)]
pub struct HierarchyNode {
    /// The CA.
    pub ca: CaRecord,
    /// Certificates it issued.
    pub issued: i64,
    /// Depth below its root (0 for a root or a CA whose issuer is not ours).
    pub depth: usize,
    /// Its current CRL, once one was signed.
    pub crl: Option<crate::services::cas::CrlSummary>,
}

/// The certificates page: one page of results and the choices its search form offers.
#[derive(Debug, Clone)]
pub struct CertificatesPage {
    /// The results.
    pub page: CertPage,
    /// Every CA (to filter by, and to name the issuer of each row).
    pub cas: Vec<CaRecord>,
    /// Every profile (to filter by and to issue under).
    pub profiles: Vec<ProfileRecord>,
}

/// The alerts page: channels, rules and a slice of the outbox.
#[derive(Debug, Clone)]
pub struct AlertsPage {
    /// Every channel.
    pub channels: Vec<ChannelRecord>,
    /// Every rule.
    pub rules: Vec<RuleRecord>,
    /// Outbox rows, newest first.
    pub outbox: Vec<OutboxRecord>,
}

/// The EST page.
#[derive(Debug, Clone)]
pub struct EstPage {
    /// Every label.
    pub labels: Vec<EstLabel>,
    /// A page of credentials, newest first (without passwords).
    pub credentials: Vec<EstCredential>,
    /// Every profile (what a new label may enroll under).
    pub profiles: Vec<ProfileRecord>,
}

/// The ACME page: the EAB keys and a page of accounts.
#[derive(Debug, Clone)]
pub struct AcmePage {
    /// Every EAB key.
    pub eab_keys: Vec<AcmeEabKey>,
    /// A page of accounts, newest first, with their order counts.
    pub accounts: Vec<AcmeAccountSummary>,
}

/// A certificate's page.
#[derive(Debug, Clone)]
pub struct CertificateDetail {
    /// The certificate.
    pub cert: CertRecord,
    /// Its issuer chain, nearest first.
    pub chain: Vec<Vec<u8>>,
    /// Its tags.
    pub tags: Vec<String>,
    /// When this was read.
    pub now: OffsetDateTime,
}

/// The services the dashboard reads from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// CAs.
    pub cas: CaService,
    /// Certificates.
    pub certificates: CertificateService,
    /// Profiles.
    pub profiles: ProfileService,
    /// Managed certificates.
    pub managed: Arc<Managed>,
    /// Alerts.
    pub alerts: Arc<Alerts>,
    /// Discovery.
    pub discovery: DiscoveryService,
    /// EST.
    pub est: EstService,
    /// ACME administration.
    pub acme: AcmeService,
}

/// Gathers what each dashboard page shows from the services that own it.
#[derive(Debug, Clone)]
pub struct DashboardService {
    pki: Arc<Pki>,
    cas: CaService,
    certificates: CertificateService,
    profiles: ProfileService,
    managed: Arc<Managed>,
    alerts: Arc<Alerts>,
    discovery: DiscoveryService,
    est: EstService,
    acme: AcmeService,
}

impl DashboardService {
    /// The service over the services it reads from.
    pub fn new(pki: Arc<Pki>, from: Sources) -> DashboardService {
        let Sources {
            cas,
            certificates,
            profiles,
            managed,
            alerts,
            discovery,
            est,
            acme,
        } = from;
        DashboardService {
            pki,
            cas,
            certificates,
            profiles,
            managed,
            alerts,
            discovery,
            est,
            acme,
        }
    }

    /// The overview page.
    pub async fn overview(&self) -> Result<Overview, Error> {
        let counts = self.certificates.counts().await?;
        let cas = self.cas.list().await?;
        let failed_renewals = self.managed.failed_renewals(RECENT_FAILURES as i64).await?;
        let failed_syncs = self.managed.failed_pushes(RECENT_FAILURES as i64).await?;
        let dead_alerts = self
            .alerts
            .outbox(Some("dead"), None, RECENT_FAILURES as i64)
            .await?;
        let last_scan = self.discovery.list_scans(1).await?.into_iter().next();
        let next_scan = self
            .discovery
            .list_schedules()
            .await?
            .into_iter()
            .filter(|s| s.enabled)
            .min_by_key(|s| s.next_run);
        Ok(Overview {
            counts,
            cas,
            failed_renewals,
            failed_syncs,
            dead_alerts,
            last_scan,
            next_scan,
            now: self.pki.now(),
        })
    }

    /// Every CA, each root followed by the CAs below it (depth first), with issued counts.
    pub async fn hierarchy(&self) -> Result<Vec<HierarchyNode>, Error> {
        let cas = self.cas.list().await?;
        let crls = self.cas.crls().await?;
        let issued: HashMap<String, i64> = self
            .certificates
            .issued_counts()
            .await?
            .into_iter()
            .collect();
        let ids: Vec<&str> = cas.iter().map(|c| c.id.as_str()).collect();
        let is_top = |c: &CaRecord| {
            c.parent_id
                .as_deref()
                .is_none_or(|p| p == c.id || !ids.contains(&p))
        };
        let mut out = Vec::with_capacity(cas.len());
        let mut stack: Vec<(&CaRecord, usize)> = cas
            .iter()
            .filter(|c| is_top(c))
            .rev()
            .map(|c| (c, 0))
            .collect();
        while let Some((ca, depth)) = stack.pop() {
            if out.iter().any(|n: &HierarchyNode| n.ca.id == ca.id) {
                continue;
            }
            out.push(HierarchyNode {
                ca: ca.clone(),
                issued: issued.get(&ca.id).copied().unwrap_or(0),
                depth,
                crl: crls.get(&ca.id).copied(),
            });
            for child in cas
                .iter()
                .rev()
                .filter(|c| c.parent_id.as_deref() == Some(&ca.id) && c.id != ca.id)
            {
                stack.push((child, depth + 1));
            }
        }
        Ok(out)
    }

    /// Channels, rules and up to `limit` outbox rows of `status` (every status when none)
    /// after the keyset position `after`.
    pub async fn alerts(
        &self,
        status: Option<&str>,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<AlertsPage, Error> {
        Ok(AlertsPage {
            outbox: self.alerts.outbox(status, after, limit).await?,
            channels: self.alerts.list_channels().await?,
            rules: self.alerts.list_rules().await?,
        })
    }

    /// A managed certificate (id or name) with its versions, bindings and events, and
    /// where each version is deployed.
    pub async fn managed(&self, id: &str) -> Result<(ManagedDetail, Deployments), Error> {
        let m = self.managed.get(id).await?;
        let deployments = self.managed.deployments(m.clone()).await?;
        Ok((self.managed.detail(m).await?, deployments))
    }

    /// Renew a managed certificate now; `permit` decides from its profile whether the
    /// caller may.
    pub async fn renew_managed(
        &self,
        id: &str,
        permit: impl FnOnce(&str) -> Result<(), Error>,
        actor: &Actor,
    ) -> Result<ManagedRecord, Error> {
        let m = self.managed.get(id).await?;
        permit(&m.profile_name)?;
        self.managed.renew_now(&m.id, actor).await
    }

    /// Push a managed certificate to its destinations now; `permit` decides from its
    /// profile whether the caller may.
    pub async fn sync_managed(
        &self,
        id: &str,
        permit: impl FnOnce(&str) -> Result<(), Error>,
    ) -> Result<ManagedRecord, Error> {
        let m = self.managed.get(id).await?;
        permit(&m.profile_name)?;
        self.managed.sync_now(&m.id).await?;
        Ok(m)
    }

    /// A certificate, its issuer chain (nearest first) and its tags.
    pub async fn certificate(&self, id: &str) -> Result<CertificateDetail, Error> {
        let (cert, chain) = self.certificates.with_chain(id).await?;
        let (_, tags) = self.alerts.tags(&cert.fingerprint).await?;
        Ok(CertificateDetail {
            cert,
            chain,
            tags,
            now: self.pki.now(),
        })
    }

    /// Replace the tags of one of our certificates (by id).
    pub async fn tag_certificate(
        &self,
        id: &str,
        tags: &[String],
        actor: &Actor,
    ) -> Result<Vec<String>, Error> {
        let cert = self.certificates.get(id).await?.cert;
        Ok(self
            .alerts
            .set_tags(&cert.fingerprint, tags, actor)
            .await?
            .1)
    }

    /// The EAB keys and a page of ACME accounts (up to `limit` after the keyset position
    /// `after`).
    pub async fn acme(&self, after: Option<(i64, String)>, limit: i64) -> Result<AcmePage, Error> {
        Ok(AcmePage {
            accounts: self.acme.accounts(after, limit).await?,
            eab_keys: self.acme.eab_keys().await?,
        })
    }

    /// Every EST label, a page of EST credentials (without passwords; up to `limit` after
    /// the keyset position `after`), and the profiles a new label may enroll under.
    pub async fn est(&self, after: Option<(i64, String)>, limit: i64) -> Result<EstPage, Error> {
        Ok(EstPage {
            labels: self.est.labels().await?,
            credentials: self.est.credential_page(after, limit).await?,
            profiles: self.profiles.list().await?,
        })
    }

    /// A discovery scan and its results.
    pub async fn scan(&self, id: &str) -> Result<(ScanRecord, Vec<serde_json::Value>), Error> {
        let scan = self.discovery.scan(id).await?;
        let results = self.discovery.scan_results(id).await?;
        Ok((scan, results))
    }

    /// A page of the endpoint inventory (endpoints still served, with their certificates)
    /// and how many match in all.
    pub async fn endpoints(
        &self,
        filter: &crate::store::EndpointFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<(InventoryEndpoint, InventoryCertificate)>), Error> {
        self.discovery.endpoint_page(filter, offset, limit).await
    }

    /// A page of certificates for `search`, with the CAs and profiles to choose from.
    pub async fn certificates(&self, search: Search) -> Result<CertificatesPage, Error> {
        let page = self.certificates.search(search).await?;
        Ok(CertificatesPage {
            page,
            cas: self.cas.list().await?,
            profiles: self.profiles.list().await?,
        })
    }
}
