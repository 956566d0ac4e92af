//! Certificates: issue from a CSR or with a server-made key (through the one door,
//! [`Pki::issue`]), search, read, revoke.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use certkeeper_ca::{IssuanceRequest, KeyAlgorithm, KeyPair, PublicKeyData};
use time::{Duration, OffsetDateTime};

use crate::error::Error;
use crate::services::issuers::IssuerService;
use crate::services::pki::{Actor, Issued, Pki};
use crate::services::ports::{CaStore, CertificateStore};
use crate::store::{
    CertCounts, CertFilter, CertRecord, CertStatusFilter, ProfileRecord, StoreError,
};

/// The RFC 5280 reasons a revocation may give: the RFC's name, the same in snake_case, and
/// the code (7, unassigned, and 8, removeFromCRL, are not reasons to revoke).
pub const REASONS: [(&str, &str, u8); 8] = [
    ("unspecified", "unspecified", 0),
    ("keyCompromise", "key_compromise", 1),
    ("cACompromise", "ca_compromise", 2),
    ("affiliationChanged", "affiliation_changed", 3),
    ("superseded", "superseded", 4),
    ("cessationOfOperation", "cessation_of_operation", 5),
    ("privilegeWithdrawn", "privilege_withdrawn", 9),
    ("aACompromise", "aa_compromise", 10),
];

/// The keyset cursor that continues a newest-first search after `c` (opaque to callers).
pub fn encode_cursor(c: &CertRecord) -> String {
    encode_cursor_in(c, false)
}

/// The keyset cursor that continues a search after `c`, newest first or (with
/// `by_expiry`) soonest end first.
pub fn encode_cursor_in(c: &CertRecord, by_expiry: bool) -> String {
    let key = if by_expiry { c.not_after } else { c.created_at };
    encode_keyset(key.unix_timestamp(), &c.id)
}

/// An opaque keyset cursor for the position `(at, id)` of any list sorted by a time and
/// an id; [`decode_cursor`] reads it back.
pub fn encode_keyset(at: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at}.{id}"))
}

/// The (sort key, id) a cursor from [`encode_cursor_in`] or [`encode_keyset`] holds.
pub fn decode_cursor(s: &str) -> Result<(i64, String), Error> {
    let bad = || Error::BadRequest("malformed cursor".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

/// How long a new certificate should be valid: a number of days or an end, not both;
/// the profile's default when neither.
#[derive(Debug, Clone, Copy, Default)]
pub struct Validity {
    /// Days from now (at least 1).
    pub days: Option<u32>,
    /// The end of validity.
    pub not_after: Option<OffsetDateTime>,
}

impl Validity {
    fn apply(self, req: &mut IssuanceRequest) -> Result<(), Error> {
        match (self.days, self.not_after) {
            (Some(_), Some(_)) => Err(Error::BadRequest(
                "give validity_days or not_after, not both".into(),
            )),
            (Some(0), _) => Err(Error::BadRequest("validity_days must be at least 1".into())),
            (Some(d), None) => {
                req.validity = Some(Duration::days(d.into()));
                Ok(())
            }
            (None, na) => {
                req.not_after = na;
                Ok(())
            }
        }
    }
}

/// A certificate to issue with a key made on the server.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The profile.
    pub profile: String,
    /// DNS names.
    pub dns_names: Vec<String>,
    /// IP addresses.
    pub ip_addresses: Vec<IpAddr>,
    /// Subject common name.
    pub common_name: Option<String>,
    /// Key type; ECDSA P-256 when absent.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// Validity.
    pub validity: Validity,
    /// Keep the key (sealed) with the certificate.
    pub managed: bool,
}

/// A certificate issued with a server-made key: the key goes back to the caller once.
#[derive(Debug)]
pub struct IssuedWithKey {
    /// The certificate.
    pub issued: Issued,
    /// The profile's name.
    pub profile: String,
    /// The key.
    pub key: KeyPair,
}

/// Search of the certificate inventory. `limit` is 1 to 1000 (50 when absent).
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Issuing CA (id or name).
    pub ca: Option<String>,
    /// Profile name.
    pub profile: Option<String>,
    /// `valid`, `expired` or `revoked`.
    pub status: Option<String>,
    /// A DNS name or IP address (`*.example.com` for names below).
    pub san: Option<String>,
    /// Serial, hex, with or without colons.
    pub serial: Option<String>,
    /// SHA-256 fingerprint, hex, with or without colons.
    pub fingerprint: Option<String>,
    /// A tag the certificate carries (exact, as set on it).
    pub tag: Option<String>,
    /// Only certificates ending before this.
    pub expiring_before: Option<OffsetDateTime>,
    /// Page size.
    pub limit: Option<i64>,
    /// Keyset cursor from [`encode_cursor`] of the previous page's last row (in the same
    /// order).
    pub after: Option<(i64, String)>,
    /// Soonest end first instead of newest first.
    pub by_expiry: bool,
}

