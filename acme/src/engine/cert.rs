//! Certificate download, revocation (RFC 8555 §7.6) and renewal information (RFC 9773).

use serde::Deserialize;
use serde_json::json;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use super::{AcmeError, Answer, Body, Call, Engine, rfc3339};
use crate::store::{AcmeStore, Issuer, IssuerError, StoredCertificate};
use crate::{KeyRef, Problem, ProblemType};

#[derive(Deserialize)]
struct RevokePayload {
    certificate: String,
    #[serde(default)]
    reason: Option<u8>,
}

/// How long a client should wait before asking for renewal information again (seconds).
const RENEWAL_INFO_RETRY_AFTER: u64 = 21600;

impl<S: AcmeStore, I: Issuer> Engine<S, I> {
    /// Download a certificate the account ordered (POST-as-GET): the leaf and the
    /// intermediates; the root is the trust anchor the client already has.
    pub async fn certificate(
        &self,
        call: &Call<'_>,
        id: &str,
        body: &[u8],
    ) -> Result<Answer, AcmeError> {
        let (jws, account) = self.verify_kid(call, body).await?;
        if !jws.is_post_as_get() {
            return Err(Problem::malformed("certificates are downloaded with POST-as-GET").into());
        }
        let (ca_id, der) = self
            .store
            .account_certificate(id, &account.id)
            .await?
            .ok_or_else(|| Problem::unauthorized("no such certificate for this account"))?;
        let chain = self.issuer.chain(&ca_id).await.map_err(AcmeError::Issuer)?;
        let mut ders: Vec<&[u8]> = vec![&der];
        ders.extend(
            chain
                .iter()
                .filter(|c| !certkeeper_ca::is_self_issued(c))
                .map(Vec::as_slice),
        );
        Ok(Answer {
            body: Body::PemChain(certkeeper_ca::pem_encode_certs(ders)),
            ..Answer::empty(200)
        })
    }

    /// revokeCert: by the account that ordered the certificate, by an account holding
    /// valid authorizations for all its names, or signed with the certificate's own key.
    pub async fn revoke(&self, call: &Call<'_>, body: &[u8]) -> Result<Answer, AcmeError> {
        let (jws, account) = self.verify(call, body).await?;
        let p: RevokePayload = jws.json()?;
        let der = crate::b64_decode(&p.certificate, "certificate")?;
        let info = certkeeper_ca::inspect_certificate(&der)
            .map_err(|e| Problem::malformed(format!("certificate: {e}")))?;
        let reason = p.reason.unwrap_or(0);
        if certkeeper_ca::reason_from_code(reason).is_none() || reason == 6 || reason == 8 {
            return Err(Problem::new(
                ProblemType::BadRevocationReason,
                format!("reason {reason} is not allowed: use 0-5, 9 or 10"),
            )
            .into());
        }
        let cert_id = self
            .store
            .certificate_id_by_fingerprint(&info.fingerprint_sha256)
            .await?
            .ok_or_else(|| Problem::unauthorized("this certificate was not issued here"))?;
        let actor = match (&jws.header.key, &account) {
            (KeyRef::Jwk(key), _) => {
                let (_, cert) = X509Certificate::from_der(&der)
                    .map_err(|e| Problem::malformed(format!("certificate: {e}")))?;
                if cert.public_key().subject_public_key.data.as_ref()
                    != key.subject_public_key().as_slice()
                {
                    return Err(
                        Problem::unauthorized("the JWS key is not the certificate's key").into(),
                    );
                }
                call.actor(None)
            }
            (KeyRef::Kid(_), Some(a)) => {
                let owner = self
                    .store
                    .order_by_certificate(&cert_id)
                    .await?
                    .is_some_and(|o| o.account_id == a.id);
                if !owner && !self.holds_authorizations(&a.id, &info).await? {
                    return Err(Problem::unauthorized(
                        "the account neither ordered this certificate nor holds valid authorizations for all its names",
                    )
                    .into());
                }
                call.actor(Some(&a.id))
            }
            (KeyRef::Kid(_), None) => return Err(super::internal("kid without account")),
        };
        let rec = self
            .store
            .certificate(&cert_id)
            .await?
            .ok_or_else(|| super::internal("certificate vanished"))?;
        let already = || {
            AcmeError::from(Problem::new(
                ProblemType::AlreadyRevoked,
                "the certificate is already revoked",
            ))
        };
        if rec.status == "revoked" {
            return Err(already());
        }
        match self.issuer.revoke(&cert_id, reason, &actor).await {
            Ok(()) => Ok(Answer::empty(200)),
            Err(IssuerError::Conflict(_)) => Err(already()),
            Err(IssuerError::Refused(d)) => {
                Err(Problem::new(ProblemType::BadRevocationReason, d).into())
            }
            Err(e) => Err(AcmeError::Issuer(e)),
        }
    }

    /// Whether the account holds valid authorizations for every name of a certificate.
    async fn holds_authorizations(
        &self,
        account_id: &str,
        info: &certkeeper_ca::CertInfo,
    ) -> Result<bool, AcmeError> {
        let now = self.now();
        let mut names: Vec<(&str, String)> =
            info.dns_names.iter().map(|n| ("dns", n.clone())).collect();
        names.extend(info.ip_addresses.iter().map(|i| ("ip", i.to_string())));
        if names.is_empty() {
            return Ok(false);
        }
        for (kind, value) in names {
            if self
                .store
                .reusable_authz(account_id, kind, &value, now)
                .await?
                .is_none()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The certificate an RFC 9773 CertID names: `base64url(AKI keyIdentifier)` `.`
    /// `base64url(serial)`.
    pub(super) async fn cert_by_ari_id(
        &self,
        cert_id: &str,
    ) -> Result<StoredCertificate, AcmeError> {
        let (aki, serial) = cert_id.split_once('.').ok_or_else(|| {
            Problem::malformed("a CertID is base64url(AKI) '.' base64url(serial)")
        })?;
        let aki = crate::b64_decode(aki, "CertID keyIdentifier")?;
        let serial = crate::b64_decode(serial, "CertID serial")?;
        for id in self
            .store
            .certificate_ids_by_serial(&hex::encode(&serial))
            .await?
        {
            let Some(rec) = self.store.certificate(&id).await? else {
                continue;
            };
            let Ok((_, cert)) = X509Certificate::from_der(&rec.der) else {
                continue;
            };
            let matches = cert
                .extensions()
                .iter()
                .any(|e| match e.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(a) => a
                        .key_identifier
                        .as_ref()
                        .is_some_and(|k| k.0 == aki.as_slice()),
                    _ => false,
                });
            if matches {
                return Ok(rec);
            }
        }
        Err(Problem::new(
            ProblemType::Malformed,
            "no certificate with this CertID was issued here",
        )
        .with_status(404)
        .into())
    }

    /// renewalInfo (RFC 9773): an administrator's window, else from two thirds to five
    /// sixths of the certificate's lifetime.
    pub async fn renewal_info(&self, cert_id: &str) -> Result<Answer, AcmeError> {
        let rec = self.cert_by_ari_id(cert_id).await?;
        let (start, end) = match self.store.renewal_override(&rec.id, &rec.ca_id).await? {
            Some(w) => w,
            None => {
                let life = rec.not_after - rec.not_before;
                (rec.not_before + life * 2 / 3, rec.not_before + life * 5 / 6)
            }
        };
        let body = json!({"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}});
        Ok(Answer::json(200, body).retry_after(RENEWAL_INFO_RETRY_AFTER))
    }
}
