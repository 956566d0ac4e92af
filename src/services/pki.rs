//! The registration authority: every front end (REST today; ACME and EST later) asks this
//! module to create CAs, issue, revoke and answer status. It applies profile policy, calls
//! the CA's single signing function, and records everything before returning it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use certkeeper_ca::ocsp::{self, CertStatus, OcspResponseStatus, Responder, SingleResponse};
use certkeeper_ca::{
    CaKey, CaSpec, Clock, IssuanceRequest, IssuedCertificate, KeyAlgorithm, Links, MasterKey,
    PendingCa, RevokedEntry, SigningCa, build_crl, reason_from_code,
};
use time::{Duration, OffsetDateTime};

use crate::cache::TtlCache;
use crate::config::{OcspSigner, Settings};
use crate::error::Error;
use crate::hsm::{KeyRef, Token};
use crate::metrics::Metrics;
use crate::store::{
    AuditEvent, CaRecord, CertRecord, NewCaRecord, NewCertificate, ProfileRecord, Store,
    TokenRecord, new_id,
};

mod rollover;
pub use rollover::{RolledOver, Rollover};

/// How long another replica's change to a profile or token may take to be seen here.
const HOT_ROW_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// How many token lookups are kept. Only tokens that exist are kept, so a flood of made-up
/// tokens neither grows the cache nor evicts real ones faster than their use refreshes them.
const TOKEN_CACHE_CAPACITY: u64 = 10_000;

/// The CA that signs the server's own HTTPS certificate and nothing else: made at first
/// start beside the default hierarchy, never bound to a profile, never a parent.
pub const SERVER_CA: &str = "certkeeper-server-ca";

/// The name under which the server's own certificates are recorded (no profile of that
/// name exists: they are issued by [`Pki::issue_server_certificate`]).
pub const SERVER_CERT_POLICY: &str = "certkeeper-server";

/// Who is acting, for authorisation results and the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `token:<name>` or `system`.
    pub name: String,
    /// Client address.
    pub source: Option<String>,
}

impl Actor {
    /// The server itself.
    pub fn system() -> Actor {
        Actor {
            name: "system".into(),
            source: None,
        }
    }

    /// An audit event by this actor.
    pub fn event(&self, action: &str, object_type: &str) -> AuditEvent {
        AuditEvent::new(&self.name, self.source.as_deref(), action, object_type)
    }
}

/// A certificate just issued and recorded.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The record id.
    pub id: String,
    /// The certificate.
    pub cert: IssuedCertificate,
    /// Issuing CA id.
    pub ca_id: String,
    /// The issuer chain, nearest first (intermediates and the root).
    pub chain: Vec<Vec<u8>>,
}

/// The CA service.
pub struct Pki {
    store: Store,
    master: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    signers: RwLock<HashMap<String, Arc<SigningCa>>>,
    profiles: TtlCache<String, ProfileRecord>,
    active_cas: TtlCache<String, CaRecord>,
    chains: TtlCache<String, Vec<Vec<u8>>>,
    tokens: moka::sync::Cache<String, TokenRecord>,
    alert_rules: TtlCache<String, Arc<Vec<crate::store::RuleRecord>>>,
    /// Profile `ca_id`s known, for a moment, to name no external issuer.
    not_issuers: TtlCache<String, ()>,
    ocsp_renewal: tokio::sync::Mutex<()>,
    token: Option<Token>,
}

/// Where a new CA's private key is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyStorage {
    /// In the database, sealed under the master key.
    #[default]
    Sealed,
    /// Generated in the PKCS#11 token of `[hsm]`, never leaving it.
    Pkcs11,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

/// The seal context of a key: `ca:<id>`, `ocsp:<id>` (a CA's OCSP responder key) or
/// `cert:<id>` (a kept subscriber key).
pub(crate) fn key_context(prefix: &str, id: &str) -> Vec<u8> {
    format!("{prefix}:{id}").into_bytes()
}

impl Pki {
    /// A service over the given store and master key.
    pub fn new(
        store: Store,
        master: Arc<MasterKey>,
        clock: Arc<dyn Clock>,
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
    ) -> Pki {
        Pki {
            store,
            master,
            clock,
            settings,
            metrics,
            signers: RwLock::new(HashMap::new()),
            profiles: TtlCache::new(HOT_ROW_TTL),
            active_cas: TtlCache::new(std::time::Duration::from_secs(300)),
            chains: TtlCache::new(std::time::Duration::from_secs(300)),
            tokens: moka::sync::Cache::builder()
                .max_capacity(TOKEN_CACHE_CAPACITY)
                .time_to_live(HOT_ROW_TTL)
                .build(),
            alert_rules: TtlCache::new(HOT_ROW_TTL),
            not_issuers: TtlCache::new(HOT_ROW_TTL),
            ocsp_renewal: tokio::sync::Mutex::new(()),
            token: None,
        }
    }

    /// The same service, with CA keys kept in (and signed by) this PKCS#11 token.
    pub fn with_token(mut self, token: Option<Token>) -> Pki {
        self.token = token;
        self
    }

    /// Whether a PKCS#11 token is configured (`[hsm]`), so that new CAs may keep their
    /// keys in it.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The PKCS#11 token, or why there is none.
    fn token(&self) -> Result<&Token, Error> {
        self.token.as_ref().ok_or_else(|| {
            Error::BadRequest(
                "no PKCS#11 token is configured: set [hsm] (module, token_label, pin) to keep CA keys in one".into(),
            )
        })
    }

