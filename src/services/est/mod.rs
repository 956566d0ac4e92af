//! EST (RFC 7030) rules: labels (which profile a `/.well-known/est/<label>/` path uses),
//! HTTP Basic credentials (password shown once, stored hashed), who may enroll and renew,
//! the checks on each request, server-side keys, and the audit of refusals. The HTTP
//! parsing, the TLS peer and the wire encoding stay in [`crate::est`].

mod credentials;
mod throttle;
mod trust;

use std::sync::Arc;

use certkeeper_ca::{IssuanceRequest, PublicKeyData};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::Error;
use crate::services::pki::{Actor, Issued, Pki};
use crate::services::ports::{AuditStore as _, EstStore, ProfileStore};
use crate::store::{EstCredential, EstLabel, ProfileRecord, StoreError, new_id};

pub use credentials::{hash_password, new_password, verify_or_dummy, verify_password};
pub use trust::verify_chain;

/// EST operation names, which a label may not shadow.
const OPERATIONS: [&str; 5] = [
    "cacerts",
    "csrattrs",
    "simpleenroll",
    "simplereenroll",
    "serverkeygen",
];

/// The operations that issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstOp {
    /// `simpleenroll`.
    Enroll,
    /// `simplereenroll`.
    Reenroll,
    /// `serverkeygen`.
    ServerKeygen,
}

impl EstOp {
    /// The operation's name in the path.
    pub fn name(self) -> &'static str {
        match self {
            EstOp::Enroll => "simpleenroll",
            EstOp::Reenroll => "simplereenroll",
            EstOp::ServerKeygen => "serverkeygen",
        }
    }
}

/// Where a request enrolls: the label's profile and its channel-binding rule.
#[derive(Debug, Clone)]
pub struct Target {
    /// The label; empty for the bare path.
    pub label: String,
    /// The profile it issues under.
    pub profile: ProfileRecord,
    /// Whether CSRs must carry the connection's channel binding.
    pub channel_binding: bool,
}

/// The TLS facts of the connection a request came on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer<'a> {
    /// The client's certificate chain, leaf first; empty when it sent none.
    pub chain: &'a [Vec<u8>],
    /// The connection's `tls-exporter` value (RFC 9266).
    pub channel_binding: Option<[u8; 32]>,
}

/// How a client proved who it is.
#[derive(Debug, Clone)]
pub enum Authn {
    /// HTTP Basic credentials.
    Password(EstCredential),
    /// A trusted TLS client certificate.
    Certificate,
}

/// A certificate issued over EST, with the key when the server made it.
#[derive(Debug)]
pub struct Enrolled {
    /// The certificate.
    pub issued: Issued,
    /// The PKCS#8 key, for `serverkeygen`.
    pub key_pkcs8: Option<Vec<u8>>,
}

/// What a new EST credential is made with.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// User name (1 to 100 characters, no ':' or control characters).
    pub username: String,
    /// The label it enrolls under; none for the bare path.
    pub label: Option<String>,
    /// A chosen password (at least 12 characters); one is generated when absent.
    pub password: Option<String>,
    /// Lifetime in days (at least 1).
    pub expires_in_days: Option<u32>,
    /// How many enrollments it allows (at least 1).
    pub max_uses: Option<u32>,
}

fn check_label(l: &str) -> Result<(), Error> {
    if !crate::services::is_plain_name(l) || l.starts_with('.') {
        return Err(Error::BadRequest(
            "label must be 1 to 64 letters, digits, '-', '_' or '.' (not starting with '.')".into(),
        ));
    }
    if OPERATIONS.contains(&l) {
        return Err(Error::BadRequest(format!(
            "label {l:?} is the name of an EST operation"
        )));
    }
    Ok(())
}

fn check_username(u: &str) -> Result<(), Error> {
    if u.is_empty() || u.len() > 100 || u.contains(':') || u.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "username must be 1 to 100 characters, without ':' or control characters".into(),
        ));
    }
    Ok(())
}

/// The name the audit log gives a client: its certificate's subject, or its user name.
pub fn requester(client_cert: Option<&[u8]>, user: Option<&str>) -> Option<String> {
    match (user, client_cert) {
        (Some(u), _) => Some(format!("est:{u}")),
        (None, Some(der)) => Some(format!(
            "est-cert:{}",
            X509Certificate::from_der(der)
                .map(|(_, c)| c.subject().to_string())
                .unwrap_or_else(|_| "unparseable certificate".into())
        )),
        (None, None) => None,
    }
}

/// EST labels, credentials and enrollment.
#[derive(Debug, Clone)]
pub struct EstService {
    pki: Arc<Pki>,
    throttle: Arc<throttle::LoginThrottle>,
}

