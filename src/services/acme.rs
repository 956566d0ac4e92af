//! ACME administration: accounts and their orders (read only), external account binding
//! keys and renewal windows (RFC 9773).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::error::Error;
use crate::services::pki::{Actor, Pki};
use crate::services::ports::{AcmeAdminStore, CaStore, CertificateStore};
use crate::store::{AcmeAccount, AcmeAccountSummary, AcmeEabKey, AcmeOrder, AcmePruned, new_id};

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

    /// A page of ACME accounts, newest first, each with its order count: up to `limit`
    /// (1 to 1000) after the keyset position `after` (the previous page's last
    /// `(created_at, id)`).
    pub async fn accounts(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<AcmeAccountSummary>, Error> {
        check_limit(limit)?;
        Ok(self.store().acme_account_page(after, limit).await?)
    }

    /// An ACME account and a page of its orders, newest first: up to `limit` (1 to 1000)
    /// after the keyset position `after`.
    pub async fn account_orders(
        &self,
        id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<(AcmeAccount, Vec<AcmeOrder>), Error> {
        check_limit(limit)?;
        let account = self
            .store()
            .acme_account(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no ACME account {id:?}")))?;
        let orders = self.store().acme_account_orders(id, after, limit).await?;
        Ok((account, orders))
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

/// A page size must be 1 to 1000.
fn check_limit(limit: i64) -> Result<(), Error> {
    if (1..=1000).contains(&limit) {
        Ok(())
    } else {
        Err(Error::BadRequest("limit must be between 1 and 1000".into()))
    }
}