    /// Find the key of every CA kept in the PKCS#11 token, at start: a token or a key that is
    /// missing is an error naming it, not a failure at the first signature.
    pub async fn check_token_keys(&self) -> Result<usize, Error> {
        let mut found = 0;
        for ca in self.store.list_cas().await? {
            let Some(uri) = &ca.key_ref else { continue };
            let token = self.token.as_ref().ok_or_else(|| {
                Error::Internal(format!(
                    "the key of CA {:?} is in the PKCS#11 token ({uri}), but [hsm] is not configured",
                    ca.name
                ))
            })?;
            token
                .key(&KeyRef::parse(uri)?)
                .map_err(|e| Error::Internal(format!("CA {:?}: {e}", ca.name)))?;
            found += 1;
        }
        Ok(found)
    }

    /// A profile by name or id, cached for a moment (issuance reads it on every request).
    pub async fn profile(&self, name: &str) -> Result<ProfileRecord, crate::store::StoreError> {
        self.profiles
            .get_or_load(name, || self.store.get_profile(name), |_| true)
            .await
    }

    /// Forget cached profiles after a change.
    pub fn invalidate_profiles(&self) {
        self.profiles.clear();
    }

    /// The external issuer that `id` (a profile's `ca_id`) names, or `None` when it names
    /// one of this server's CAs. Every issuance asks, so that `None` is remembered for a
    /// moment (as profiles are); an issuer's record is always read afresh, since its
    /// account state changes.
    pub async fn external_issuer(
        &self,
        id: &str,
    ) -> Result<Option<crate::store::IssuerRecord>, crate::store::StoreError> {
        let key = id.to_string();
        if self.not_issuers.get(&key).is_some() {
            return Ok(None);
        }
        match self.store.get_issuer(id).await {
            Ok(rec) => Ok(Some(rec)),
            Err(crate::store::StoreError::NotFound(_)) => {
                self.not_issuers.put(key, ());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Forget which ids name no external issuer, after an issuer is added.
    pub fn invalidate_issuers(&self) {
        self.not_issuers.clear();
    }

    /// The token with this hash, cached for a moment when it exists. A miss is never cached
    /// (it costs one indexed lookup), so unknown tokens cannot fill the cache.
    pub async fn token_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<TokenRecord>, crate::store::StoreError> {
        if let Some(rec) = self.tokens.get(hash) {
            return Ok(Some(rec));
        }
        let found = self.store.find_token(hash).await?;
        if let Some(rec) = &found {
            self.tokens.insert(hash.to_string(), rec.clone());
        }
        Ok(found)
    }

    /// Forget cached tokens after a change.
    pub fn invalidate_tokens(&self) {
        self.tokens.invalidate_all();
    }

    /// How many token lookups are cached now (for tests of the cache's bounds).
    #[doc(hidden)]
    pub fn cached_tokens(&self) -> u64 {
        self.tokens.run_pending_tasks();
        self.tokens.entry_count()
    }

    /// All alert rules, cached for a moment (issuance and revocation consult them to decide
    /// whether anyone listens for their events).
    pub async fn alert_rules(
        &self,
    ) -> Result<Arc<Vec<crate::store::RuleRecord>>, crate::store::StoreError> {
        self.alert_rules
            .get_or_load(
                "",
                || async { self.store.list_rules().await.map(Arc::new) },
                |_| true,
            )
            .await
    }

    /// Forget cached alert rules after a change.
    pub fn invalidate_alert_rules(&self) {
        self.alert_rules.clear();
    }

    /// A CA by id; active CAs (whose certificate and key never change) are cached.
    pub async fn ca(&self, id: &str) -> Result<CaRecord, crate::store::StoreError> {
        self.active_cas
            .get_or_load(id, || self.store.get_ca(id), |c| c.status == "active")
            .await
    }

    /// The store: for the services and the jobs only; front ends call a service.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The store, for the integration tests and benchmarks that set up or inspect rows
    /// directly. Nothing in the server calls this: front ends call a service, services use
    /// [`Pki::store`].
    #[doc(hidden)]
    pub fn store_for_tests(&self) -> &Store {
        &self.store
    }

    /// What the metrics endpoint reports about the stored data, now.
    pub async fn gauges(&self) -> Result<crate::store::gauges::Gauges, Error> {
        Ok(self.store.gauges(self.now().unix_timestamp()).await?)
    }

    /// Whether the database answers (for readiness).
    pub async fn ping(&self) -> Result<(), Error> {
        Ok(self.store.ping().await?)
    }

    /// Close the database pool (at shutdown, after the last request).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// Open every CA's sealed key, and each OCSP responder key, with the master key: after a
    /// restore, the proof that this master key belongs to this database. Returns how many
    /// keys were opened.
    pub async fn check_sealed_keys(&self) -> Result<usize, Error> {
        let mut opened = 0;
        for ca in self.store.list_cas().await? {
            if ca.key_ref.is_some() {
                // Kept in a PKCS#11 token: nothing of it is sealed.
                continue;
            }
            let wrong = || {
                Error::Conflict(format!(
                    "the master key does not open the key of CA {:?}: it is not this \
                     database's master key",
                    ca.name
                ))
            };
            self.master
                .open(&ca.key_sealed, &key_context("ca", &ca.id))
                .map_err(|_| wrong())?;
            opened += 1;
            if let Some(sealed) = &ca.ocsp_key_sealed {
                self.master
                    .open(sealed, &key_context("ocsp", &ca.id))
                    .map_err(|_| wrong())?;
                opened += 1;
            }
        }
        Ok(opened)
    }

    /// The current time from the injected clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The master key, to seal and open other secrets.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The URLs written into certificates issued by `ca_id`.
    pub fn links_for(&self, ca_id: &str) -> Links {
        let base = &self.settings.server.public_url;
        Links {
            ca_issuers_url: Some(format!("{base}/ca/{ca_id}.crt")),
            ocsp_url: Some(format!("{base}/ocsp")),
            crl_url: Some(format!("{base}/crl/{ca_id}.crl")),
        }
    }

    /// The loaded signer of an active CA (cached; CA certificates and keys never change).
    pub fn signer(&self, ca: &CaRecord) -> Result<Arc<SigningCa>, Error> {
        if ca.status != "active" {
            return Err(Error::Conflict(format!(
                "CA {:?} is {}, not active",
                ca.name, ca.status
            )));
        }
        if let Some(s) = self
            .signers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ca.id)
        {
            return Ok(s.clone());
        }
        let cert = ca
            .cert_der
            .clone()
            .ok_or_else(|| Error::Internal(format!("CA {} has no certificate", ca.id)))?;
        let key = match &ca.key_ref {
            Some(uri) => {
                let key = self.token()?.key(&KeyRef::parse(uri)?)?;
                CaKey::remote(Arc::new(key))?
            }
            None => {
                let pkcs8 = self
                    .master
                    .open(&ca.key_sealed, &key_context("ca", &ca.id))
                    .map_err(|e| Error::Internal(format!("CA {} key: {e}", ca.id)))?;
                CaKey::local(certkeeper_ca::load_key(&pkcs8)?)
            }
        };
        let signer = Arc::new(
            SigningCa::load_with_key(cert, key).map_err(|e| Error::Internal(e.to_string()))?,
        );
        self.signers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ca.id.clone(), signer.clone());
        Ok(signer)
    }

    /// The issuer chain above and including `ca`, nearest first.
    pub async fn chain_of(&self, ca: &CaRecord) -> Result<Vec<Vec<u8>>, Error> {
        if ca.status == "active"
            && let Some(c) = self.chains.get(&ca.id)
        {
            return Ok(c);
        }
        let mut chain = Vec::new();
        let mut current = ca.clone();
        for _ in 0..16 {
            if let Some(der) = &current.cert_der {
                chain.push(der.clone());
            }
            if let Some(pem) = &current.chain_pem {
                chain.extend(certkeeper_ca::parse_pem_or_der_certs(pem.as_bytes())?);
                break;
            }
            match &current.parent_id {
                Some(p) => current = self.ca(p).await?,
                None => {
                    if chain.len() > 1
                        && let Some(cross) = self.chain_top(&current, self.now()).await?
                    {
                        *chain.last_mut().expect("the root was pushed") = cross;
                    }
                    break;
                }
            }
        }
        if ca.status == "active" {
            self.chains.put(ca.id.clone(), chain.clone());
        }
        Ok(chain)
    }

    fn validate_ca_name(name: &str) -> Result<(), Error> {
        crate::services::validate_name("CA name", name)
    }

    /// A new key of type `alg` for a certificate under `profile`, made on the server:
    /// refused before any work when the server cannot make such keys or the profile would
    /// refuse them. The one place server-side keys are made (REST, EST `serverkeygen`,
    /// managed certificates).
    pub async fn generate_key(
        &self,
        profile: &ProfileRecord,
        alg: KeyAlgorithm,
    ) -> Result<certkeeper_ca::KeyPair, Error> {
        if !KeyAlgorithm::GENERATABLE.contains(&alg) {
            return Err(Error::BadRequest(format!(
                "key type {alg} cannot be generated"
            )));
        }
        if let Err(v) = profile.policy.check_key_type(alg) {
            self.metrics.policy_rejections.inc();
            return Err(v.into());
        }
        tokio::task::spawn_blocking(move || alg.generate())
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(Into::into)
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_new_ca(
        &self,
        id: String,
        name: &str,
        parent_id: Option<String>,
        kind: &'static str,
        new: certkeeper_ca::NewCa,
        key_ref: Option<String>,
        actor: &Actor,
    ) -> Result<CaRecord, Error> {
        // A key in a token has nothing to seal: the row keeps only its reference.
        let sealed = match key_ref {
            Some(_) => Vec::new(),
            None => self.master.seal(&new.key_pkcs8, &key_context("ca", &id))?,
        };
        let chain_pem = if new.chain_der.is_empty() {
            None
        } else {
            Some(certkeeper_ca::pem_encode_certs(
                new.chain_der.iter().map(Vec::as_slice),
            ))
        };
        let rec = NewCaRecord {
            id: id.clone(),
            name: name.to_string(),
            parent_id,
            kind,
            status: "active",
            subject: new.info.subject.clone(),
            key_algorithm: new.info.key_algorithm.clone().unwrap_or_default(),
            cert_der: Some(new.cert_der.clone()),
            chain_pem,
            csr_der: None,
            key_sealed: sealed,
            key_ref: key_ref.clone(),
            info: Some(new.info.clone()),
        };
        let storage = if key_ref.is_some() {
            "pkcs11"
        } else {
            "sealed"
        };
        let ev = actor
            .event("ca.create", "ca")
            .object(&id)
            .detail(serde_json::json!({
                "name": name, "kind": kind, "subject": new.info.subject, "key_storage": storage,
            }));
        self.store.insert_ca(&rec, &ev, self.now()).await?;
        self.store.get_ca(&id).await.map_err(Into::into)
    }

    /// Create a self-signed root CA, its key kept where `storage` says.
    pub async fn create_root(
        &self,
        name: &str,
        spec: &CaSpec,
        storage: KeyStorage,
        actor: &Actor,
    ) -> Result<CaRecord, Error> {
        Self::validate_ca_name(name)?;
        let id = new_id();
        if storage == KeyStorage::Pkcs11 {
            let (key_ref, key) = self.token_key(&id, spec).await?;
            let made = certkeeper_ca::create_root_for_key(spec, &key, self.now());
            return self
                .store_token_ca(id, name, None, "root", made, key_ref, actor)
                .await;
        }
        let new = certkeeper_ca::create_root(spec, self.now())?;
        self.store_new_ca(id, name, None, "root", new, None, actor)
            .await
    }

    /// A new key in the PKCS#11 token for the CA `id` (made off the request threads: a
    /// token may take seconds for an RSA key).
    async fn token_key(&self, id: &str, spec: &CaSpec) -> Result<(KeyRef, CaKey), Error> {
        if !crate::hsm::can_generate(spec.key_algorithm) {
            return Err(Error::BadRequest(format!(
                "a {} key cannot be made in the PKCS#11 token: use ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096",
                spec.key_algorithm
            )));
        }
        let token = self.token()?.clone();
        let (alg, label) = (spec.key_algorithm, format!("certkeeper-ca-{id}"));
        let (key_ref, key) = tokio::task::spawn_blocking(move || token.generate(alg, &label))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        Ok((key_ref, CaKey::remote(Arc::new(key))?))
    }

    /// Record a CA whose key was just made in the token; if the certificate could not be
    /// made or the row not written, the key is removed from the token again.
    #[allow(clippy::too_many_arguments)]
    async fn store_token_ca(
        &self,
        id: String,
        name: &str,
        parent_id: Option<String>,
        kind: &'static str,
        made: Result<IssuedCertificate, certkeeper_ca::CaError>,
        key_ref: KeyRef,
        actor: &Actor,
    ) -> Result<CaRecord, Error> {
        let stored = match made {
            Ok(cert) => {
                let new = certkeeper_ca::NewCa {
                    cert_der: cert.der,
                    chain_der: vec![],
                    // Nothing to seal: the key stays in the token.
                    key_pkcs8: Vec::new(),
                    info: cert.info,
                };
                self.store_new_ca(id, name, parent_id, kind, new, Some(key_ref.uri()), actor)
                    .await
            }
            Err(e) => Err(e.into()),
        };
        if stored.is_err()
            && let Err(e) = self.token()?.destroy(&key_ref)
        {
            tracing::warn!(key = %key_ref.uri(), error = %e, "could not remove the key of a CA that was not created");
        }
        stored
    }

    /// Create an intermediate CA signed by one of ours.
    pub async fn create_intermediate(
        &self,
        name: &str,
        parent: &str,
        spec: &CaSpec,
        storage: KeyStorage,
        actor: &Actor,
    ) -> Result<CaRecord, Error> {
        Self::validate_ca_name(name)?;
        let parent = self.store.get_ca(parent).await?;
        if parent.name == SERVER_CA {
            return Err(Error::BadRequest(format!(
                "{SERVER_CA} signs only the server's own certificate; choose another parent"
            )));
        }
        let signer = self.signer(&parent)?;
        let id = new_id();
        let links = self.links_for(&parent.id);
        if storage == KeyStorage::Pkcs11 {
            let (key_ref, key) = self.token_key(&id, spec).await?;
            let made =
                certkeeper_ca::create_intermediate_for_key(spec, &signer, &key, &links, self.now());
            return self
                .store_token_ca(
                    id,
                    name,
                    Some(parent.id),
                    "intermediate",
                    made,
                    key_ref,
                    actor,
                )
                .await;
        }
        let new = certkeeper_ca::create_intermediate(spec, &signer, &links, self.now())?;
        self.store_new_ca(
            id,
            name,
            Some(parent.id.clone()),
            "intermediate",
            new,
            None,
            actor,
        )
        .await
    }

    /// Import an existing CA certificate and key.
    pub async fn import_ca(
        &self,
        name: &str,
        cert: &[u8],
        key: &[u8],
        actor: &Actor,
    ) -> Result<CaRecord, Error> {
        Self::validate_ca_name(name)?;
        let new = certkeeper_ca::import_ca(cert, key)?;
        self.store_new_ca(new_id(), name, None, "imported", new, None, actor)
            .await
    }

    /// Create a pending CA whose certificate will be signed elsewhere; returns it with its CSR.
    pub async fn create_external(
        &self,
        name: &str,
        spec: &CaSpec,
        actor: &Actor,
    ) -> Result<CaRecord, Error> {
        Self::validate_ca_name(name)?;
        let pending = PendingCa::new(spec, self.now())?;
        let id = new_id();
        let sealed = self
            .master
            .seal(&pending.key_pkcs8, &key_context("ca", &id))?;
        let rec = NewCaRecord {
            id: id.clone(),
            name: name.to_string(),
            parent_id: None,
            kind: "external",
            status: "pending",
            subject: format!("CN={}", spec.common_name),
            key_algorithm: spec.key_algorithm.to_string(),
            cert_der: None,
            chain_pem: None,
            csr_der: Some(pending.csr_der.clone()),
            key_sealed: sealed,
            key_ref: None,
            info: None,
        };
        let ev = actor
            .event("ca.create", "ca")
            .object(&id)
            .detail(serde_json::json!({"name": name, "kind": "external"}));
        self.store.insert_ca(&rec, &ev, self.now()).await?;
        self.store.get_ca(&id).await.map_err(Into::into)
    }

    /// Install the externally signed certificate of a pending CA.
    pub async fn install_ca_certificate(
        &self,
        id: &str,
        cert: &[u8],
        actor: &Actor,
    ) -> Result<CaRecord, Error> {
        let ca = self.store.get_ca(id).await?;
        if ca.status != "pending" {
            return Err(Error::Conflict(format!(
                "CA {:?} is not pending a certificate",
                ca.name
            )));
        }
        let key = self
            .master
            .open(&ca.key_sealed, &key_context("ca", &ca.id))?;
        let new = certkeeper_ca::install_signed(&key, cert)?;
        let chain_pem = if new.chain_der.is_empty() {
            None
        } else {
            Some(certkeeper_ca::pem_encode_certs(
                new.chain_der.iter().map(Vec::as_slice),
            ))
        };
        let ev = actor.event("ca.install_certificate", "ca").object(&ca.id);
        self.store
            .install_ca_certificate(
                &ca.id,
                &new.cert_der,
                chain_pem.as_deref(),
                &new.info,
                &ev,
                self.now(),
            )
            .await?;
        self.store.get_ca(&ca.id).await.map_err(Into::into)
    }

    /// The names the server's own HTTPS certificate carries: `localhost`, the loopback
    /// addresses, `server.cert_names` and the HTTPS listener's address when it is neither
    /// unspecified nor loopback.
    pub fn server_names(&self) -> Result<(Vec<String>, Vec<std::net::IpAddr>), Error> {
        let settings = &self.settings.server;
        let mut dns = vec!["localhost".to_string()];
        let mut ips: Vec<std::net::IpAddr> = vec![
            std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::Ipv6Addr::LOCALHOST.into(),
        ];
        for n in &settings.cert_names {
            match n.parse::<std::net::IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) => dns.push(
                    certkeeper_ca::normalize_dns_name(n)
                        .map_err(|e| Error::Internal(format!("server.cert_names: {e}")))?,
                ),
            }
        }
        let ip = settings.https_listen.ip();
        if !ip.is_unspecified() && !ip.is_loopback() {
            ips.push(ip);
        }
        Ok((dns, ips))
    }

