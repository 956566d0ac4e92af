//! Certificate authorities: create (root, intermediate, external), import, install an
//! externally signed certificate, read, and serve their certificates and CRLs.

use std::sync::Arc;

use certkeeper_ca::{CaSpec, KeyAlgorithm, Links, NameConstraintSpec};

use crate::error::Error;
use crate::services::pki::{Actor, KeyStorage, Pki, Rollover};
use crate::services::ports::CaStore;
use crate::store::{CaRecord, CrossCertRecord};

/// Kinds of CA that can be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaKind {
    /// Self-signed.
    Root,
    /// Signed by one of ours.
    Intermediate,
    /// Signed elsewhere: created pending, with a CSR.
    External,
}

/// What a new CA is created with.
#[derive(Debug, Clone)]
pub struct NewCa {
    /// Unique name.
    pub name: String,
    /// Root, intermediate or external.
    pub kind: CaKind,
    /// The parent (id or name), for intermediates only.
    pub parent: Option<String>,
    /// Subject common name.
    pub common_name: String,
    /// Subject organisation.
    pub organization: Option<String>,
    /// Subject country.
    pub country: Option<String>,
    /// Key type; the configured default when absent.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// Lifetime in days; ten years when absent.
    pub validity_days: Option<u32>,
    /// pathLenConstraint.
    pub path_len: Option<u8>,
    /// Name constraints.
    pub name_constraints: Option<NameConstraintSpec>,
    /// Where the key is kept: sealed in the database, or generated in the PKCS#11 token
    /// (roots and intermediates).
    pub key_storage: KeyStorage,
}

/// A CA with its issuer chain (nearest first, itself included), when it has a certificate.
#[derive(Debug, Clone)]
pub struct CaDetails {
    /// The CA.
    pub ca: CaRecord,
    /// Its chain, when it has a certificate.
    pub chain: Option<Vec<Vec<u8>>>,
}

/// A CA's current CRL, without its contents.
#[derive(Debug, Clone, Copy)]
pub struct CrlSummary {
    /// CRL number.
    pub number: i64,
    /// When it was signed.
    pub this_update: time::OffsetDateTime,
    /// When the next one is due.
    pub next_update: time::OffsetDateTime,
}

/// Certificate authorities.
#[derive(Debug, Clone)]
pub struct CaService {
    pki: Arc<Pki>,
}

impl CaService {
    /// The service over the registration authority.
    pub fn new(pki: Arc<Pki>) -> CaService {
        CaService { pki }
    }

    /// The part of the store this service reads and writes directly.
    fn store(&self) -> &(impl CaStore + use<>) {
        self.pki.store()
    }

    /// The public URLs of a CA (certificate, CRL, OCSP).
    pub fn links(&self, ca_id: &str) -> Links {
        self.pki.links_for(ca_id)
    }

    /// Whether new CAs may keep their keys in a PKCS#11 token (`[hsm]` is configured).
    pub fn token_storage(&self) -> bool {
        self.pki.has_token()
    }

    /// Every CA.
    pub async fn list(&self) -> Result<Vec<CaRecord>, Error> {
        Ok(self.store().list_cas().await?)
    }

    async fn details(&self, ca: CaRecord) -> Result<CaDetails, Error> {
        let chain = match ca.cert_der {
            Some(_) => Some(self.pki.chain_of(&ca).await?),
            None => None,
        };
        Ok(CaDetails { ca, chain })
    }

    /// A CA by id or name, with its chain.
    pub async fn get(&self, id: &str) -> Result<CaDetails, Error> {
        let ca = self.store().get_ca(id).await?;
        self.details(ca).await
    }

