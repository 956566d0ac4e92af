//! CA rollover: a successor with a new key issues in a CA's place from a chosen time, while
//! the old CA keeps signing its CRL and OCSP answers; a root's successor is cross-signed
//! both ways so that clients trusting either root keep working.

use certkeeper_ca::{KeyAlgorithm, SigningCa, SuccessorOptions};
use time::OffsetDateTime;

use super::{Actor, Pki, SERVER_CA, key_context};
use crate::error::Error;
use crate::store::{CaRecord, CrossCertRecord, NewCaRecord, Successor, new_id};

/// How many successors issuance follows at most: a longer chain of rollovers all in the
/// past is a mistake (or a cycle), refused rather than followed.
const MAX_SUCCESSORS: usize = 8;

/// A rollover request.
#[derive(Debug, Clone, Default)]
pub struct Rollover {
    /// Name of the successor CA made for the rollover (absent with `successor`).
    pub name: Option<String>,
    /// Roll over onto this existing active CA (id or name) instead of making one; for CAs
    /// signed outside certkeeper, whose successor is created and installed first.
    pub successor: Option<String>,
    /// The successor's common name; the current one's next generation (`X G2`) when absent.
    pub common_name: Option<String>,
    /// The successor's key type; the current one's when absent.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// The successor's lifetime in days; the current one's when absent.
    pub validity_days: Option<u32>,
    /// When the successor starts issuing; now when absent.
    pub from: Option<OffsetDateTime>,
    /// For an intermediate: the CA that signs the successor (id or name); by default the
    /// CA that issues in its parent's place at the time of the request (the parent's own
    /// successor once the parent has rolled over, so a root rollover carries on down).
    pub parent: Option<String>,
}

/// What a rollover made.
#[derive(Debug, Clone)]
pub struct RolledOver {
    /// The successor.
    pub successor: CaRecord,
    /// Cross certificates made with it (a root's: new by old, then old by new).
    pub cross: Vec<CrossCertRecord>,
}

fn cross_record(
    subject: &CaRecord,
    issuer: &CaRecord,
    cert: certkeeper_ca::IssuedCertificate,
) -> CrossCertRecord {
    CrossCertRecord {
        id: new_id(),
        subject_ca_id: subject.id.clone(),
        issuer_ca_id: issuer.id.clone(),
        serial: cert.info.serial.clone(),
        fingerprint: cert.info.fingerprint_sha256.clone(),
        not_before: cert.info.not_before,
        not_after: cert.info.not_after,
        cert_der: cert.der,
    }
}

impl Pki {
    /// The CA that issues for a profile naming `ca_id` now: the CA itself, or the successor
    /// its rollover has handed over to (followed down the line of rollovers).
    pub async fn issuing_ca(&self, ca_id: &str) -> Result<CaRecord, Error> {
        let now = self.now();
        let mut ca = self.ca(ca_id).await?;
        for _ in 0..MAX_SUCCESSORS {
            match ca.successor_at(now) {
                Some(next) => ca = self.ca(next).await?,
                None => return Ok(ca),
            }
        }
        Err(Error::Internal(format!(
            "CA {ca_id:?} has more than {MAX_SUCCESSORS} rollovers in effect; check its successors"
        )))
    }

