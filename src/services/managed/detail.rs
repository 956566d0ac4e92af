//! Reading managed certificates and destinations: records, and a certificate with its
//! versions, bindings (sync status) and recent events.

use super::Managed;
use crate::error::Error;
use crate::store::{
    BindingRecord, CertRecord, DestinationRecord, FailedPush, ManagedEvent, ManagedRecord,
    VersionRecord,
};

/// How many recent lifecycle events a detailed view carries.
const RECENT_EVENTS: i64 = 50;

/// A version and the certificate it is.
#[derive(Debug, Clone)]
pub struct VersionDetail {
    /// The version.
    pub version: VersionRecord,
    /// Its certificate.
    pub certificate: CertRecord,
    /// The certificate's status, `expired` for a valid one past its end.
    pub status: String,
}

/// A binding and its destination (absent if it was removed meanwhile).
#[derive(Debug, Clone)]
pub struct BindingDetail {
    /// The binding and its sync state.
    pub binding: BindingRecord,
    /// The destination.
    pub destination: Option<DestinationRecord>,
}

/// A managed certificate with its versions, bindings and recent events.
#[derive(Debug, Clone)]
pub struct ManagedDetail {
    /// The certificate.
    pub record: ManagedRecord,
    /// Every version, newest first.
    pub versions: Vec<VersionDetail>,
    /// Every binding.
    pub bindings: Vec<BindingDetail>,
    /// The newest lifecycle events, newest first.
    pub events: Vec<ManagedEvent>,
}

impl Managed {
    /// One managed certificate, by id or name.
    pub async fn get(&self, id: &str) -> Result<ManagedRecord, Error> {
        Ok(self.pki.store().get_managed(id).await?)
    }

    /// Every managed certificate.
    pub async fn list(&self) -> Result<Vec<ManagedRecord>, Error> {
        Ok(self.pki.store().list_managed().await?)
    }

    /// Up to `limit` managed certificates whose last renewal failed, most failures first.
    pub async fn failed_renewals(&self, limit: i64) -> Result<Vec<ManagedRecord>, Error> {
        Ok(self.pki.store().failed_renewals(limit).await?)
    }

    /// Up to `limit` pushes to destinations whose last attempt failed, most recent first.
    pub async fn failed_pushes(&self, limit: i64) -> Result<Vec<FailedPush>, Error> {
        Ok(self.pki.store().failed_pushes(limit).await?)
    }

    /// `m` with its versions, bindings and recent events.
    pub async fn detail(&self, m: ManagedRecord) -> Result<ManagedDetail, Error> {
        let store = self.pki.store();
        let now = self.pki.now();
        let mut versions = Vec::new();
        for v in store.managed_versions(&m.id).await? {
            let c = store.get_certificate(&v.certificate_id).await?;
            let status = if c.status == "valid" && c.not_after < now {
                "expired".to_string()
            } else {
                c.status.clone()
            };
            versions.push(VersionDetail {
                version: v,
                certificate: c,
                status,
            });
        }
        let destinations = store.list_destinations().await?;
        let bindings = store
            .bindings_of(&m.id)
            .await?
            .into_iter()
            .map(|b| BindingDetail {
                destination: destinations
                    .iter()
                    .find(|d| d.id == b.destination_id)
                    .cloned(),
                binding: b,
            })
            .collect();
        let events = store.managed_events(&m.id, RECENT_EVENTS).await?;
        Ok(ManagedDetail {
            record: m,
            versions,
            bindings,
            events,
        })
    }

    /// Every destination.
    pub async fn list_destinations(&self) -> Result<Vec<DestinationRecord>, Error> {
        Ok(self.pki.store().list_destinations().await?)
    }

    /// One destination, by id or name.
    pub async fn get_destination(&self, id: &str) -> Result<DestinationRecord, Error> {
        Ok(self.pki.store().get_destination(id).await?)
    }
}