/// A page of certificates, newest first, and whether more follow.
#[derive(Debug, Clone)]
pub struct CertPage {
    /// The certificates.
    pub items: Vec<CertRecord>,
    /// Whether another page follows (its cursor is the last item's).
    pub more: bool,
    /// The time the page was read at (to tell expired certificates).
    pub now: OffsetDateTime,
}

/// A certificate with the time it was read at.
#[derive(Debug, Clone)]
pub struct CertAt {
    /// The certificate.
    pub cert: CertRecord,
    /// When it was read (to tell an expired certificate).
    pub now: OffsetDateTime,
}

/// Certificates.
#[derive(Debug, Clone)]
pub struct CertificateService {
    pki: Arc<Pki>,
    issuers: IssuerService,
}

impl CertificateService {
    /// The service over the registration authority.
    pub fn new(pki: Arc<Pki>) -> CertificateService {
        CertificateService {
            issuers: IssuerService::new(pki.clone()),
            pki,
        }
    }

    /// The part of the store this service reads and writes directly.
    fn store(&self) -> &(impl CertificateStore + use<>) {
        self.pki.store()
    }

    /// The profile named in an issuance request; an unknown name is the caller's mistake.
    async fn issuing_profile(&self, name: &str) -> Result<ProfileRecord, Error> {
        self.pki.profile(name).await.map_err(|e| match e {
            StoreError::NotFound(_) => Error::BadRequest(format!("no profile {name:?}")),
            other => other.into(),
        })
    }

    /// Issue for a PKCS#10 request (PEM or DER) under `profile`. Returns the certificate
    /// and the profile's name.
    pub async fn issue_from_csr(
        &self,
        profile: &str,
        csr: &[u8],
        validity: Validity,
        actor: &Actor,
    ) -> Result<(Issued, String), Error> {
        let profile = self.issuing_profile(profile).await?;
        let parsed = certkeeper_ca::parse_csr(csr)?;
        let mut req = IssuanceRequest::from_csr(&parsed);
        validity.apply(&mut req)?;
        let issued = self
            .issuers
            .issue_for_csr(&profile, req, csr, actor)
            .await?;
        Ok((issued, profile.policy.name))
    }

    /// Issue with a key made here (see [`Pki::generate_key`]).
    pub async fn issue_with_key(
        &self,
        r: GenerateRequest,
        actor: &Actor,
    ) -> Result<IssuedWithKey, Error> {
        let profile = self.issuing_profile(&r.profile).await?;
        let alg = r.key_algorithm.unwrap_or(KeyAlgorithm::EcdsaP256);
        let key = self.pki.generate_key(&profile, alg).await?;
        let mut req = IssuanceRequest::for_key(&key.subject_public_key_info());
        req.dns_names = r.dns_names;
        req.ip_addresses = r.ip_addresses;
        if let Some(cn) = r.common_name {
            req.subject.push(("CN".into(), cn));
        }
        r.validity.apply(&mut req)?;
        let issued = self
            .issuers
            .issue_with_key(&profile, req, &key, r.managed, None, actor)
            .await?;
        Ok(IssuedWithKey {
            issued,
            profile: profile.policy.name,
            key,
        })
    }