    /// Create a root, intermediate or pending external CA.
    pub async fn create(&self, new: NewCa, actor: &Actor) -> Result<CaDetails, Error> {
        let mut spec = CaSpec::new(
            &new.common_name,
            new.key_algorithm
                .unwrap_or(self.pki.settings().ca.key_algorithm),
        );
        spec.organization = new.organization;
        spec.country = new.country;
        if let Some(d) = new.validity_days {
            spec.validity_days = d;
        }
        spec.path_len = new.path_len;
        spec.name_constraints = new.name_constraints;
        if new.common_name.trim().is_empty() {
            return Err(Error::BadRequest("common_name must not be empty".into()));
        }
        let storage = new.key_storage;
        let ca = match (new.kind, new.parent) {
            (CaKind::Root, None) => {
                self.pki
                    .create_root(&new.name, &spec, storage, actor)
                    .await?
            }
            (CaKind::Intermediate, Some(parent)) => {
                self.pki
                    .create_intermediate(&new.name, &parent, &spec, storage, actor)
                    .await?
            }
            (CaKind::Intermediate, None) => {
                return Err(Error::BadRequest(
                    "an intermediate CA needs \"parent\" (a CA id or name)".into(),
                ));
            }
            (CaKind::External, None) if storage == KeyStorage::Pkcs11 => {
                return Err(Error::BadRequest(
                    "key_storage \"pkcs11\" is for root and intermediate CAs".into(),
                ));
            }
            (CaKind::External, None) => self.pki.create_external(&new.name, &spec, actor).await?,
            (_, Some(_)) => {
                return Err(Error::BadRequest(
                    "\"parent\" is only for type \"intermediate\"".into(),
                ));
            }
        };
        self.details(ca).await
    }

    /// Import a CA certificate and its key (PEM or DER).
    pub async fn import(
        &self,
        name: &str,
        cert: &[u8],
        key: &[u8],
        actor: &Actor,
    ) -> Result<CaDetails, Error> {
        let ca = self.pki.import_ca(name, cert, key, actor).await?;
        self.details(ca).await
    }

    /// The CSR of a pending external CA (DER).
    pub async fn csr(&self, id: &str) -> Result<Vec<u8>, Error> {
        let ca = self.store().get_ca(id).await?;
        ca.csr_der.ok_or_else(|| {
            Error::Conflict(format!("CA {:?} is not pending; it has no CSR", ca.name))
        })
    }

    /// Install the externally signed certificate of a pending CA.
    pub async fn install(&self, id: &str, cert: &[u8], actor: &Actor) -> Result<CaDetails, Error> {
        let ca = self.pki.install_ca_certificate(id, cert, actor).await?;
        self.details(ca).await
    }

    /// The certificate of a CA (DER), for AIA.
    pub async fn certificate(&self, id: &str) -> Result<Vec<u8>, Error> {
        let ca = self.store().get_ca(id).await?;
        ca.cert_der
            .ok_or_else(|| Error::NotFound(format!("CA {id:?} has no certificate yet")))
    }

    /// The current CRL of a CA (DER), regenerated when due.
    pub async fn crl(&self, id: &str) -> Result<Vec<u8>, Error> {
        let ca = self.store().get_ca(id).await?;
        self.pki.crl(&ca.id).await
    }

    /// The current CRL of each CA that has one, by CA id.
    pub async fn crls(&self) -> Result<std::collections::HashMap<String, CrlSummary>, Error> {
        Ok(self
            .store()
            .crl_summaries()
            .await?
            .into_iter()
            .map(|(ca, number, this_update, next_update)| {
                let at = |t: i64| {
                    time::OffsetDateTime::from_unix_timestamp(t)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                };
                (
                    ca,
                    CrlSummary {
                        number,
                        this_update: at(this_update),
                        next_update: at(next_update),
                    },
                )
            })
            .collect())
    }

    /// Roll a CA over onto a successor (made now, or an existing CA), which issues in its
    /// place from the chosen time; a root's successor comes with cross certificates both
    /// ways. Returns the successor with its chain and the cross certificates made.
    pub async fn roll_over(
        &self,
        id: &str,
        req: Rollover,
        actor: &Actor,
    ) -> Result<(CaDetails, Vec<CrossCertRecord>), Error> {
        let done = self.pki.roll_over(id, req, actor).await?;
        Ok((self.details(done.successor).await?, done.cross))
    }

    /// The cross certificates a CA (id or name) is the subject or the issuer of.
    pub async fn cross_certificates(&self, id: &str) -> Result<Vec<CrossCertRecord>, Error> {
        let ca = self.store().get_ca(id).await?;
        self.pki.cross_certificates(&ca.id).await
    }

    /// Answer a DER OCSP request (RFC 6960) with a DER response; never fails.
    pub async fn ocsp(&self, request: &[u8]) -> Vec<u8> {
        self.pki.ocsp(request).await
    }
}
