//! ACME administration: external account binding keys and renewal windows (RFC 9773).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::error::Error;
use crate::services::pki::{Actor, Pki};
use crate::services::ports::{AcmeAdminStore, CaStore, CertificateStore};
use crate::store::{AcmeEabKey, AcmePruned, new_id};

/// A renewal window as recorded: one certificate's, or every certificate of a CA.
#[derive(Debug, Clone)]
pub struct RenewalWindow {
    /// Id.
    pub id: String,
    /// The CA whose certificates it moves.
    pub ca: Option<String>,
    /// The certificate it moves.
    pub certificate: Option<String>,
    /// Start.
    pub start: OffsetDateTime,
    /// End.
    pub end: OffsetDateTime,
}

/// ACME administration.
#[derive(Debug, Clone)]
pub struct AcmeService {
    pki: Arc<Pki>,
}

impl AcmeService {
    /// The service over the registration authority.
    pub fn new(pki: Arc<Pki>) -> AcmeService {
        AcmeService { pki }
    }

    /// The part of the store this service reads and writes directly.
    fn store(&self) -> &(impl AcmeAdminStore + use<>) {
        self.pki.store()
    }

    /// Delete ACME bookkeeping past `acme.retention` (the periodic `acme-prune` job):
    /// orders and authorizations that expired longer ago than that (an order whose
    /// certificate is still valid then is kept), their challenges, ended rate-limit windows
    /// and expired used-nonce records.
    pub async fn prune_expired(&self) -> Result<AcmePruned, Error> {
        let now = self.pki.now().unix_timestamp();
        let retention = self.pki.settings().acme.retention.as_secs() as i64;
        Ok(self.store().acme_prune(now - retention, now).await?)
    }

    /// Create an external account binding key for the ACME directory of `profile`.
    /// Returns the key and its MAC secret, which is never shown again.
    pub async fn create_eab_key(
        &self,
        profile: String,
        name: String,
        actor: &Actor,
    ) -> Result<(AcmeEabKey, [u8; 32]), Error> {
        if name.len() > 100 {
            return Err(Error::BadRequest(
                "name must be at most 100 characters".into(),
            ));
        }
        let pki = &self.pki;
        if !pki.settings().acme.serves(&profile) {
            return Err(Error::BadRequest(format!(
                "profile {profile:?} has no ACME directory (see acme.default_profile and acme.profiles)"
            )));
        }
        pki.profile(&profile).await?;
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|_| Error::Internal("random generator failed".into()))?;
        let key = AcmeEabKey {
            id: new_id(),
            profile,
            name,
            account_id: None,
            created_at: pki.now().unix_timestamp(),
            created_by: actor.name.clone(),
        };
        let sealed = pki
            .master()
            .seal(&secret, &crate::store::eab_seal_context(&key.id))?;
        let ev = actor
            .event("acme.eab_key.create", "acme_eab_key")
            .object(&key.id)
            .detail(serde_json::json!({"profile": key.profile, "name": key.name}));
        self.store().acme_eab_insert(&key, &sealed, &ev).await?;
        Ok((key, secret))
    }

    /// Every EAB key, without secrets.
    pub async fn eab_keys(&self) -> Result<Vec<AcmeEabKey>, Error> {
        Ok(self.store().acme_eab_list().await?)
    }

    /// Move the renewal window of one certificate, or of every certificate a CA issued
    /// (exactly one of `ca` and `certificate`), so that ACME clients renew early.
    pub async fn move_renewal_window(
        &self,
        ca: Option<&str>,
        certificate: Option<&str>,
        start: OffsetDateTime,
        end: OffsetDateTime,
        actor: &Actor,
    ) -> Result<RenewalWindow, Error> {
        if end <= start {
            return Err(Error::BadRequest("end must be after start".into()));
        }
        let store = self.store();
        let (ca, certificate) = match (ca, certificate) {
            (Some(ca), None) => (Some(store.get_ca(ca).await?.id), None),
            (None, Some(c)) => (None, Some(store.get_certificate(c).await?.id)),
            _ => {
                return Err(Error::BadRequest(
                    "give exactly one of \"ca\" and \"certificate\"".into(),
                ));
            }
        };
        let id = new_id();
        let ev = actor
            .event("acme.renewal_window.move", "acme_renewal_window")
            .object(&id)
            .detail(serde_json::json!({
                "ca": ca, "certificate": certificate,
                "start": start.unix_timestamp(), "end": end.unix_timestamp(),
            }));
        store
            .acme_renewal_override_insert(
                &id,
                ca.as_deref(),
                certificate.as_deref(),
                start.unix_timestamp(),
                end.unix_timestamp(),
                &ev,
                self.pki.now().unix_timestamp(),
            )
            .await?;
        Ok(RenewalWindow {
            id,
            ca,
            certificate,
            start,
            end,
        })
    }
}
