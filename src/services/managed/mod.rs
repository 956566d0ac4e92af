//! Managed certificates: issued with server-side keys under a profile, renewed by the
//! server at their renewal point (two thirds of their life unless told otherwise), each
//! renewal a new version with a fresh key sealed at rest, and every version pushed to the
//! cloud destinations bound to the certificate (see [`sync`]).
//!
//! Replicas coordinate through row leases in the database: a renewal or a push is done by
//! whoever claims the row first; a lease that outlives a crashed replica expires.
//!
//! Host agents fetch versions and report what they deployed; where each version lives and
//! which places serve an old one is in [`deployments`].
//!
//! Lifecycle events (`issued`, `renewed`, `renewal_failed`, `synced`, `sync_failed`,
//! `revoked`, `deployed`, `deployment_failed`, `deployment_stale`) go through [`Managed::event`], which records them in `managed_events` and
//! logs them; the alerting work delivers them from there.

mod deployments;
pub(crate) mod destinations;
mod detail;
mod sync;

use std::collections::HashMap;
use std::sync::Arc;

use certkeeper_ca::{IssuanceRequest, PublicKeyData};
use time::{Duration, OffsetDateTime};

use crate::error::Error;
use crate::services::issuers::IssuerService;
use crate::services::pki::{Actor, Issued, Pki};
use crate::store::{ManagedRecord, ManagedRequest, StoreError, new_id};

pub use deployments::{
    DeploymentReport, Deployments, MAX_HOST_LEN, MAX_HOSTS, MAX_OUTPUT_CHARS, Place, PlaceKind,
};
pub use destinations::{
    AWS_ACM, AWS_ELB, AWS_SECRETS_MANAGER, AZURE_KEY_VAULT, CLOUDFLARE, ConnectionTest,
    NewDestination,
};
pub use detail::{BindingDetail, ManagedDetail, VersionDetail};

/// How long a replica may hold a renewal or push before others may take it over.
const LEASE: Duration = Duration::minutes(10);
/// First retry delay after a failure; doubled per failure in a row.
const BACKOFF_BASE: Duration = Duration::minutes(1);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::hours(6);

/// The retry delay after `failures` failures in a row (1, 2, 4, ... minutes, at most six
/// hours).
pub fn backoff(failures: i64) -> Duration {
    let exp = failures.clamp(1, 20) - 1;
    let d = BACKOFF_BASE * (1i64 << exp) as f64;
    if d > BACKOFF_MAX { BACKOFF_MAX } else { d }
}

/// When a version valid from `not_before` to `not_after` is due for renewal: at
/// `percent` of its life, or at two thirds.
pub fn renewal_point(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    percent: Option<i64>,
) -> OffsetDateTime {
    let life = not_after - not_before;
    match percent {
        Some(p) => not_before + life * (p as f64 / 100.0),
        None => not_before + life * (2.0 / 3.0),
    }
}

/// Least time between two requests for an upstream's renewal information.
const ARI_MIN_RECHECK: Duration = Duration::minutes(1);
/// Most time between two requests for an upstream's renewal information.
const ARI_MAX_RECHECK: Duration = Duration::days(1);

/// When to renew given an upstream's suggested window `start`..`end` (RFC 9773 §4.2) and
/// the renewal scheduled now: `now` once the window has started, the scheduled time when
/// it lies inside the window (`None`: nothing moves), else the point `pick` (0 to 1) of
/// the way through the window.
pub fn renewal_in_window(
    now: OffsetDateTime,
    start: OffsetDateTime,
    end: OffsetDateTime,
    scheduled: Option<OffsetDateTime>,
    pick: f64,
) -> Option<OffsetDateTime> {
    if start <= now {
        return match scheduled {
            Some(at) if at <= now => None,
            _ => Some(now),
        };
    }
    if let Some(at) = scheduled
        && at >= start
        && at <= end
    {
        return None;
    }
    let span = if end > start {
        end - start
    } else {
        Duration::ZERO
    };
    Some(start + span * pick.clamp(0.0, 1.0))
}