    /// Refuse, as a policy violation of `profile`, a request for one of the server's own
    /// names (or a wildcard covering one): a certificate from a profile must never be able
    /// to stand in for the server. Loopback addresses are left to profiles (every host has
    /// them, and a client reaching the server on one pins the server CA).
    fn refuse_server_names(
        &self,
        profile: &ProfileRecord,
        request: &IssuanceRequest,
    ) -> Result<(), Error> {
        let (dns, ips) = self.server_names()?;
        let refuse = |rule: &'static str, name: &str| {
            self.metrics.policy_rejections.inc();
            Err(Error::Policy(certkeeper_ca::PolicyViolation {
                profile: profile.policy.name.clone(),
                rule,
                detail: format!(
                    "{name} is one of this server's own names; no profile may issue it"
                ),
            }))
        };
        for asked in &request.dns_names {
            let asked = asked.trim_end_matches('.').to_ascii_lowercase();
            let covers = |own: &String| {
                *own == asked
                    || asked.strip_prefix("*.").is_some_and(|base| {
                        own.strip_suffix(base)
                            .and_then(|head| head.strip_suffix('.'))
                            .is_some_and(|label| !label.is_empty() && !label.contains('.'))
                    })
            };
            if dns.iter().any(covers) {
                return refuse("allowed_dns_names", &asked);
            }
        }
        for ip in &request.ip_addresses {
            if !ip.is_loopback() && ips.contains(ip) {
                return refuse("allowed_ip_ranges", &ip.to_string());
            }
        }
        Ok(())
    }

    /// The one issuance path for end-entity certificates: profile policy (which never
    /// allows the server's own names), signing, durable record (with the sealed key for
    /// managed certificates), then the answer.
    pub async fn issue(
        &self,
        profile: &ProfileRecord,
        request: IssuanceRequest,
        managed_key: Option<&[u8]>,
        actor: &Actor,
    ) -> Result<Issued, Error> {
        self.refuse_server_names(profile, &request)?;
        self.issue_recorded(profile, request, managed_key, actor, None)
            .await
            .map(|(issued, _)| issued)
    }

    /// The server's own HTTPS certificate: `policy` (made by the server, never stored as a
    /// profile) under [`SERVER_CA`], recorded and audited like any issuance with the key
    /// sealed beside it.
    pub async fn issue_server_certificate(
        &self,
        policy: certkeeper_ca::Profile,
        request: IssuanceRequest,
        key_pkcs8: &[u8],
    ) -> Result<Issued, Error> {
        let ca = self.store.get_ca(SERVER_CA).await?;
        let now = self.now();
        let profile = ProfileRecord {
            id: String::new(),
            ca_id: ca.id,
            policy,
            created_at: now,
            updated_at: now,
        };
        self.issue_recorded(&profile, request, Some(key_pkcs8), &Actor::system(), None)
            .await
            .map(|(issued, _)| issued)
    }

    /// [`Pki::issue`] for an ACME order being finalized (`processing`): the order becomes
    /// valid in the same commit that records the certificate, so an issuance costs one
    /// durable commit and no answered certificate is left without its order. Also says
    /// whether the order was completed (false if it had stopped being `processing`).
    pub async fn issue_for_acme_order(
        &self,
        profile: &ProfileRecord,
        request: IssuanceRequest,
        actor: &Actor,
        order_id: &str,
    ) -> Result<(Issued, bool), Error> {
        self.refuse_server_names(profile, &request)?;
        self.issue_recorded(profile, request, None, actor, Some(order_id))
            .await
    }

    async fn issue_recorded(
        &self,
        profile: &ProfileRecord,
        request: IssuanceRequest,
        managed_key: Option<&[u8]>,
        actor: &Actor,
        acme_order: Option<&str>,
    ) -> Result<(Issued, bool), Error> {
        let ca = self.issuing_ca(&profile.ca_id).await?;
        let signer = self.signer(&ca)?;
        let approved = match profile.policy.approve(request, &signer, self.now()) {
            Ok(a) => a,
            Err(v) => {
                self.metrics.policy_rejections.inc();
                return Err(v.into());
            }
        };
        let links = self.links_for(&ca.id);
        let id = new_id();
        let key_sealed = match managed_key {
            Some(k) => Some(self.master.seal(k, &key_context("cert", &id))?),
            None => None,
        };
        // A serial collision (2^-126) is answered by the unique constraint; try again once.
        let mut attempt = 0;
        let (cert, completed) = loop {
            attempt += 1;
            let cert = signer.issue(&approved, &links)?;
            let rec = NewCertificate {
                id: id.clone(),
                ca_id: ca.id.clone(),
                profile_name: Some(profile.policy.name.clone()),
                info: cert.info.clone(),
                der: cert.der.clone(),
                key_sealed: key_sealed.clone(),
                created_by: actor.name.clone(),
                created_at: self.now(),
            };
            let ev = actor
                .event("certificate.issue", "certificate")
                .object(&id)
                .detail(serde_json::json!({
                    "profile": profile.policy.name, "serial": cert.info.serial, "ca": ca.id,
                    "names": rec.names(), "managed": managed_key.is_some(),
                }));
            match self
                .store
                .insert_certificate(rec, ev, acme_order.map(str::to_owned))
                .await
            {
                Ok(completed) => break (cert, completed),
                Err(crate::store::StoreError::Conflict(_)) if attempt < 3 => continue,
                Err(e) => return Err(e.into()),
            }
        };
        self.metrics.certificates_issued.inc();
        // Alert rules subscribed to issuance hear of it; this never fails the issuance.
        crate::services::alerts::events::on_issued(self, &id, &cert.info, &profile.policy.name)
            .await;
        let chain = self.chain_of(&ca).await?;
        Ok((
            Issued {
                id,
                cert,
                ca_id: ca.id,
                chain,
            },
            completed,
        ))
    }

    /// Revoke a certificate one of our CAs signed with an RFC 5280 reason code, then
    /// refresh its CA's CRL. A certificate an external issuer signed is refused here: it is
    /// revoked upstream first, through `IssuerService::revoke`.
    pub async fn revoke(
        &self,
        cert_id: &str,
        reason: u8,
        actor: &Actor,
    ) -> Result<CertRecord, Error> {
        check_revocation_reason(reason)?;
        let cert = self.store.get_certificate(cert_id).await?;
        if let Ok(ca) = self.ca(&cert.ca_id).await
            && ca.kind == "external"
            && ca.status == "disabled"
        {
            return Err(Error::Conflict(format!(
                "certificate {cert_id} was issued by the upstream CA {:?}: revoke it through \
                 the REST API, the CLI or the dashboard, which forward it upstream",
                ca.name
            )));
        }
        self.record_revocation(cert_id, reason, None, actor).await
    }

    /// Mark a certificate revoked (with its audit event), then refresh its CA's CRL when
    /// the CA is ours. `upstream` names the external issuer that revoked it first; callers
    /// have checked the reason.
    pub(crate) async fn record_revocation(
        &self,
        cert_id: &str,
        reason: u8,
        upstream: Option<&str>,
        actor: &Actor,
    ) -> Result<CertRecord, Error> {
        let mut detail = serde_json::json!({"reason": reason});
        if let Some(u) = upstream {
            detail["upstream"] = serde_json::json!(u);
        }
        let ev = actor
            .event("certificate.revoke", "certificate")
            .object(cert_id)
            .detail(detail);
        let rec = self
            .store
            .revoke_certificate(cert_id, i64::from(reason), &actor.name, &ev, self.now())
            .await?;
        self.metrics.certificates_revoked.inc();
        // Alert rules subscribed to revocation hear of it; this never fails the revocation.
        crate::services::alerts::events::on_revoked(self, &rec).await;
        // The revocation is committed (and OCSP answers from it at once). If the CRL cannot
        // be signed now, the refresh job retries every minute; the caller is not told the
        // revocation failed, because it did not. The upstream publishes its own CRL.
        if upstream.is_none()
            && let Err(e) = self.regenerate_crl(&rec.ca_id).await
        {
            tracing::error!(ca = %rec.ca_id, error = %e, "CRL regeneration after revocation failed; will retry");
        }
        Ok(rec)
    }

    /// Build, sign and store a fresh CRL for a CA.
    pub async fn regenerate_crl(&self, ca_id: &str) -> Result<Vec<u8>, Error> {
        let ca = self.store.get_ca(ca_id).await?;
        let signer = self.signer(&ca)?;
        let (number, revoked) = self.store.crl_snapshot(ca_id).await?;
        let entries: Vec<RevokedEntry> = revoked
            .into_iter()
            .map(|r| RevokedEntry {
                serial_hex: r.serial,
                revoked_at: r.revoked_at,
                reason: u8::try_from(r.reason).ok().and_then(reason_from_code),
            })
            .collect();
        let now = self.now();
        let this_update = now - Duration::minutes(1);
        let next_update = now + Duration::seconds(self.settings.ca.crl_validity.as_secs() as i64);
        let base = &self.settings.server.public_url;
        let der = build_crl(
            &signer,
            &entries,
            number as u64,
            this_update,
            next_update,
            Some(&format!("{base}/crl/{ca_id}.crl")),
        )?;
        self.store
            .put_crl(
                ca_id,
                number,
                this_update.unix_timestamp(),
                next_update.unix_timestamp(),
                &der,
            )
            .await?;
        self.metrics.crls_generated.inc();
        Ok(der)
    }

    /// The current CRL of a CA, regenerated first if it is missing or past half its life.
    pub async fn crl(&self, ca_id: &str) -> Result<Vec<u8>, Error> {
        let now = self.now().unix_timestamp();
        let half = self.settings.ca.crl_validity.as_secs() as i64 / 2;
        match self.store.get_crl(ca_id).await? {
            Some((der, _this, next)) if next - now > half => Ok(der),
            _ => self.regenerate_crl(ca_id).await,
        }
    }

    /// Regenerate every CRL that is due (run by the background job).
    pub async fn refresh_due_crls(&self) -> Result<usize, Error> {
        let half = self.settings.ca.crl_validity.as_secs() as i64 / 2;
        let due = self
            .store
            .cas_needing_crl(self.now().unix_timestamp() + half)
            .await?;
        for id in &due {
            self.regenerate_crl(id).await?;
        }
        Ok(due.len())
    }

    /// Answer a DER OCSP request with a DER OCSP response (RFC 6960). Never fails: problems
    /// become OCSP error statuses.
    pub async fn ocsp(&self, request: &[u8]) -> Vec<u8> {
        self.metrics.ocsp_requests.inc();
        let req = match ocsp::parse_request(request) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "malformed OCSP request");
                return ocsp::error_response(OcspResponseStatus::MalformedRequest);
            }
        };
        match self.ocsp_inner(&req).await {
            Ok(Some(resp)) => resp,
            Ok(None) => ocsp::error_response(OcspResponseStatus::Unauthorized),
            Err(e) => {
                tracing::error!(error = %e, "OCSP response failed");
                ocsp::error_response(OcspResponseStatus::InternalError)
            }
        }
    }

    async fn ocsp_inner(&self, req: &ocsp::OcspRequest) -> Result<Option<Vec<u8>>, Error> {
        let cas = self.store.list_cas().await?;
        let Some(first) = req.cert_ids.first() else {
            return Ok(None);
        };
        let Some(ca) = cas.iter().find(|c| {
            c.status == "active"
                && c.cert_der
                    .as_deref()
                    .is_some_and(|d| first.matches_issuer(d))
        }) else {
            return Ok(None);
        };
        let ca_der = ca.cert_der.clone().unwrap_or_default();
        let now = self.now();
        let mut responses = Vec::new();
        for id in &req.cert_ids {
            let status = if id.matches_issuer(&ca_der) {
                match self
                    .store
                    .certificate_status(&ca.id, &hex::encode(&id.serial))
                    .await?
                {
                    Some((s, at, reason)) if s == "revoked" => CertStatus::Revoked {
                        revoked_at: crate::store::from_ts(at.unwrap_or(0)),
                        reason: reason.and_then(|r| u8::try_from(r).ok()),
                    },
                    Some(_) => CertStatus::Good,
                    None => CertStatus::Unknown,
                }
            } else {
                CertStatus::Unknown
            };
            responses.push(SingleResponse {
                cert_id: id.clone(),
                status,
                this_update: now - Duration::minutes(1),
                next_update: Some(now + Duration::hours(1)),
            });
        }
        let signer = self.signer(ca)?;
        let der = match self.settings.ca.ocsp_signer {
            OcspSigner::Ca => {
                let responder = Responder {
                    cert_der: signer.cert_der(),
                    key: signer.key(),
                    delegated: false,
                };
                ocsp::build_response(&responder, &responses, req.nonce.as_deref(), now)?
            }
            OcspSigner::Delegated => {
                let (cert, key) = self.ocsp_responder(ca, &signer).await?;
                let responder = Responder {
                    cert_der: &cert,
                    key: &key,
                    delegated: true,
                };
                ocsp::build_response(&responder, &responses, req.nonce.as_deref(), now)?
            }
        };
        Ok(Some(der))
    }

    /// The CA's delegated OCSP responder certificate and key, made or renewed when a third
    /// of its 30-day life is left.
    async fn ocsp_responder(
        &self,
        ca: &CaRecord,
        signer: &SigningCa,
    ) -> Result<(Vec<u8>, certkeeper_ca::KeyPair), Error> {
        if let Some(current) = self.current_ocsp_responder(&ca.id).await? {
            return Ok(current);
        }
        // One renewal at a time on this replica: concurrent requests wait for it instead of
        // each signing a responder of its own.
        let _renewing = self.ocsp_renewal.lock().await;
        if let Some(current) = self.current_ocsp_responder(&ca.id).await? {
            return Ok(current);
        }
        self.issue_ocsp_responder(ca, signer).await
    }

    /// The stored responder of a CA while more than ten days of it are left.
    async fn current_ocsp_responder(
        &self,
        ca_id: &str,
    ) -> Result<Option<(Vec<u8>, certkeeper_ca::KeyPair)>, Error> {
        let fresh = self.store.get_ca(ca_id).await?;
        if let (Some(cert), Some(sealed)) = (&fresh.ocsp_cert_der, &fresh.ocsp_key_sealed) {
            let info = certkeeper_ca::inspect_certificate(cert)?;
            if info.not_after - self.now() > Duration::days(10) {
                let key = self.master.open(sealed, &key_context("ocsp", ca_id))?;
                return Ok(Some((cert.clone(), certkeeper_ca::load_key(&key)?)));
            }
        }
        Ok(None)
    }

    /// The approved path for delegated OCSP responder certificates (RFC 6960 §4.2.2.2),
    /// the one kind of certificate signed outside profile policy: a fresh P-256 key, 30
    /// days, `id-kp-OCSPSigning` only. The certificate is recorded (a certificate without a
    /// profile, issued by `system`) with an audit event before it signs anything.
    async fn issue_ocsp_responder(
        &self,
        ca: &CaRecord,
        signer: &SigningCa,
    ) -> Result<(Vec<u8>, certkeeper_ca::KeyPair), Error> {
        let actor = Actor::system();
        let key = KeyAlgorithm::EcdsaP256.generate()?;
        let id = new_id();
        // A serial collision (2^-126) is answered by the unique constraint; try again.
        let mut attempt = 0;
        let cert = loop {
            attempt += 1;
            let cert = signer.issue_ocsp_responder(&key, self.now(), Duration::days(30))?;
            let rec = NewCertificate {
                id: id.clone(),
                ca_id: ca.id.clone(),
                profile_name: None,
                info: cert.info.clone(),
                der: cert.der.clone(),
                key_sealed: None,
                created_by: actor.name.clone(),
                created_at: self.now(),
            };
            let ev = actor
                .event("certificate.issue_ocsp_responder", "certificate")
                .object(&id)
                .detail(serde_json::json!({"ca": ca.id, "serial": cert.info.serial}));
            match self.store.insert_certificate(rec, ev, None).await {
                Ok(_) => break cert,
                Err(crate::store::StoreError::Conflict(_)) if attempt < 3 => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let sealed = self
            .master
            .seal(&key.serialize_der(), &key_context("ocsp", &ca.id))?;
        self.store
            .set_ocsp_responder(&ca.id, &cert.der, &sealed)
            .await?;
        Ok((cert.der, key))
    }
}

/// The registration authority as the ACME engine's [`certkeeper_acme::Issuer`]: issuance
/// under the directory's profile through the one door, with the order's move to `valid`
/// in the certificate's durable commit.
/// Refuse a reason code certkeeper does not revoke with.
pub fn check_revocation_reason(reason: u8) -> Result<(), Error> {
    if reason_from_code(reason).is_none() || reason == 6 || reason == 8 {
        return Err(Error::BadRequest(format!(
            "revocation reason {reason} is not allowed: use 0-5, 9 or 10 (revocation is permanent, so certificateHold (6) and removeFromCRL (8) are not offered; 7 is unassigned)"
        )));
    }
    Ok(())
}

impl certkeeper_acme::Issuer for Pki {
    async fn issue_for_order(
        &self,
        profile: &str,
        request: IssuanceRequest,
        actor: &certkeeper_acme::Actor,
        order_id: &str,
    ) -> Result<certkeeper_acme::IssuedForOrder, certkeeper_acme::IssuerError> {
        let profile = self.profile(profile).await.map_err(Error::from)?;
        let (issued, completed) = self
            .issue_for_acme_order(&profile, request, &acme_actor(actor), order_id)
            .await?;
        Ok(certkeeper_acme::IssuedForOrder {
            certificate_id: issued.id,
            order_completed: completed,
        })
    }

    async fn revoke(
        &self,
        certificate_id: &str,
        reason: u8,
        actor: &certkeeper_acme::Actor,
    ) -> Result<(), certkeeper_acme::IssuerError> {
        Pki::revoke(self, certificate_id, reason, &acme_actor(actor)).await?;
        Ok(())
    }

    async fn chain(&self, ca_id: &str) -> Result<Vec<Vec<u8>>, certkeeper_acme::IssuerError> {
        let ca = self.ca(ca_id).await.map_err(Error::from)?;
        Ok(self.chain_of(&ca).await?)
    }
}

fn acme_actor(a: &certkeeper_acme::Actor) -> Actor {
    Actor {
        name: a.name.clone(),
        source: a.source.clone(),
    }
}

impl Pki {
    /// The ACME engine's storage over this registration authority's database.
    pub fn acme_db(&self) -> crate::store::AcmeDb {
        crate::store::AcmeDb::new(self.store.clone(), self.master.clone(), self.clock.clone())
    }

    /// The clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }
}