    /// Roll a CA over (see [`Rollover`]).
    pub async fn roll_over(
        &self,
        ca_ref: &str,
        req: Rollover,
        actor: &Actor,
    ) -> Result<RolledOver, Error> {
        let now = self.now();
        let old = self.store.get_ca(ca_ref).await?;
        if old.name == SERVER_CA {
            return Err(Error::BadRequest(format!(
                "{SERVER_CA} signs only the server's own certificate and is not rolled over"
            )));
        }
        if old.status != "active" {
            return Err(Error::Conflict(format!(
                "CA {:?} is {}; only an active CA can be rolled over",
                old.name, old.status
            )));
        }
        if let Some(s) = &old.successor_id {
            return Err(Error::Conflict(format!(
                "CA {:?} already has a successor ({s})",
                old.name
            )));
        }
        let from = req.from.unwrap_or(now);
        let old_signer = self.signer(&old)?;
        let audit = |successor: &CaRecord, made: &str| {
            actor
                .event("ca.rollover", "ca")
                .object(&old.id)
                .detail(serde_json::json!({
                    "successor": successor.id, "successor_name": successor.name,
                    "from": from.unix_timestamp(), "made": made,
                }))
        };

        if let Some(existing) = &req.successor {
            if req.name.is_some() || req.common_name.is_some() || req.key_algorithm.is_some() {
                return Err(Error::BadRequest(
                    "\"successor\" names an existing CA: leave out name, common_name and key_algorithm"
                        .into(),
                ));
            }
            let next = self.store.get_ca(existing).await?;
            if next.id == old.id || next.status != "active" || next.name == SERVER_CA {
                return Err(Error::BadRequest(format!(
                    "the successor must be another active CA; {:?} is not",
                    next.name
                )));
            }
            self.refuse_cycle(&old, &next).await?;
            let ev = audit(&next, "linked");
            self.store
                .roll_over_ca(&old.id, Successor::Existing(&next.id), from, &[], &ev, now)
                .await?;
            self.forget_ca(&old.id);
            return Ok(RolledOver {
                successor: self.store.get_ca(&next.id).await?,
                cross: vec![],
            });
        }

        let name = req.name.clone().ok_or_else(|| {
            Error::BadRequest("a rollover needs \"name\" for the successor CA".into())
        })?;
        Self::validate_ca_name(&name)?;
        let spec = certkeeper_ca::successor_spec(
            &old_signer,
            &SuccessorOptions {
                common_name: req.common_name.clone(),
                key_algorithm: req.key_algorithm,
                validity_days: req.validity_days,
            },
        )?;
        if format!("CN={}", spec.common_name) == old.subject
            || old_signer.info().common_name.as_deref() == Some(spec.common_name.as_str())
        {
            return Err(Error::BadRequest(
                "the successor needs a common name of its own; chains are built by name".into(),
            ));
        }
        let id = new_id();
        let self_signed = old_signer.info().self_signed;
        let (new, parent_id, kind) = match (&old.parent_id, self_signed) {
            (_, true) => {
                if req.parent.is_some() {
                    return Err(Error::BadRequest(
                        "\"parent\" is only for intermediates; a root's successor is a root".into(),
                    ));
                }
                (certkeeper_ca::create_root(&spec, now)?, None, "root")
            }
            (Some(parent_id), false) => {
                let parent = match &req.parent {
                    Some(p) => self.store.get_ca(p).await?,
                    None => self.issuing_ca(parent_id).await?,
                };
                if parent.name == SERVER_CA {
                    return Err(Error::BadRequest(format!(
                        "{SERVER_CA} signs only the server's own certificate; choose another parent"
                    )));
                }
                let signer = self.signer(&parent)?;
                let new = certkeeper_ca::create_intermediate(
                    &spec,
                    &signer,
                    &self.links_for(&parent.id),
                    now,
                )?;
                (new, Some(parent.id), "intermediate")
            }
            (None, false) => {
                return Err(Error::BadRequest(format!(
                    "CA {:?} is signed outside certkeeper: create its successor as an external CA, \
                     install its certificate, then roll over with \"successor\"",
                    old.name
                )));
            }
        };
        let new_signer = SigningCa::load(new.cert_der.clone(), &new.key_pkcs8)?;
        let record = NewCaRecord {
            id: id.clone(),
            name: name.clone(),
            parent_id,
            kind,
            status: "active",
            subject: new.info.subject.clone(),
            key_algorithm: new.info.key_algorithm.clone().unwrap_or_default(),
            cert_der: Some(new.cert_der.clone()),
            chain_pem: None,
            csr_der: None,
            key_sealed: self.master.seal(&new.key_pkcs8, &key_context("ca", &id))?,
            // A successor's key is sealed, even for a CA whose key is in a PKCS#11 token.
            key_ref: None,
            info: Some(new.info.clone()),
        };
        // The record of the successor as it will read once stored, for the cross records.
        let successor_stub = CaRecord {
            id: id.clone(),
            ..old.clone()
        };
        let cross = if self_signed {
            vec![
                cross_record(
                    &successor_stub,
                    &old,
                    certkeeper_ca::cross_sign(
                        &new_signer,
                        &old_signer,
                        &self.links_for(&old.id),
                        now,
                    )?,
                ),
                cross_record(
                    &old,
                    &successor_stub,
                    certkeeper_ca::cross_sign(&old_signer, &new_signer, &self.links_for(&id), now)?,
                ),
            ]
        } else {
            vec![]
        };
        let ev = actor
            .event("ca.rollover", "ca")
            .object(&old.id)
            .detail(serde_json::json!({
                "successor": id, "successor_name": name, "from": from.unix_timestamp(),
                "made": kind, "subject": new.info.subject,
                "cross_certificates": cross.iter().map(|c| &c.serial).collect::<Vec<_>>(),
            }));
        self.store
            .roll_over_ca(&old.id, Successor::New(&record), from, &cross, &ev, now)
            .await?;
        self.forget_ca(&old.id);
        Ok(RolledOver {
            successor: self.store.get_ca(&id).await?,
            cross,
        })
    }

    /// Refuse linking `next` as the successor of `old` when `next` already hands over,
    /// directly or down the line, to `old`.
    async fn refuse_cycle(&self, old: &CaRecord, next: &CaRecord) -> Result<(), Error> {
        let mut at = next.clone();
        for _ in 0..MAX_SUCCESSORS {
            match &at.successor_id {
                Some(s) if *s == old.id => {
                    return Err(Error::BadRequest(format!(
                        "{:?} already hands over to {:?}; a rollover cannot go in a circle",
                        next.name, old.name
                    )));
                }
                Some(s) => at = self.store.get_ca(s).await?,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Drop this process's cached copies of a CA after a change to its row.
    fn forget_ca(&self, id: &str) {
        self.active_cas.remove(&id.to_string());
        self.chains.clear();
    }

    /// The cross certificates a CA is the subject or the issuer of.
    pub async fn cross_certificates(&self, ca_id: &str) -> Result<Vec<CrossCertRecord>, Error> {
        Ok(self.store.cross_certificates(ca_id).await?)
    }

    /// The certificate to put at the top of a chain in place of the self-signed `root`:
    /// the root's cross certificate by its predecessor while that is still valid, so that
    /// clients trusting only the old root verify what the new one issues, and clients
    /// trusting the new root find it by name and key.
    pub(super) async fn chain_top(
        &self,
        root: &CaRecord,
        now: OffsetDateTime,
    ) -> Result<Option<Vec<u8>>, Error> {
        if root.parent_id.is_some() {
            return Ok(None);
        }
        let mut best: Option<CrossCertRecord> = None;
        for c in self.store.cross_certificates(&root.id).await? {
            if c.subject_ca_id != root.id || now < c.not_before || c.not_after <= now {
                continue;
            }
            // Only a predecessor's signature: the reverse one (the old root by the new)
            // is for operators who serve the old hierarchy to clients of the new root.
            let issuer = self.store.get_ca(&c.issuer_ca_id).await?;
            if issuer.successor_id.as_deref() == Some(root.id.as_str())
                && best.as_ref().is_none_or(|b| b.not_after < c.not_after)
            {
                best = Some(c);
            }
        }
        Ok(best.map(|c| c.cert_der))
    }
}