/// A uniformly random number from 0 to 1.
fn random_fraction() -> f64 {
    let mut b = [0u8; 8];
    // The system's generator does not fail on the platforms we build for; the middle
    // of the window is a fine answer if it ever did.
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// What a new managed certificate is created with.
#[derive(Debug, Clone)]
pub struct NewManaged {
    /// Unique name.
    pub name: String,
    /// Issuing profile.
    pub profile: String,
    /// Names, key type, validity.
    pub request: ManagedRequest,
    /// Renewal point as a percentage of each version's life (1-99); two thirds if absent.
    pub renew_at_percent: Option<i64>,
}

/// The managed-certificate service: creation, renewal, revocation, and sync.
pub struct Managed {
    pki: Arc<Pki>,
    issuers: IssuerService,
    /// This replica's lease owner name.
    owner: String,
    destinations: tokio::sync::Mutex<HashMap<String, Arc<dyn certkeeper_sync::Destination>>>,
}

impl std::fmt::Debug for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

fn validate_name(name: &str) -> Result<(), Error> {
    crate::services::validate_name("name", name)
}

/// An error as it may be stored and shown: internal details stay in the log.
fn public_error(e: &Error) -> String {
    match e {
        Error::Internal(_) => "internal error (see the server log)".into(),
        other => other.to_string(),
    }
}

impl Managed {
    /// The service over `pki`; `owner` names this replica in leases.
    pub fn new(pki: Arc<Pki>) -> Managed {
        Managed {
            issuers: IssuerService::new(pki.clone()),
            pki,
            owner: format!("replica:{}", new_id()),
            destinations: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The CA service.
    pub fn pki(&self) -> &Arc<Pki> {
        &self.pki
    }

    /// Record and log a lifecycle event. This is where alert delivery hooks in.
    pub async fn event(&self, managed_id: &str, kind: &str, detail: serde_json::Value) {
        match kind {
            "renewal_failed" | "sync_failed" | "issuance_failed" | "deployment_failed"
            | "deployment_stale" => {
                tracing::warn!(managed = %managed_id, event = kind, detail = %detail, "managed certificate event")
            }
            _ => {
                tracing::info!(managed = %managed_id, event = kind, detail = %detail, "managed certificate event")
            }
        }
        if let Err(e) = self
            .pki
            .store()
            .insert_managed_event(managed_id, kind, &detail, self.pki.now())
            .await
        {
            tracing::error!(managed = %managed_id, event = kind, error = %e, "recording a lifecycle event failed");
        }
        // Failures go to the alert channels subscribed to them (issuance, renewal and
        // revocation already reach them through the issuance path).
        let alert = match kind {
            "renewal_failed" => Some(crate::services::alerts::EventKind::RenewalFailed),
            "sync_failed" => Some(crate::services::alerts::EventKind::SyncFailed),
            "issuance_failed" => Some(crate::services::alerts::EventKind::IssuanceFailed),
            _ => None,
        };
        if let Some(alert) = alert {
            let data = serde_json::json!({ "managed_certificate": managed_id, "detail": detail });
            crate::services::alerts::emit(&self.pki, alert, Some(managed_id), None, data).await;
        }
    }

    async fn issue_version(
        &self,
        profile_name: &str,
        request: &ManagedRequest,
        replaces: Option<&[u8]>,
        actor: &Actor,
    ) -> Result<Issued, Error> {
        let profile = self.pki.profile(profile_name).await.map_err(|e| match e {
            StoreError::NotFound(_) => Error::BadRequest(format!("no profile {profile_name:?}")),
            other => other.into(),
        })?;
        let key = self
            .pki
            .generate_key(&profile, request.key_algorithm)
            .await?;
        let mut req = IssuanceRequest::for_key(&key.subject_public_key_info());
        req.dns_names = request.dns_names.clone();
        req.ip_addresses = request.ip_addresses.clone();
        if let Some(cn) = &request.common_name {
            req.subject.push(("CN".into(), cn.clone()));
        }
        req.validity = request.validity_days.map(|d| Duration::days(d.into()));
        self.issuers
            .issue_with_key(&profile, req, &key, true, replaces, actor)
            .await
    }

    /// Record a failed issuance on `id` (held under this replica's lease) and raise its
    /// event: `issuance_failed` with the problem document when an upstream CA refused,
    /// `renewal_failed` otherwise.
    async fn record_failure(&self, id: &str, failures: i64, e: &Error) -> Result<(), Error> {
        // The usual backoff, but never sooner than an upstream asked (its `Retry-After`).
        let asked = match e {
            Error::Upstream {
                retry_after: Some(d),
                ..
            } => Duration::try_from(*d).unwrap_or(BACKOFF_MAX),
            _ => Duration::ZERO,
        };
        let retry_at = self.pki.now() + backoff(failures).max(asked);
        let msg = public_error(e);
        let problem = match e {
            Error::Upstream { problem, .. } => Some(problem.clone().unwrap_or_default()),
            _ => None,
        };
        self.pki
            .store()
            .record_renewal_failure(
                id,
                &self.owner,
                &msg,
                problem.as_ref().filter(|p| !p.is_null()),
                retry_at,
            )
            .await?;
        let mut detail = serde_json::json!({
            "error": msg, "failures": failures, "retry_at": retry_at.unix_timestamp(),
        });
        let kind = match problem {
            Some(p) => {
                detail["problem"] = p;
                "issuance_failed"
            }
            None => "renewal_failed",
        };
        self.event(id, kind, detail).await;
        Ok(())
    }

    /// Create a managed certificate and issue its first version.
    pub async fn create(&self, new: NewManaged, actor: &Actor) -> Result<ManagedRecord, Error> {
        validate_name(&new.name)?;
        if let Some(p) = new.renew_at_percent
            && !(1..=99).contains(&p)
        {
            return Err(Error::BadRequest(
                "renew_at_percent must be between 1 and 99".into(),
            ));
        }
        if new.request.validity_days == Some(0) {
            return Err(Error::BadRequest("validity_days must be at least 1".into()));
        }
        match self.pki.store().get_managed(&new.name).await {
            Ok(_) => {
                return Err(Error::Conflict(
                    "a managed certificate with this name already exists".into(),
                ));
            }
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let issued = match self
            .issue_version(&new.profile, &new.request, None, actor)
            .await
        {
            Ok(issued) => issued,
            // An upstream that refused or failed: the certificate is managed all the same,
            // with no version yet, and the renewal job retries with backoff.
            Err(e @ Error::Upstream { .. }) => return self.create_pending(new, e, actor).await,
            Err(e) => return Err(e),
        };
        let info = &issued.cert.info;
        let next = renewal_point(info.not_before, info.not_after, new.renew_at_percent);
        let rec = self.new_record(&new, 1, next, actor);
        let ev = actor
            .event("managed.create", "managed_certificate")
            .object(&rec.id)
            .detail(serde_json::json!({
                "name": rec.name, "profile": rec.profile_name, "certificate": issued.id,
            }));
        self.pki
            .store()
            .insert_managed(&rec, Some(&issued.id), &ev)
            .await?;
        self.event(
            &rec.id,
            "issued",
            serde_json::json!({"version": 1, "certificate": issued.id, "serial": info.serial}),
        )
        .await;
        Ok(rec)
    }

    /// The record of a new managed certificate at `version`, next renewed at `next`.
    fn new_record(
        &self,
        new: &NewManaged,
        version: i64,
        next: OffsetDateTime,
        actor: &Actor,
    ) -> ManagedRecord {
        ManagedRecord {
            id: new_id(),
            name: new.name.clone(),
            profile_name: new.profile.clone(),
            request: new.request.clone(),
            renew_at_percent: new.renew_at_percent,
            status: "active".into(),
            current_version: version,
            next_renewal_at: Some(next),
            renewal_failures: 0,
            last_error: None,
            last_problem: None,
            created_at: self.pki.now(),
            created_by: actor.name.clone(),
            upstream_window: None,
        }
    }

    /// Create a managed certificate whose first issuance an upstream CA refused: no
    /// version yet, the failure recorded with the upstream's problem document, and a
    /// retry scheduled by the usual backoff.
    async fn create_pending(
        &self,
        new: NewManaged,
        e: Error,
        actor: &Actor,
    ) -> Result<ManagedRecord, Error> {
        let now = self.pki.now();
        // Due at once; the failure recorded below moves it to the first retry.
        let rec = self.new_record(&new, 0, now, actor);
        let ev = actor
            .event("managed.create", "managed_certificate")
            .object(&rec.id)
            .detail(serde_json::json!({
                "name": rec.name, "profile": rec.profile_name, "pending": public_error(&e),
            }));
        let store = self.pki.store();
        store.insert_managed(&rec, None, &ev).await?;
        if store
            .lease_managed(&rec.id, &self.owner, now, now + LEASE, false)
            .await?
        {
            self.record_failure(&rec.id, 1, &e).await?;
        }
        Ok(store.get_managed(&rec.id).await?)
    }

    /// Renew now, whatever the schedule says.
    pub async fn renew_now(&self, id: &str, actor: &Actor) -> Result<ManagedRecord, Error> {
        let rec = self.pki.store().get_managed(id).await?;
        if rec.status != "active" {
            return Err(Error::Conflict(format!(
                "managed certificate {:?} is {}",
                rec.name, rec.status
            )));
        }
        match self.renew(&rec.id, false, actor).await? {
            true => Ok(self.pki.store().get_managed(&rec.id).await?),
            false => Err(Error::Conflict(
                "a renewal of this certificate is already under way".into(),
            )),
        }
    }

    /// Renew one certificate if this replica can claim it (and, with `due_only`, if it is
    /// due). Returns whether it was renewed; a failed renewal is recorded, scheduled for a
    /// retry, and returned as the error.
    async fn renew(&self, id: &str, due_only: bool, actor: &Actor) -> Result<bool, Error> {
        let store = self.pki.store();
        let now = self.pki.now();
        if !store
            .lease_managed(id, &self.owner, now, now + LEASE, due_only)
            .await?
        {
            return Ok(false);
        }
        let rec = match store.get_managed(id).await {
            Ok(r) => r,
            Err(e) => {
                store.release_managed(id, &self.owner).await?;
                return Err(e.into());
            }
        };
        let replaces = match self.current_certificate(&rec).await {
            Ok(c) => c.map(|c| c.der),
            Err(e) => {
                store.release_managed(id, &self.owner).await?;
                return Err(e);
            }
        };
        match self
            .issue_version(&rec.profile_name, &rec.request, replaces.as_deref(), actor)
            .await
        {
            Ok(issued) => {
                let info = &issued.cert.info;
                let next = renewal_point(info.not_before, info.not_after, rec.renew_at_percent);
                let ev = actor
                    .event("managed.renew", "managed_certificate")
                    .object(id)
                    .detail(serde_json::json!({"certificate": issued.id}));
                let version = store
                    .record_renewal(id, &self.owner, &issued.id, next, &ev, now)
                    .await?;
                self.event(
                    id,
                    "renewed",
                    serde_json::json!({
                        "version": version, "certificate": issued.id, "serial": info.serial,
                        "not_after": info.not_after.unix_timestamp(),
                    }),
                )
                .await;
                Ok(true)
            }
            Err(e) => {
                self.record_failure(id, rec.renewal_failures + 1, &e)
                    .await?;
                Err(e)
            }
        }
    }

    /// Ask the upstream ACME CAs that offer renewal information (RFC 9773) when to renew
    /// the current versions they issued, as often as their `Retry-After` allows (between a
    /// minute and a day), and follow their window: a window that has started means renew
    /// now; otherwise a renewal already scheduled inside the window stays, and one outside
    /// it moves to a random point within it (so that many clients do not renew at once).
    /// A failure to ask is logged and asked again in an hour; renewal goes on as scheduled.
    async fn check_renewal_info(&self) -> Result<(), Error> {
        let store = self.pki.store();
        let now = self.pki.now();
        for due in store.renewal_info_due(now).await? {
            let cert = store.get_certificate(&due.certificate_id).await?;
            let (window, next_check, next_renewal) = match self
                .issuers
                .renewal_info(&due.issuer_id, &cert.der)
                .await
            {
                Ok(Some(advice)) => {
                    let wait = Duration::try_from(advice.retry_after)
                        .unwrap_or(ARI_MAX_RECHECK)
                        .clamp(ARI_MIN_RECHECK, ARI_MAX_RECHECK);
                    let next = renewal_in_window(
                        now,
                        advice.start,
                        advice.end,
                        due.next_renewal_at,
                        random_fraction(),
                    );
                    let window = crate::store::UpstreamWindow {
                        start: advice.start,
                        end: advice.end,
                        explanation_url: advice.explanation_url,
                        next_check: Some(now + wait),
                    };
                    (Some(window), now + wait, next)
                }
                Ok(None) => (None, now + ARI_MAX_RECHECK, None),
                Err(e) => {
                    tracing::warn!(managed = %due.managed_id, error = %e, "asking the upstream for renewal information failed; asking again in an hour");
                    (None, now + Duration::hours(1), None)
                }
            };
            let recorded = store
                .record_renewal_info(
                    &due.managed_id,
                    &due.certificate_id,
                    window.as_ref(),
                    next_check,
                    next_renewal,
                )
                .await?;
            if let (true, Some(at)) = (recorded, next_renewal) {
                tracing::info!(managed = %due.managed_id, renew_at = %at, "the upstream's renewal window moved the renewal");
            }
        }
        Ok(())
    }

    /// The certificate of `rec`'s current version, if it has one.
    async fn current_certificate(
        &self,
        rec: &ManagedRecord,
    ) -> Result<Option<crate::store::CertRecord>, Error> {
        let store = self.pki.store();
        let Some(v) = store
            .managed_versions(&rec.id)
            .await?
            .into_iter()
            .find(|v| v.version == rec.current_version)
        else {
            return Ok(None);
        };
        Ok(Some(store.get_certificate(&v.certificate_id).await?))
    }

    /// Renew every certificate that is due; returns how many were renewed.
    pub async fn renew_due(&self) -> Result<usize, Error> {
        self.check_renewal_info().await?;
        let moved = self
            .pki
            .store()
            .apply_renewal_windows(self.pki.now())
            .await?;
        if moved > 0 {
            tracing::info!(
                count = moved,
                "renewal windows moved earlier by an administrator"
            );
        }
        let due = self.pki.store().due_managed(self.pki.now()).await?;
        let system = Actor::system();
        let mut renewed = 0;
        for id in due {
            match self.renew(&id, true, &system).await {
                Ok(true) => renewed += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(managed = %id, error = %e, "renewal failed; will retry"),
            }
        }
        Ok(renewed)
    }

    /// Everything the background job does once: renewals, then pushes, then the search
    /// for stale deployments (see [`Managed::sweep_stale`]).
    pub async fn run_due(&self) -> Result<(usize, usize), Error> {
        let renewed = self.renew_due().await?;
        let pushed = self.sync_due().await?;
        self.sweep_stale().await?;
        Ok((renewed, pushed))
    }

    /// Revoke every valid version and stop renewing.
    pub async fn revoke(
        &self,
        id: &str,
        reason: u8,
        actor: &Actor,
    ) -> Result<ManagedRecord, Error> {
        let store = self.pki.store();
        let rec = store.get_managed(id).await?;
        if rec.status == "revoked" {
            return Err(Error::Conflict(
                "the managed certificate is already revoked".into(),
            ));
        }
        for v in store.managed_versions(&rec.id).await? {
            let cert = store.get_certificate(&v.certificate_id).await?;
            if cert.status != "valid" {
                continue;
            }
            match self.issuers.revoke(&cert.id, reason, actor).await {
                Ok(_) | Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let ev = actor
            .event("managed.revoke", "managed_certificate")
            .object(&rec.id)
            .detail(serde_json::json!({"reason": reason}));
        store
            .mark_managed_revoked(&rec.id, &ev, self.pki.now())
            .await?;
        self.event(&rec.id, "revoked", serde_json::json!({"reason": reason}))
            .await;
        Ok(store.get_managed(&rec.id).await?)
    }

    /// Stop managing a certificate: its versions stay on record as certificates. What was
    /// pushed to destinations set to `remove_on_unbind` is removed first (if that fails,
    /// nothing changes); copies at other destinations are left alone.
    pub async fn delete(&self, id: &str, actor: &Actor) -> Result<(), Error> {
        let rec = self.pki.store().get_managed(id).await?;
        for b in self.pki.store().bindings_of(&rec.id).await? {
            let d = self.pki.store().get_destination(&b.destination_id).await?;
            if d.remove_on_unbind
                && let Some(remote) = &b.remote_id
            {
                self.remove_remote(&d, remote).await?;
            }
        }
        let ev = actor
            .event("managed.delete", "managed_certificate")
            .object(&rec.id)
            .detail(serde_json::json!({"name": rec.name}));
        self.pki
            .store()
            .delete_managed(&rec.id, &ev, self.pki.now())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::minutes(1));
        assert_eq!(backoff(2), Duration::minutes(2));
        assert_eq!(backoff(4), Duration::minutes(8));
        assert_eq!(backoff(50), Duration::hours(6));
    }

    #[test]
    fn an_upstream_window_moves_the_renewal_only_when_it_must() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (start, end) = (now + Duration::days(10), now + Duration::days(12));
        // A window that has started: renew now, unless already due.
        assert_eq!(
            renewal_in_window(now, now - Duration::hours(1), end, Some(start), 0.5),
            Some(now)
        );
        assert_eq!(
            renewal_in_window(now, now, end, Some(now - Duration::minutes(1)), 0.5),
            None
        );
        // A renewal already inside the window stays where it is.
        assert_eq!(
            renewal_in_window(now, start, end, Some(start + Duration::days(1)), 0.9),
            None
        );
        // Outside it (earlier or later, or none yet): the chosen point within it.
        assert_eq!(
            renewal_in_window(now, start, end, Some(now + Duration::days(20)), 0.25),
            Some(start + Duration::hours(12))
        );
        assert_eq!(
            renewal_in_window(now, start, end, Some(now + Duration::days(2)), 1.0),
            Some(end)
        );
        assert_eq!(renewal_in_window(now, start, end, None, 0.0), Some(start));
    }

    #[test]
    fn renewal_point_defaults_to_two_thirds() {
        let nb = OffsetDateTime::UNIX_EPOCH;
        let na = nb + Duration::days(90);
        assert_eq!(renewal_point(nb, na, None), nb + Duration::days(60));
        assert_eq!(renewal_point(nb, na, Some(50)), nb + Duration::days(45));
    }
}