    /// Search the inventory.
    pub async fn search(&self, q: Search) -> Result<CertPage, Error> {
        let limit = q.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
        }
        let ca_id = match q.ca {
            Some(ca) => Some(
                self.store()
                    .get_ca(&ca)
                    .await
                    .map(|c| c.id)
                    .map_err(|_| Error::BadRequest(format!("no CA {ca:?}")))?,
            ),
            None => None,
        };
        let status = match q.status.as_deref() {
            None => None,
            Some("valid") => Some(CertStatusFilter::Valid),
            Some("expired") => Some(CertStatusFilter::Expired),
            Some("revoked") => Some(CertStatusFilter::Revoked),
            Some(other) => {
                return Err(Error::BadRequest(format!(
                    "status {other:?} is not one of valid, expired, revoked"
                )));
            }
        };
        let filter = CertFilter {
            ca_id,
            profile: q.profile,
            status,
            san: q.san,
            serial: q.serial.map(|s| s.replace(':', "").to_ascii_lowercase()),
            fingerprint: q
                .fingerprint
                .map(|s| s.trim().replace(':', "").to_ascii_lowercase()),
            tag: q.tag.map(|t| t.trim().to_string()),
            expiring_before: q.expiring_before,
            after: q.after,
            by_expiry: q.by_expiry,
            limit: limit + 1,
        };
        let now = self.pki.now();
        let mut items = self.store().search_certificates(&filter, now).await?;
        let more = items.len() as i64 > limit;
        if more {
            items.truncate(limit as usize);
        }
        Ok(CertPage { items, more, now })
    }

    /// How many certificates are in each state now.
    pub async fn counts(&self) -> Result<CertCounts, Error> {
        Ok(self.store().certificate_counts(self.pki.now()).await?)
    }

    /// How many certificates each CA has issued, by CA id.
    pub async fn issued_counts(&self) -> Result<Vec<(String, i64)>, Error> {
        Ok(self.store().issued_counts().await?)
    }

    /// A certificate by id.
    pub async fn get(&self, id: &str) -> Result<CertAt, Error> {
        let cert = self.store().get_certificate(id).await?;
        Ok(CertAt {
            cert,
            now: self.pki.now(),
        })
    }

    /// A certificate and its issuer chain (nearest first, up to the root).
    pub async fn with_chain(&self, id: &str) -> Result<(CertRecord, Vec<Vec<u8>>), Error> {
        let cert = self.store().get_certificate(id).await?;
        let ca = self.store().get_ca(&cert.ca_id).await?;
        let chain = self.pki.chain_of(&ca).await?;
        Ok((cert, chain))
    }

    /// Revoke a certificate with an RFC 5280 reason code (upstream first when an external
    /// issuer signed it). `permit` decides, from the certificate's profile, whether the
    /// caller may.
    pub async fn revoke(
        &self,
        id: &str,
        reason: u8,
        permit: impl FnOnce(&str) -> Result<(), Error>,
        actor: &Actor,
    ) -> Result<CertAt, Error> {
        let cert = self.store().get_certificate(id).await?;
        permit(cert.profile_name.as_deref().unwrap_or(""))?;
        let cert = self.issuers.revoke(id, reason, actor).await?;
        Ok(CertAt {
            cert,
            now: self.pki.now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_is_days_or_an_end() {
        let mut req = IssuanceRequest::default();
        let end = OffsetDateTime::UNIX_EPOCH + Duration::days(40);
        assert!(
            Validity {
                days: Some(1),
                not_after: Some(end)
            }
            .apply(&mut req)
            .is_err()
        );
        assert!(
            Validity {
                days: Some(0),
                not_after: None
            }
            .apply(&mut req)
            .is_err()
        );
        Validity {
            days: Some(7),
            not_after: None,
        }
        .apply(&mut req)
        .unwrap();
        assert_eq!(req.validity, Some(Duration::days(7)));
        Validity {
            days: None,
            not_after: Some(end),
        }
        .apply(&mut req)
        .unwrap();
        assert_eq!(req.not_after, Some(end));
    }
}