impl EstService {
    /// The service over the registration authority.
    pub fn new(pki: Arc<Pki>) -> EstService {
        let est = &pki.settings().est;
        let throttle = Arc::new(throttle::LoginThrottle::new(
            est.max_auth_failures,
            est.auth_failure_window,
        ));
        EstService { pki, throttle }
    }

    fn store(&self) -> &(impl EstStore + ProfileStore + use<>) {
        self.pki.store()
    }

    async fn profile_name(&self, name: &str) -> Result<String, Error> {
        match self.store().get_profile(name).await {
            Ok(p) => Ok(p.policy.name),
            Err(StoreError::NotFound(_)) => Err(Error::BadRequest(format!("no profile {name:?}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Create a label.
    pub async fn create_label(
        &self,
        label: String,
        profile: &str,
        require_channel_binding: bool,
        actor: &Actor,
    ) -> Result<EstLabel, Error> {
        check_label(&label)?;
        let profile = self.profile_name(profile).await?;
        let rec = EstLabel {
            label,
            profile,
            require_channel_binding,
            created_at: self.pki.now(),
            created_by: actor.name.clone(),
        };
        let ev = actor
            .event("est_label.create", "est_label")
            .object(&rec.label)
            .detail(serde_json::json!({"profile": rec.profile, "require_channel_binding": rec.require_channel_binding}));
        self.store().insert_est_label(&rec, &ev).await?;
        Ok(rec)
    }

    /// Every label.
    pub async fn labels(&self) -> Result<Vec<EstLabel>, Error> {
        Ok(self.store().list_est_labels().await?)
    }

    /// Delete a label.
    pub async fn delete_label(&self, label: &str, actor: &Actor) -> Result<(), Error> {
        let ev = actor.event("est_label.delete", "est_label").object(label);
        self.store()
            .delete_est_label(label, &ev, self.pki.now())
            .await?;
        Ok(())
    }

    /// Create a credential; returns it with its password, which is never shown again.
    pub async fn create_credential(
        &self,
        new: NewCredential,
        actor: &Actor,
    ) -> Result<(EstCredential, String), Error> {
        check_username(&new.username)?;
        let label = new.label.unwrap_or_default();
        if !label.is_empty() {
            match self.store().get_est_label(&label).await {
                Ok(_) => {}
                Err(StoreError::NotFound(_)) => {
                    return Err(Error::BadRequest(format!("no EST label {label:?}")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let password = match new.password {
            Some(p) if p.chars().count() >= 12 => p,
            Some(_) => {
                return Err(Error::BadRequest(
                    "password must be at least 12 characters (or leave it out to have one generated)"
                        .into(),
                ));
            }
            None => new_password()?,
        };
        let now = self.pki.now();
        let expires_at =
            crate::services::expiry_after_days("expires_in_days", new.expires_in_days, now)?;
        if new.max_uses == Some(0) {
            return Err(Error::BadRequest("max_uses must be at least 1".into()));
        }
        let pw = password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let rec = EstCredential::new(
            new_id(),
            new.username,
            label,
            hash,
            expires_at,
            new.max_uses.map(i64::from),
            now,
            actor.name.clone(),
        );
        let ev = actor
            .event("est_credential.create", "est_credential")
            .object(&rec.id)
            .detail(serde_json::json!({"username": rec.username, "label": rec.label, "max_uses": rec.uses_left}));
        self.store().insert_est_credential(&rec, &ev).await?;
        Ok((rec, password))
    }

    /// Every credential, without passwords.
    pub async fn credentials(&self) -> Result<Vec<EstCredential>, Error> {
        Ok(self.store().list_est_credentials().await?)
    }

    /// A page of credentials, newest first, without passwords: up to `limit` (1 to 1000)
    /// after the keyset position `after` (the previous page's last `(created_at, id)`).
    pub async fn credential_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<EstCredential>, Error> {
        if !(1..=1000).contains(&limit) {
            return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
        }
        Ok(self.store().est_credential_page(after, limit).await?)
    }

    /// Revoke a credential.
    pub async fn revoke_credential(&self, id: &str, actor: &Actor) -> Result<(), Error> {
        let ev = actor
            .event("est_credential.revoke", "est_credential")
            .object(id);
        self.store()
            .revoke_est_credential(id, &ev, self.pki.now())
            .await?;
        Ok(())
    }

    /// Where a request on `label` (none for the bare path) enrolls.
    pub async fn target(&self, label: Option<&str>) -> Result<Target, Error> {
        let (name, profile, channel_binding) = match label {
            None => (
                String::new(),
                self.pki.settings().est.default_profile.clone(),
                false,
            ),
            Some(l) => {
                let rec = self.store().get_est_label(l).await.map_err(|e| match e {
                    StoreError::NotFound(_) => {
                        Error::NotFound(format!("no EST label {l:?} on this server"))
                    }
                    other => other.into(),
                })?;
                (rec.label, rec.profile, rec.require_channel_binding)
            }
        };
        let profile = self.pki.profile(&profile).await.map_err(|e| match e {
            StoreError::NotFound(_) => Error::NotFound(format!(
                "EST is not usable here: profile {profile:?} no longer exists (an administrator must change est.default_profile or the label)"
            )),
            other => other.into(),
        })?;
        Ok(Target {
            label: name,
            profile,
            channel_binding,
        })
    }

    /// The issuer chain of the CA a label's profile issues from (`cacerts`): its successor's
    /// once a rollover has handed over.
    pub async fn ca_chain(&self, target: &Target) -> Result<Vec<Vec<u8>>, Error> {
        let ca = self.pki.issuing_ca(&target.profile.ca_id).await?;
        self.pki.chain_of(&ca).await
    }

    /// Decide whether a client may run `op` on `target`: by HTTP Basic credentials, or by
    /// its TLS client certificate (a bootstrap CA's to enroll, the certificate being
    /// renewed to re-enroll).
    pub async fn authenticate(
        &self,
        op: EstOp,
        target: &Target,
        basic: Option<(String, String)>,
        peer: Peer<'_>,
        source: Option<&str>,
    ) -> Result<Authn, Error> {
        match (op, basic) {
            (EstOp::Reenroll, _) => {
                if peer.chain.is_empty() {
                    return Err(Error::Unauthorized(
                        "simplereenroll needs the certificate being renewed as the TLS client certificate".into(),
                    ));
                }
                self.trusted_client_cert(target, peer.chain, true).await?;
                Ok(Authn::Certificate)
            }
            (_, Some((user, password))) => Ok(Authn::Password(
                self.check_password(target, &user, &password, source)
                    .await?,
            )),
            (_, None) if !peer.chain.is_empty() => {
                self.trusted_client_cert(target, peer.chain, false).await?;
                Ok(Authn::Certificate)
            }
            (_, None) => Err(Error::Unauthorized(
                "authentication required: HTTP Basic credentials for this EST label, or a trusted TLS client certificate".into(),
            )),
        }
    }

    async fn check_password(
        &self,
        t: &Target,
        user: &str,
        password: &str,
        source: Option<&str>,
    ) -> Result<EstCredential, Error> {
        let wrong = || Error::Unauthorized("unknown EST user name or wrong password".into());
        let now = self.pki.now();
        if !self.throttle.allows(source, user, now) {
            return Err(Error::TooManyRequests(
                "too many failed EST logins from this address or for this user name; try again later"
                    .into(),
            ));
        }
        let cred = self.store().find_est_credential(user).await?;
        let hash = cred.as_ref().map(|c| c.password_hash().to_string());
        let password = password.to_string();
        // An unknown user name runs the same key derivation against a dummy hash.
        let ok = tokio::task::spawn_blocking(move || verify_or_dummy(&password, hash.as_deref()))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let cred = match cred {
            Some(c) if ok => c,
            _ => {
                self.throttle.failed(source, user, now);
                return Err(wrong());
            }
        };
        self.throttle.succeeded(user);
        if cred.revoked_at.is_some() {
            return Err(Error::Unauthorized(format!(
                "EST credential {user:?} has been revoked"
            )));
        }
        if cred.expires_at.is_some_and(|e| e <= self.pki.now()) {
            return Err(Error::Unauthorized(format!(
                "EST credential {user:?} has expired"
            )));
        }
        if cred.uses_left.is_some_and(|n| n <= 0) {
            return Err(Error::Unauthorized(format!(
                "EST credential {user:?} has no enrollments left"
            )));
        }
        if cred.label != t.label {
            let path = |l: &str| {
                if l.is_empty() {
                    "/.well-known/est/".to_string()
                } else {
                    format!("/.well-known/est/{l}/")
                }
            };
            return Err(Error::Forbidden(format!(
                "EST credential {user:?} is for {}, not {}",
                path(&cred.label),
                path(&t.label)
            )));
        }
        Ok(cred)
    }

    /// Check the client's certificate chain for an operation.
    ///
    /// - Enrollment (`simpleenroll`, `serverkeygen`) by certificate is for devices holding
    ///   a bootstrap (manufacturer) certificate: the chain must lead to a CA of
    ///   `est.client_ca_file`. A certificate of ours does not let its holder enroll for
    ///   new names.
    /// - Renewal (`simplereenroll`) is for certificates this server issued (when
    ///   `est.trust_own_cas`): valid, unrevoked, and issued under the label's profile.
    async fn trusted_client_cert(
        &self,
        t: &Target,
        chain: &[Vec<u8>],
        renewal: bool,
    ) -> Result<(), Error> {
        let settings = self.pki.settings();
        let now = self.pki.now();
        if !renewal {
            if settings.est.client_cas.is_empty() {
                return Err(Error::Forbidden(
                    "enrollment by TLS client certificate needs a bootstrap CA (est.client_ca_file); use HTTP Basic credentials, or simplereenroll to renew".into(),
                ));
            }
            verify_chain(chain, &settings.est.client_cas, now)?;
            return Ok(());
        }
        let store = self.pki.store();
        let mut anchors: Vec<Vec<u8>> = Vec::new();
        if settings.est.trust_own_cas {
            for ca in store.list_cas().await? {
                if ca.status == "active"
                    && let Some(der) = ca.cert_der
                {
                    anchors.push(der);
                }
            }
        }
        trust::verify_own_chain(chain, &anchors, now)?;
        let leaf = chain.first().map(Vec::as_slice).unwrap_or_default();
        let fingerprint = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf));
        let Some(id) = store.certificate_id_by_fingerprint(&fingerprint).await? else {
            return Err(Error::Forbidden(
                "simplereenroll renews certificates this server issued; the TLS client certificate is not one of them".into(),
            ));
        };
        let rec = store.get_certificate(&id).await?;
        if rec.status != "valid" {
            return Err(Error::Forbidden(
                "the TLS client certificate has been revoked".into(),
            ));
        }
        if rec.profile_name.as_deref() != Some(t.profile.policy.name.as_str()) {
            return Err(Error::Forbidden(format!(
                "the TLS client certificate was issued under profile {:?}; this EST path renews under {:?}",
                rec.profile_name.unwrap_or_default(),
                t.profile.policy.name
            )));
        }
        Ok(())
    }

    /// Issue for an authenticated request's CSR (DER): the RFC 7030 checks, a server-made
    /// key for `serverkeygen`, one use of a password credential (given back if issuance
    /// fails), then the one issuance door.
    pub async fn enroll(
        &self,
        op: EstOp,
        target: &Target,
        authn: &Authn,
        csr_der: &[u8],
        peer: Peer<'_>,
        actor: &Actor,
    ) -> Result<Enrolled, Error> {
        let csr = certkeeper_ca::parse_csr(csr_der)?;
        trust::check_channel_binding(&csr, peer.channel_binding, target.channel_binding)?;
        if op == EstOp::Reenroll {
            let leaf = peer.chain.first().map(Vec::as_slice).unwrap_or_default();
            trust::same_names(&csr, leaf)?;
        }
        let mut issuance = IssuanceRequest::from_csr(&csr);
        let key_pkcs8 = if op == EstOp::ServerKeygen {
            let key = self
                .pki
                .generate_key(&target.profile, csr.key_algorithm)
                .await?;
            issuance.public_key_der = key.subject_public_key_info();
            Some(key.serialize_der())
        } else {
            None
        };
        // Take one use of the credential only now that the request is known to be good,
        // and give it back if issuance fails.
        let credential = match authn {
            Authn::Password(c) => {
                if !self
                    .store()
                    .take_est_credential_use(&c.id, self.pki.now())
                    .await?
                {
                    return Err(Error::Unauthorized(format!(
                        "EST credential {:?} is used up, expired or revoked",
                        c.username
                    )));
                }
                Some(c)
            }
            Authn::Certificate => None,
        };
        match self.pki.issue(&target.profile, issuance, None, actor).await {
            Ok(issued) => Ok(Enrolled { issued, key_pkcs8 }),
            Err(e) => {
                if let Some(c) = credential.filter(|c| c.uses_left.is_some()) {
                    self.store().return_est_credential_use(&c.id).await?;
                }
                Err(e)
            }
        }
    }

    /// Record a refused enrollment (401 or 403) in the audit log; a failure to record is
    /// logged, not returned.
    pub async fn audit_refusal(
        &self,
        op: EstOp,
        label: &str,
        actor: &Actor,
        status: u16,
        reason: &str,
    ) {
        let ev = actor.event("est.refuse", "est").detail(serde_json::json!({
            "operation": op.name(), "label": label, "status": status,
            "reason": reason,
        }));
        if let Err(e) = self
            .store()
            .audit(&ev, self.pki.now().unix_timestamp())
            .await
        {
            tracing::error!(error = %e, "could not audit an EST refusal");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_plain_names_not_operations() {
        assert!(check_label("devices").is_ok());
        assert!(check_label(".hidden").is_err());
        assert!(check_label("a/b").is_err());
        assert!(check_label("").is_err());
        assert!(check_label("simpleenroll").is_err());
    }

    #[test]
    fn usernames_have_no_colon_or_control_characters() {
        assert!(check_username("router-1").is_ok());
        assert!(check_username("a:b").is_err());
        assert!(check_username("a\nb").is_err());
        assert!(check_username("").is_err());
        assert!(check_username(&"u".repeat(101)).is_err());
    }
}
