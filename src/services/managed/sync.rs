//! Pushing versions to destinations: every binding behind its certificate's current
//! version is claimed with a lease, pushed, and recorded; failures are retried with
//! backoff (longer when the remote says how long to wait), and a version older than the
//! one a destination holds is never pushed over it.

use certkeeper_sync::CertificateVersion;

use super::{BACKOFF_MAX, LEASE, Managed, backoff, public_error};
use crate::error::Error;

impl Managed {
    /// The current version of a managed certificate, with its key and issuer chain.
    pub async fn current_version(&self, managed_id: &str) -> Result<CertificateVersion, Error> {
        let store = self.pki.store();
        let rec = store.get_managed(managed_id).await?;
        let v = store
            .managed_versions(&rec.id)
            .await?
            .into_iter()
            .find(|v| v.version == rec.current_version)
            .ok_or_else(|| Error::Internal(format!("{managed_id}: current version missing")))?;
        let cert = store.get_certificate(&v.certificate_id).await?;
        let sealed = store
            .get_certificate_key(&cert.id)
            .await?
            .ok_or_else(|| Error::Internal(format!("certificate {} has no key", cert.id)))?;
        let key = self
            .pki
            .master()
            .open(&sealed, format!("cert:{}", cert.id).as_bytes())?;
        let ca = self.pki.ca(&cert.ca_id).await?;
        let mut chain = self.pki.chain_of(&ca).await?;
        chain.pop_if(|c| certkeeper_ca::is_self_issued(c));
        Ok(CertificateVersion {
            version: v.version,
            certificate_der: cert.der,
            chain_der: chain,
            key_pkcs8_der: key,
        })
    }

    /// Push to every binding that is behind and due; returns how many pushes succeeded.
    pub async fn sync_due(&self) -> Result<usize, Error> {
        let due = self.pki.store().due_bindings(self.pki.now()).await?;
        let mut pushed = 0;
        for (m, d) in due {
            match self.push(&m, &d).await {
                Ok(true) => pushed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(managed = %m, destination = %d, error = %e, "push failed; will retry")
                }
            }
        }
        Ok(pushed)
    }

    /// Push the current version now to every destination of `managed_id` that is behind,
    /// whatever the retry schedule says; failures are recorded on the bindings.
    pub async fn sync_now(&self, managed_id: &str) -> Result<usize, Error> {
        let rec = self.pki.store().get_managed(managed_id).await?;
        let mut pushed = 0;
        for b in self.pki.store().bindings_of(&rec.id).await? {
            if b.pushed_version.unwrap_or(0) >= rec.current_version {
                continue;
            }
            match self.push(&rec.id, &b.destination_id).await {
                Ok(true) => pushed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(managed = %rec.id, destination = %b.destination_id, error = %e, "push failed; will retry")
                }
            }
        }
        Ok(pushed)
    }

    /// Push the current version to one destination if this replica can claim the binding
    /// and the destination is behind. Returns whether a version was pushed.
    async fn push(&self, managed_id: &str, destination_id: &str) -> Result<bool, Error> {
        let store = self.pki.store();
        let now = self.pki.now();
        if !store
            .lease_binding(managed_id, destination_id, &self.owner, now, now + LEASE)
            .await?
        {
            return Ok(false);
        }
        let result = self.push_leased(managed_id, destination_id, now).await;
        if result.is_err() {
            store
                .release_binding(managed_id, destination_id, &self.owner)
                .await?;
        }
        result
    }

    async fn push_leased(
        &self,
        managed_id: &str,
        destination_id: &str,
        now: time::OffsetDateTime,
    ) -> Result<bool, Error> {
        let store = self.pki.store();
        let binding = store.get_binding(managed_id, destination_id).await?;
        let rec = store.get_managed(managed_id).await?;
        if rec.status != "active" || binding.pushed_version.unwrap_or(0) >= rec.current_version {
            store
                .release_binding(managed_id, destination_id, &self.owner)
                .await?;
            return Ok(false);
        }
        let version = self.current_version(managed_id).await?;
        let outcome = match self.destination(destination_id).await {
            Ok(dest) => dest
                .push(&version, binding.remote_id.as_deref(), now)
                .await
                .map_err(|e| (e.retryable(), e.retry_after(), e.to_string())),
            Err(e) => Err((true, None, public_error(&e))),
        };
        match outcome {
            Ok(p) => {
                let recorded = store
                    .record_push(
                        managed_id,
                        destination_id,
                        &self.owner,
                        version.version,
                        &p.remote_id,
                        p.remote_version.as_deref(),
                        now,
                    )
                    .await?;
                self.event(
                    managed_id,
                    "synced",
                    serde_json::json!({
                        "destination": destination_id, "version": version.version,
                        "remote_id": p.remote_id, "remote_version": p.remote_version,
                    }),
                )
                .await;
                Ok(recorded)
            }
            Err((retryable, retry_after, message)) => {
                let failures = binding.failures + 1;
                let mut delay = if retryable {
                    backoff(failures)
                } else {
                    BACKOFF_MAX
                };
                if let Some(ra) = retry_after
                    && let Ok(ra) = time::Duration::try_from(ra)
                    && ra > delay
                {
                    delay = ra.min(BACKOFF_MAX);
                }
                let retry_at = now + delay;
                store
                    .record_push_failure(
                        managed_id,
                        destination_id,
                        &self.owner,
                        &message,
                        retry_at,
                        now,
                    )
                    .await?;
                self.event(
                    managed_id,
                    "sync_failed",
                    serde_json::json!({
                        "destination": destination_id, "version": version.version,
                        "error": message, "failures": failures, "retryable": retryable,
                        "retry_at": retry_at.unix_timestamp(),
                    }),
                )
                .await;
                Err(Error::Conflict(message))
            }
        }
    }
}
