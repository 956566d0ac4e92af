//! The order flow without a server: an in-memory [`AcmeStore`] that is also the
//! [`Issuer`], a manual clock, and requests signed with real keys.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use certkeeper_ca::{DnsRule, IssuanceRequest, ManualClock, Profile};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;
use crate::store::{
    AcmeAuthz, AcmeChallenge, AcmeOrder, Actor, Audit, EabKey, IssuedForOrder, NewAcmeAuthz,
    StoredCertificate,
};
use crate::{NonceKey, b64};

// ---------------------------------------------------------------- the in-memory store

#[derive(Default)]
struct Db {
    next_id: u64,
    used_nonces: HashSet<String>,
    rates: HashMap<(String, i64), i64>,
    accounts: HashMap<String, AcmeAccount>,
    eab: HashMap<String, EabKey>,
    orders: HashMap<String, AcmeOrder>,
    processing_since: HashMap<String, i64>,
    order_authzs: HashMap<String, Vec<String>>,
    authzs: HashMap<String, AcmeAuthz>,
    challenges: HashMap<String, AcmeChallenge>,
    certs: HashMap<String, StoredCertificate>,
    audit: Vec<Audit>,
    /// What the issuer answers next: `None` issues.
    refuse: Option<IssuerError>,
    /// Issued certificates: order id → certificate id.
    issued: Vec<(String, String)>,
    /// The next issuance finds its order already ended as interrupted.
    give_up_first: bool,
}

/// The store and the issuer, sharing one database as the real ones do.
#[derive(Clone)]
struct Mem {
    db: Arc<Mutex<Db>>,
    key: Arc<NonceKey>,
}

impl Mem {
    fn new() -> Mem {
        Mem {
            db: Arc::default(),
            key: Arc::new(NonceKey::new(&[7; 32])),
        }
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().unwrap()
    }

    fn actions(&self) -> Vec<String> {
        self.db().audit.iter().map(|a| a.action.clone()).collect()
    }
}

type R<T> = Result<T, StoreError>;

impl AcmeStore for Mem {
    fn new_id(&self) -> String {
        let mut db = self.db();
        db.next_id += 1;
        format!("id{:06}", db.next_id)
    }

    async fn nonce_key(&self) -> R<&NonceKey> {
        Ok(&self.key)
    }

    async fn nonce_use(&self, nonce: &str, _expires_at: i64, _now: i64) -> R<bool> {
        Ok(self.db().used_nonces.insert(nonce.to_owned()))
    }

    async fn rate_count(&self, bucket: &str, window_start: i64) -> R<i64> {
        let mut db = self.db();
        let n = db
            .rates
            .entry((bucket.to_owned(), window_start))
            .or_default();
        *n += 1;
        Ok(*n)
    }

    async fn account(&self, id: &str) -> R<Option<AcmeAccount>> {
        Ok(self.db().accounts.get(id).cloned())
    }

    async fn account_by_key(&self, profile: &str, thumbprint: &str) -> R<Option<AcmeAccount>> {
        Ok(self
            .db()
            .accounts
            .values()
            .find(|a| a.profile == profile && a.thumbprint == thumbprint)
            .cloned())
    }

    async fn account_insert(
        &self,
        a: &AcmeAccount,
        eab_key: Option<&str>,
        audit: &Audit,
    ) -> R<bool> {
        let mut db = self.db();
        if db
            .accounts
            .values()
            .any(|o| o.profile == a.profile && o.thumbprint == a.thumbprint)
        {
            return Err(StoreError::Conflict("acme_accounts_key".into()));
        }
        if let Some(k) = eab_key {
            match db.eab.get_mut(k) {
                Some(key) if key.account_id.is_none() => key.account_id = Some(a.id.clone()),
                _ => return Ok(false),
            }
        }
        db.accounts.insert(a.id.clone(), a.clone());
        db.audit.push(audit.clone());
        Ok(true)
    }

    async fn account_update(&self, a: &AcmeAccount, audit: &Audit, _now: i64) -> R<()> {
        let mut db = self.db();
        if db
            .accounts
            .values()
            .any(|o| o.id != a.id && o.profile == a.profile && o.thumbprint == a.thumbprint)
        {
            return Err(StoreError::Conflict("acme_accounts_key".into()));
        }
        db.accounts.insert(a.id.clone(), a.clone());
        db.audit.push(audit.clone());
        Ok(())
    }

    async fn eab_key(&self, id: &str) -> R<Option<EabKey>> {
        Ok(self.db().eab.get(id).cloned())
    }

    async fn pending_authz_count(&self, account_id: &str, now: i64) -> R<i64> {
        Ok(self
            .db()
            .authzs
            .values()
            .filter(|a| a.account_id == account_id && a.status == "pending" && a.expires_at > now)
            .count() as i64)
    }

    async fn reusable_authz(
        &self,
        account_id: &str,
        id_type: &str,
        id_value: &str,
        valid_until: i64,
    ) -> R<Option<AcmeAuthz>> {
        Ok(self
            .db()
            .authzs
            .values()
            .filter(|a| {
                a.account_id == account_id
                    && a.id_type == id_type
                    && a.id_value == id_value
                    && a.status == "valid"
                    && a.expires_at > valid_until
            })
            .max_by_key(|a| a.expires_at)
            .cloned())
    }

    async fn order_insert(
        &self,
        o: &AcmeOrder,
        new: &[NewAcmeAuthz],
        reused: &[String],
        audit: &Audit,
    ) -> R<()> {
        let mut db = self.db();
        if o.replaced_id.is_some() && db.orders.values().any(|x| x.replaced_id == o.replaced_id) {
            return Err(StoreError::Conflict("acme_orders_replaced".into()));
        }
        let mut links = Vec::new();
        for n in new {
            db.authzs.insert(n.authz.id.clone(), n.authz.clone());
            for c in &n.challenges {
                db.challenges.insert(c.id.clone(), c.clone());
            }
            links.push(n.authz.id.clone());
        }
        links.extend(reused.iter().cloned());
        links.sort();
        db.order_authzs.insert(o.id.clone(), links);
        db.orders.insert(o.id.clone(), o.clone());
        db.audit.push(audit.clone());
        Ok(())
    }

    async fn order(&self, id: &str) -> R<Option<AcmeOrder>> {
        Ok(self.db().orders.get(id).cloned())
    }

    async fn order_with_authzs(&self, id: &str) -> R<Option<(AcmeOrder, Vec<AcmeAuthz>)>> {
        let db = self.db();
        Ok(db.orders.get(id).map(|o| {
            let authzs = db.order_authzs[id]
                .iter()
                .map(|a| db.authzs[a].clone())
                .collect();
            (o.clone(), authzs)
        }))
    }

    async fn order_ids(&self, account_id: &str) -> R<Vec<String>> {
        let mut ids: Vec<String> = self
            .db()
            .orders
            .values()
            .filter(|o| o.account_id == account_id)
            .map(|o| o.id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn order_transition(
        &self,
        id: &str,
        from: &str,
        to: &str,
        error: Option<&str>,
        certificate_id: Option<&str>,
    ) -> R<bool> {
        let mut db = self.db();
        match db.orders.get_mut(id) {
            Some(o) if o.status == from => {
                o.status = to.into();
                o.error = error.map(Into::into);
                o.certificate_id = certificate_id.map(Into::into);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn order_start_processing(&self, id: &str, now: i64) -> R<bool> {
        let mut db = self.db();
        match db.orders.get_mut(id) {
            Some(o) if o.status == "pending" => {
                o.status = "processing".into();
                db.processing_since.insert(id.into(), now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn fail_stuck_orders(&self, before: i64, error: &str, _now: i64) -> R<Vec<String>> {
        let mut db = self.db();
        let ids: Vec<String> = db
            .orders
            .values()
            .filter(|o| o.status == "processing" && db.processing_since[&o.id] < before)
            .map(|o| o.id.clone())
            .collect();
        for id in &ids {
            let o = db.orders.get_mut(id).unwrap();
            o.status = "invalid".into();
            o.error = Some(error.into());
            db.audit.push(Actor::acme(None, None).event(
                "acme.order.interrupted",
                "acme_order",
                id,
            ));
        }
        Ok(ids)
    }

    async fn order_by_certificate(&self, certificate_id: &str) -> R<Option<AcmeOrder>> {
        Ok(self
            .db()
            .orders
            .values()
            .find(|o| o.certificate_id.as_deref() == Some(certificate_id))
            .cloned())
    }

    async fn is_replaced(&self, certificate_id: &str) -> R<bool> {
        Ok(self
            .db()
            .orders
            .values()
            .any(|o| o.replaced_id.as_deref() == Some(certificate_id)))
    }

    async fn authz(&self, id: &str) -> R<Option<AcmeAuthz>> {
        Ok(self.db().authzs.get(id).cloned())
    }

    async fn authz_with_challenges(&self, id: &str) -> R<Option<(AcmeAuthz, Vec<AcmeChallenge>)>> {
        let Some(a) = self.authz(id).await? else {
            return Ok(None);
        };
        Ok(Some((a, self.challenges(id).await?)))
    }

    async fn authz_deactivate(&self, id: &str, audit: &Audit, _now: i64) -> R<bool> {
        let mut db = self.db();
        match db.authzs.get_mut(id) {
            Some(a) if a.status == "pending" || a.status == "valid" => {
                a.status = "deactivated".into();
                db.audit.push(audit.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn challenges(&self, authz_id: &str) -> R<Vec<AcmeChallenge>> {
        let mut v: Vec<AcmeChallenge> = self
            .db()
            .challenges
            .values()
            .filter(|c| c.authz_id == authz_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.kind.cmp(&b.kind));
        Ok(v)
    }

    async fn challenge(&self, id: &str) -> R<Option<AcmeChallenge>> {
        Ok(self.db().challenges.get(id).cloned())
    }

    async fn challenge_with_authz(&self, id: &str) -> R<Option<(AcmeChallenge, AcmeAuthz)>> {
        let db = self.db();
        Ok(db
            .challenges
            .get(id)
            .map(|c| (c.clone(), db.authzs[&c.authz_id].clone())))
    }

    async fn challenge_start(&self, id: &str, authz_id: &str, now: i64) -> R<bool> {
        let mut db = self.db();
        if db
            .authzs
            .get(authz_id)
            .is_none_or(|a| a.status != "pending")
        {
            return Ok(false);
        }
        match db.challenges.get_mut(id) {
            Some(c) if c.status == "pending" => {
                c.status = "processing".into();
                c.processing_since = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn challenge_finish(
        &self,
        c: &AcmeChallenge,
        error: Option<&str>,
        audit: &Audit,
        now: i64,
    ) -> R<bool> {
        let mut db = self.db();
        let status = if error.is_none() { "valid" } else { "invalid" };
        match db.challenges.get_mut(&c.id) {
            Some(ch) if ch.status == "processing" => {
                ch.status = status.into();
                ch.error = error.map(Into::into);
                ch.validated_at = error.is_none().then_some(now);
                ch.processing_since = None;
            }
            _ => return Ok(false),
        }
        if let Some(a) = db.authzs.get_mut(&c.authz_id)
            && a.status == "pending"
        {
            a.status = status.into();
        }
        db.audit.push(audit.clone());
        Ok(true)
    }

    async fn stuck_challenges(&self, started_before: i64, limit: i64) -> R<Vec<(String, i64)>> {
        let mut v: Vec<(String, i64)> = self
            .db()
            .challenges
            .values()
            .filter(|c| c.status == "processing")
            .map(|c| (c.id.clone(), c.processing_since.unwrap_or(0)))
            .filter(|(_, s)| *s < started_before)
            .collect();
        v.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        v.truncate(limit as usize);
        Ok(v)
    }

    async fn challenge_reclaim(&self, id: &str, since: i64, audit: &Audit, now: i64) -> R<bool> {
        let mut db = self.db();
        match db.challenges.get_mut(id) {
            Some(c) if c.status == "processing" && c.processing_since.unwrap_or(0) == since => {
                c.processing_since = Some(now);
                db.audit.push(audit.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn certificate(&self, id: &str) -> R<Option<StoredCertificate>> {
        Ok(self.db().certs.get(id).cloned())
    }

    async fn account_certificate(
        &self,
        certificate_id: &str,
        account_id: &str,
    ) -> R<Option<(String, Vec<u8>)>> {
        let owned = self
            .order_by_certificate(certificate_id)
            .await?
            .is_some_and(|o| o.account_id == account_id);
        Ok(self
            .db()
            .certs
            .get(certificate_id)
            .filter(|_| owned)
            .map(|c| (c.ca_id.clone(), c.der.clone())))
    }

    async fn certificate_id_by_fingerprint(&self, fingerprint: &str) -> R<Option<String>> {
        Ok(self
            .db()
            .certs
            .values()
            .find(|c| {
                certkeeper_ca::inspect_certificate(&c.der)
                    .is_ok_and(|i| i.fingerprint_sha256 == fingerprint)
            })
            .map(|c| c.id.clone()))
    }

    async fn certificate_ids_by_serial(&self, serial: &str) -> R<Vec<String>> {
        Ok(self
            .db()
            .certs
            .values()
            .filter(|c| {
                certkeeper_ca::inspect_certificate(&c.der).is_ok_and(|i| i.serial == serial)
            })
            .map(|c| c.id.clone())
            .collect())
    }

    async fn renewal_override(&self, _certificate_id: &str, _ca_id: &str) -> R<Option<(i64, i64)>> {
        Ok(None)
    }
}

impl Issuer for Mem {
    async fn issue_for_order(
        &self,
        _profile: &str,
        request: IssuanceRequest,
        _actor: &Actor,
        order_id: &str,
    ) -> Result<IssuedForOrder, IssuerError> {
        let mut db = self.db();
        if let Some(e) = db.refuse.take() {
            return Err(e);
        }
        assert!(
            !request.dns_names.is_empty(),
            "the CSR's names reach the issuer"
        );
        db.next_id += 1;
        let certificate_id = format!("cert{}", db.next_id);
        if std::mem::take(&mut db.give_up_first)
            && let Some(o) = db.orders.get_mut(order_id)
        {
            o.status = "invalid".into();
            o.error = Some(Problem::internal().to_json().to_string());
        }
        // One commit: the certificate and the order's move to valid.
        let completed = match db.orders.get_mut(order_id) {
            Some(o) if o.status == "processing" => {
                o.status = "valid".into();
                o.certificate_id = Some(certificate_id.clone());
                true
            }
            _ => false,
        };
        db.issued.push((order_id.into(), certificate_id.clone()));
        Ok(IssuedForOrder {
            certificate_id,
            order_completed: completed,
        })
    }

    async fn revoke(
        &self,
        certificate_id: &str,
        _reason: u8,
        _actor: &Actor,
    ) -> Result<(), IssuerError> {
        let mut db = self.db();
        let c = db
            .certs
            .get_mut(certificate_id)
            .ok_or_else(|| IssuerError::NotFound("certificate".into()))?;
        if c.status == "revoked" {
            return Err(IssuerError::Conflict("already revoked".into()));
        }
        c.status = "revoked".into();
        Ok(())
    }

    async fn chain(&self, _ca_id: &str) -> Result<Vec<Vec<u8>>, IssuerError> {
        Ok(Vec::new())
    }
}

// ---------------------------------------------------------------- clients and requests

const BASE: &str = "https://acme.test/acme/web";
const START: i64 = 1_800_000_000;

/// An ES256 account key.
struct Key {
    pkcs8: Vec<u8>,
    kp: EcdsaKeyPair,
    jwk: Value,
}

impl Key {
    fn new() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap()
            .as_ref()
            .to_vec();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).unwrap();
        let p = kp.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])});
        Key { pkcs8, kp, jwk }
    }

    /// A flattened JWS; `payload` `None` is POST-as-GET.
    fn sign(&self, kid: Option<&str>, nonce: &str, url: &str, payload: Option<&Value>) -> Vec<u8> {
        let mut header = json!({"alg": "ES256", "nonce": nonce, "url": url});
        match kid {
            Some(k) => header["kid"] = json!(k),
            None => header["jwk"] = self.jwk.clone(),
        }
        self.sign_header(header, payload)
    }

    fn sign_header(&self, header: Value, payload: Option<&Value>) -> Vec<u8> {
        let protected = b64(header.to_string().as_bytes());
        let payload = payload
            .map(|p| b64(p.to_string().as_bytes()))
            .unwrap_or_default();
        let sig = self
            .kp
            .sign(
                &SystemRandom::new(),
                format!("{protected}.{payload}").as_bytes(),
            )
            .unwrap();
        json!({"protected": protected, "payload": payload, "signature": b64(sig.as_ref())})
            .to_string()
            .into_bytes()
    }

    /// A CSR for `names` signed with this key.
    fn csr(&self, names: &[&str]) -> String {
        let key = certkeeper_ca::KeyPair::try_from(self.pkcs8.as_slice()).unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        // Names in the subjectAltName only: no common name.
        params.distinguished_name = rcgen::DistinguishedName::new();
        b64(params.serialize_request(&key).unwrap().der())
    }
}

struct T {
    engine: Engine<Mem, Mem>,
    mem: Mem,
    clock: Arc<ManualClock>,
    profile: Profile,
}

fn config() -> Config {
    Config {
        nonce_lifetime_secs: 3600,
        order_lifetime_secs: 7 * 86400,
        authz_lifetime_secs: 30 * 86400,
        terms_of_service: None,
        website: None,
        new_orders_per_account_per_hour: 0,
        new_accounts_per_ip_per_hour: 0,
        stuck_validation_after_secs: 300,
        max_concurrent_validations: 0,
        max_concurrent_validations_per_account: 0,
        max_pending_authorizations_per_account: 0,
        validation: ValidationConfig {
            http01_port: 80,
            tls_alpn01_port: 443,
            dns_resolvers: Vec::new(),
            timeout: std::time::Duration::from_secs(5),
            caa_identities: Vec::new(),
        },
    }
}

impl T {
    fn new() -> T {
        T::with(config())
    }

    fn with(config: Config) -> T {
        let mem = Mem::new();
        let clock = Arc::new(ManualClock::new(
            OffsetDateTime::from_unix_timestamp(START).unwrap(),
        ));
        let mut profile = Profile::tls_server("web");
        profile.allowed_dns_names = vec![DnsRule::Suffix("example.com".into())];
        profile.max_names = 3;
        T {
            engine: Engine::new(mem.clone(), mem.clone(), clock.clone(), config),
            mem,
            clock,
            profile,
        }
    }

    fn call<'a>(&'a self, url: &'a str) -> Call<'a> {
        Call {
            profile: &self.profile,
            base: BASE,
            url,
            client_ip: Some("192.0.2.1"),
            eab_required: false,
        }
    }

    fn advance(&self, secs: i64) {
        self.clock.advance(time::Duration::seconds(secs));
    }

    async fn nonce(&self) -> String {
        self.engine.new_nonce().await.unwrap()
    }

    /// Register an account for `key`; returns its URL (the kid).
    async fn account(&self, key: &Key) -> String {
        let url = format!("{BASE}/new-account");
        let body = key.sign(None, &self.nonce().await, &url, Some(&json!({})));
        let a = self
            .engine
            .new_account(&self.call(&url), &body)
            .await
            .unwrap();
        assert_eq!(a.status, 201);
        a.location.unwrap()
    }

    async fn post(&self, key: &Key, kid: &str, url: &str, payload: Option<&Value>) -> Vec<u8> {
        key.sign(Some(kid), &self.nonce().await, url, payload)
    }

    async fn new_order(&self, key: &Key, kid: &str, names: &[&str]) -> Result<Answer, AcmeError> {
        let url = format!("{BASE}/new-order");
        let ids: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect();
        let body = self
            .post(key, kid, &url, Some(&json!({ "identifiers": ids })))
            .await;
        self.engine.new_order(&self.call(&url), &body).await
    }

    async fn get_order(&self, key: &Key, kid: &str, order_url: &str) -> Value {
        let id = last(order_url);
        let body = self.post(key, kid, order_url, None).await;
        let a = self
            .engine
            .order(&self.call(order_url), id, &body)
            .await
            .unwrap();
        a.json_body().unwrap().clone()
    }

    async fn start(&self, key: &Key, kid: &str, chall_url: &str) -> (Answer, Option<Validation>) {
        let body = self.post(key, kid, chall_url, Some(&json!({}))).await;
        self.engine
            .challenge(&self.call(chall_url), last(chall_url), &body)
            .await
            .unwrap()
    }

    /// Complete every authorization of an order by its http-01 challenge.
    async fn authorize(&self, key: &Key, kid: &str, order: &Value) {
        for authz_url in order["authorizations"].as_array().unwrap() {
            let authz_url = authz_url.as_str().unwrap();
            let body = self.post(key, kid, authz_url, None).await;
            let a = self
                .engine
                .authz(&self.call(authz_url), last(authz_url), &body)
                .await
                .unwrap();
            let v = a.json_body().unwrap();
            if v["status"] == "valid" {
                continue;
            }
            let http = v["challenges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "http-01")
                .unwrap()["url"]
                .as_str()
                .unwrap()
                .to_string();
            let (_, v) = self.start(key, kid, &http).await;
            assert!(
                self.engine
                    .record_validation(&v.unwrap(), Ok(()))
                    .await
                    .unwrap()
            );
        }
    }

    async fn finalize(
        &self,
        key: &Key,
        kid: &str,
        order: &Value,
        csr: String,
    ) -> Result<Answer, AcmeError> {
        let url = order["finalize"].as_str().unwrap();
        let body = self.post(key, kid, url, Some(&json!({ "csr": csr }))).await;
        let id = url.trim_end_matches("/finalize");
        self.engine.finalize(&self.call(url), last(id), &body).await
    }

    /// An order for `names`, authorized and finalized; returns it and its certificate id.
    async fn issued(&self, key: &Key, kid: &str, names: &[&str]) -> (Value, String) {
        let a = self.new_order(key, kid, names).await.unwrap();
        let order = a.json_body().unwrap().clone();
        self.authorize(key, kid, &order).await;
        let done = self
            .finalize(key, kid, &order, Key::new().csr(names))
            .await
            .unwrap();
        let v = done.json_body().unwrap().clone();
        let cert = last(v["certificate"].as_str().unwrap()).to_string();
        (v, cert)
    }
}

fn last(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

fn refused(r: Result<Answer, AcmeError>) -> Problem {
    match r {
        Err(AcmeError::Refused(p)) => p,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// ---------------------------------------------------------------- accounts and nonces

#[tokio::test]
async fn an_account_is_found_again_by_its_key() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let url = format!("{BASE}/new-account");
    let again = key.sign(
        None,
        &t.nonce().await,
        &url,
        Some(&json!({"onlyReturnExisting": true})),
    );
    let a = t.engine.new_account(&t.call(&url), &again).await.unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.location.as_deref(), Some(kid.as_str()));
    let other = Key::new();
    let body = other.sign(
        None,
        &t.nonce().await,
        &url,
        Some(&json!({"onlyReturnExisting": true})),
    );
    let p = refused(t.engine.new_account(&t.call(&url), &body).await);
    assert_eq!(p.kind, ProblemType::AccountDoesNotExist);
    assert_eq!(t.mem.actions(), vec!["acme.account.create"]);
}

#[tokio::test]
async fn a_nonce_is_accepted_once() {
    let t = T::new();
    let key = Key::new();
    let url = format!("{BASE}/new-account");
    let nonce = t.nonce().await;
    let body = key.sign(None, &nonce, &url, Some(&json!({})));
    t.engine.new_account(&t.call(&url), &body).await.unwrap();
    let p = refused(t.engine.new_account(&t.call(&url), &body).await);
    assert_eq!(p.kind, ProblemType::BadNonce);
    assert_eq!(p.detail, "the nonce was used already");
    // Past its lifetime a nonce is refused before it is looked up.
    let old = t.nonce().await;
    t.advance(3601);
    let body = key.sign(None, &old, &url, Some(&json!({})));
    assert_eq!(
        refused(t.engine.new_account(&t.call(&url), &body).await).kind,
        ProblemType::BadNonce
    );
}

#[tokio::test]
async fn the_jws_url_must_be_the_request_url() {
    let t = T::new();
    let key = Key::new();
    let body = key.sign(
        None,
        &t.nonce().await,
        &format!("{BASE}/new-order"),
        Some(&json!({})),
    );
    let url = format!("{BASE}/new-account");
    assert_eq!(
        refused(t.engine.new_account(&t.call(&url), &body).await).kind,
        ProblemType::Unauthorized
    );
}

#[tokio::test]
async fn a_deactivated_account_is_refused_afterwards() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let body = t
        .post(&key, &kid, &kid, Some(&json!({"status": "deactivated"})))
        .await;
    let a = t
        .engine
        .account(&t.call(&kid), last(&kid), &body)
        .await
        .unwrap();
    assert_eq!(a.json_body().unwrap()["status"], "deactivated");
    assert_eq!(t.mem.db().accounts[last(&kid)].status, "deactivated");
    let p = refused(t.new_order(&key, &kid, &["www.example.com"]).await);
    assert_eq!(p.kind, ProblemType::Unauthorized);
    assert_eq!(p.detail, "the account is deactivated");
    // Other status changes are refused.
    let t = T::new();
    let kid = t.account(&key).await;
    let body = t
        .post(&key, &kid, &kid, Some(&json!({"status": "revoked"})))
        .await;
    let p = refused(t.engine.account(&t.call(&kid), last(&kid), &body).await);
    assert_eq!(p.kind, ProblemType::Malformed);
}

#[tokio::test]
async fn an_account_is_only_read_by_its_own_key() {
    let t = T::new();
    let (a, b) = (Key::new(), Key::new());
    let kid_a = t.account(&a).await;
    let kid_b = t.account(&b).await;
    let body = t.post(&b, &kid_b, &kid_a, None).await;
    let p = refused(t.engine.account(&t.call(&kid_a), last(&kid_a), &body).await);
    assert_eq!(p.kind, ProblemType::Unauthorized);
}

async fn key_change_body(t: &T, old: &Key, new: &Key, kid: &str, account: &str) -> Vec<u8> {
    let url = format!("{BASE}/key-change");
    let inner = new.sign_header(
        json!({"alg": "ES256", "jwk": new.jwk, "url": url}),
        Some(&json!({"account": account, "oldKey": old.jwk})),
    );
    let inner: Value = serde_json::from_slice(&inner).unwrap();
    t.post(old, kid, &url, Some(&inner)).await
}

#[tokio::test]
async fn a_key_change_moves_the_account_to_the_new_key() {
    let t = T::new();
    let (old, new) = (Key::new(), Key::new());
    let kid = t.account(&old).await;
    let url = format!("{BASE}/key-change");
    let body = key_change_body(&t, &old, &new, &kid, &kid).await;
    let a = t.engine.key_change(&t.call(&url), &body).await.unwrap();
    assert_eq!(a.status, 200);
    let stored = t.mem.db().accounts[last(&kid)].clone();
    assert_eq!(
        stored.thumbprint,
        crate::PublicJwk::from_json(&new.jwk).unwrap().thumbprint()
    );
    // The new key signs for the account; the old one no longer does.
    assert!(t.new_order(&new, &kid, &["www.example.com"]).await.is_ok());
    assert_eq!(
        refused(t.new_order(&old, &kid, &["www.example.com"]).await).kind,
        ProblemType::Malformed
    );
    assert!(
        t.mem
            .actions()
            .contains(&"acme.account.key_change".to_string())
    );
}

#[tokio::test]
async fn a_key_change_to_a_key_in_use_is_a_conflict() {
    let t = T::new();
    let (old, taken) = (Key::new(), Key::new());
    let kid = t.account(&old).await;
    let other = t.account(&taken).await;
    let url = format!("{BASE}/key-change");
    let body = key_change_body(&t, &old, &taken, &kid, &kid).await;
    let p = refused(t.engine.key_change(&t.call(&url), &body).await);
    assert_eq!(p.kind, ProblemType::Conflict);
    assert_eq!(p.location.as_deref(), Some(other.as_str()));
    // Naming another account is refused too.
    let body = key_change_body(&t, &old, &Key::new(), &kid, &other).await;
    assert_eq!(
        refused(t.engine.key_change(&t.call(&url), &body).await).kind,
        ProblemType::Malformed
    );
}

// ---------------------------------------------------------------- orders and authorizations

#[tokio::test]
async fn a_new_order_is_pending_with_an_authorization_per_name() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t
        .new_order(
            &key,
            &kid,
            &["www.example.com", "WWW.example.com", "api.example.com"],
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201);
    let order = a.json_body().unwrap();
    assert_eq!(order["status"], "pending");
    assert_eq!(
        order["identifiers"].as_array().unwrap().len(),
        2,
        "duplicates merged"
    );
    assert_eq!(order["authorizations"].as_array().unwrap().len(), 2);
    let loc = a.location.clone().unwrap();
    assert!(loc.starts_with(&format!("{BASE}/order/")));
    assert_eq!(order["finalize"], format!("{loc}/finalize"));
    let db = t.mem.db();
    assert_eq!(db.authzs.len(), 2);
    // Three challenge types per name, sharing one token.
    assert_eq!(db.challenges.len(), 6);
    for a in db.authzs.values() {
        let tokens: HashSet<&String> = db
            .challenges
            .values()
            .filter(|c| c.authz_id == a.id)
            .map(|c| &c.token)
            .collect();
        assert_eq!(tokens.len(), 1);
    }
    assert!(db.audit.iter().any(|e| e.action == "acme.order.create"));
}

#[tokio::test]
async fn a_valid_authorization_is_reused_by_the_next_order() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let first = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let first = first.json_body().unwrap().clone();
    t.authorize(&key, &kid, &first).await;
    let second = t
        .new_order(&key, &kid, &["www.example.com", "api.example.com"])
        .await
        .unwrap();
    let second = second.json_body().unwrap();
    let authzs = second["authorizations"].as_array().unwrap();
    assert!(authzs.contains(&first["authorizations"][0]));
    assert_eq!(
        t.mem.db().authzs.len(),
        2,
        "one new authorization, one reused"
    );
    // Another account does not reuse it.
    let other = Key::new();
    let kid2 = t.account(&other).await;
    let third = t
        .new_order(&other, &kid2, &["www.example.com"])
        .await
        .unwrap();
    assert_ne!(
        third.json_body().unwrap()["authorizations"][0],
        first["authorizations"][0]
    );
}

#[tokio::test]
async fn identifiers_outside_the_profile_are_rejected() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let p = refused(t.new_order(&key, &kid, &["www.example.org"]).await);
    assert_eq!(p.kind, ProblemType::RejectedIdentifier);
    assert_eq!(p.subproblems.len(), 1);
    assert_eq!(p.detail, "www.example.org is not allowed by this profile");
    let p = refused(
        t.new_order(
            &key,
            &kid,
            &[
                "a.example.com",
                "b.example.com",
                "c.example.com",
                "d.example.com",
            ],
        )
        .await,
    );
    assert_eq!(p.kind, ProblemType::RejectedIdentifier);
    assert_eq!(
        p.detail,
        "at most 3 identifiers per order under this profile"
    );
    let p = refused(t.new_order(&key, &kid, &[]).await);
    assert_eq!(p.kind, ProblemType::Malformed);
    assert!(
        t.mem.db().orders.is_empty(),
        "nothing stored for a refused order"
    );
}

#[tokio::test]
async fn new_orders_are_rate_limited_per_account() {
    let t = T::with(Config {
        new_orders_per_account_per_hour: 2,
        ..config()
    });
    let key = Key::new();
    let kid = t.account(&key).await;
    for _ in 0..2 {
        t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    }
    let p = refused(t.new_order(&key, &kid, &["www.example.com"]).await);
    assert_eq!(p.kind, ProblemType::RateLimited);
    let wait = p.retry_after().unwrap();
    assert!(wait > 0 && wait <= 3600);
    // The next window is open again.
    t.advance(wait as i64);
    assert!(t.new_order(&key, &kid, &["www.example.com"]).await.is_ok());
}

#[tokio::test]
async fn an_order_becomes_ready_when_every_authorization_is_valid() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t
        .new_order(&key, &kid, &["www.example.com", "api.example.com"])
        .await
        .unwrap();
    let loc = a.location.clone().unwrap();
    let order = a.json_body().unwrap().clone();
    // One of two authorizations valid: still pending.
    let authz_url = order["authorizations"][0].as_str().unwrap();
    let body = t.post(&key, &kid, authz_url, None).await;
    let authz = t
        .engine
        .authz(&t.call(authz_url), last(authz_url), &body)
        .await
        .unwrap();
    let chall = authz.json_body().unwrap()["challenges"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = t.start(&key, &kid, &chall).await;
    t.engine
        .record_validation(&v.unwrap(), Ok(()))
        .await
        .unwrap();
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "pending");
    let body = t.post(&key, &kid, authz_url, None).await;
    let authz = t
        .engine
        .authz(&t.call(authz_url), last(authz_url), &body)
        .await
        .unwrap();
    let authz = authz.json_body().unwrap();
    assert_eq!(authz["status"], "valid");
    let chall = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["url"] == json!(chall))
        .unwrap();
    assert_eq!(chall["status"], "valid");
    assert!(chall["validated"].is_string());
    t.authorize(&key, &kid, &order).await;
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "ready");
}

#[tokio::test]
async fn a_failed_challenge_invalidates_its_authorization_and_order() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let loc = a.location.clone().unwrap();
    let authz_id = last(
        a.json_body().unwrap()["authorizations"][0]
            .as_str()
            .unwrap(),
    )
    .to_string();
    let chall = t.mem.challenges(&authz_id).await.unwrap()[0].id.clone();
    let (_, v) = t.start(&key, &kid, &format!("{BASE}/chall/{chall}")).await;
    let v = v.unwrap();
    let failure = Problem::new(ProblemType::Connection, "nothing listens");
    assert!(t.engine.record_validation(&v, Err(failure)).await.unwrap());
    // A second outcome for the same validation is not recorded.
    assert!(!t.engine.record_validation(&v, Ok(())).await.unwrap());
    let db_authz = t.mem.db().authzs[&authz_id].clone();
    assert_eq!(db_authz.status, "invalid");
    let c = t.mem.db().challenges[&chall].clone();
    assert_eq!(c.status, "invalid");
    assert!(c.error.unwrap().contains("nothing listens"));
    let order = t.get_order(&key, &kid, &loc).await;
    assert_eq!(order["status"], "invalid");
}

#[tokio::test]
async fn a_challenge_starts_once() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let authz_id = last(
        a.json_body().unwrap()["authorizations"][0]
            .as_str()
            .unwrap(),
    )
    .to_string();
    let challs = t.mem.challenges(&authz_id).await.unwrap();
    let url = format!("{BASE}/chall/{}", challs[0].id);
    let (first, v) = t.start(&key, &kid, &url).await;
    let v = v.expect("the first POST starts the validation");
    assert_eq!(v.challenge.id, challs[0].id);
    assert_eq!(v.identifier.value, "www.example.com");
    assert_eq!(first.json_body().unwrap()["status"], "processing");
    assert_eq!(first.retry_after, Some(1));
    assert_eq!(
        first.up.as_deref(),
        Some(format!("{BASE}/authz/{authz_id}").as_str())
    );
    let (second, again) = t.start(&key, &kid, &url).await;
    assert!(again.is_none(), "a second POST does not validate again");
    assert_eq!(second.json_body().unwrap()["status"], "processing");
    // Once the authorization is valid, no other challenge of it starts.
    t.engine.record_validation(&v, Ok(())).await.unwrap();
    let (_, other) = t
        .start(&key, &kid, &format!("{BASE}/chall/{}", challs[1].id))
        .await;
    assert!(other.is_none());
    // Someone else's challenge is not found.
    let stranger = Key::new();
    let kid2 = t.account(&stranger).await;
    let body = t.post(&stranger, &kid2, &url, Some(&json!({}))).await;
    let e = t
        .engine
        .challenge(&t.call(&url), &challs[0].id, &body)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ProblemType::Unauthorized);
}

#[tokio::test]
async fn a_stuck_validation_is_reclaimed_once() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let authz_id = last(
        a.json_body().unwrap()["authorizations"][0]
            .as_str()
            .unwrap(),
    )
    .to_string();
    let chall = t.mem.challenges(&authz_id).await.unwrap()[0].id.clone();
    let (_, v) = t.start(&key, &kid, &format!("{BASE}/chall/{chall}")).await;
    assert!(v.is_some());
    // Not stuck yet.
    t.advance(299);
    assert_eq!(
        t.engine.reclaim_stuck_validations().await.unwrap(),
        Reclaimed::default()
    );
    t.advance(2);
    let taken = t
        .engine
        .reclaim_stuck_validations()
        .await
        .unwrap()
        .validations;
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].challenge.id, chall);
    assert_eq!(taken[0].account_id, last(&kid));
    assert_eq!(
        t.mem.db().challenges[&chall].processing_since,
        Some(START + 301),
        "the start time moved: the take-over is a compare-and-set on it"
    );
    // Taken: the next pass leaves it alone until it is stuck again.
    assert_eq!(
        t.engine.reclaim_stuck_validations().await.unwrap(),
        Reclaimed::default()
    );
    assert!(t.engine.record_validation(&taken[0], Ok(())).await.unwrap());
    t.advance(1000);
    assert_eq!(
        t.engine.reclaim_stuck_validations().await.unwrap(),
        Reclaimed::default()
    );
    assert_eq!(
        t.mem
            .actions()
            .iter()
            .filter(|a| *a == "acme.challenge.reclaim")
            .count(),
        1
    );
}

#[tokio::test]
async fn an_authorization_can_be_deactivated_once() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let loc = a.location.clone().unwrap();
    let authz_url = a.json_body().unwrap()["authorizations"][0]
        .as_str()
        .unwrap()
        .to_string();
    let payload = json!({"status": "deactivated"});
    let body = t.post(&key, &kid, &authz_url, Some(&payload)).await;
    let r = t
        .engine
        .authz(&t.call(&authz_url), last(&authz_url), &body)
        .await
        .unwrap();
    assert_eq!(r.json_body().unwrap()["status"], "deactivated");
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "invalid");
    let body = t.post(&key, &kid, &authz_url, Some(&payload)).await;
    let p = refused(
        t.engine
            .authz(&t.call(&authz_url), last(&authz_url), &body)
            .await,
    );
    assert_eq!(p.kind, ProblemType::Malformed);
}

#[tokio::test]
async fn an_order_expires() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let loc = a.location.clone().unwrap();
    t.advance(7 * 86400);
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "invalid");
}

// ---------------------------------------------------------------- finalization

#[tokio::test]
async fn a_csr_for_the_account_key_is_refused() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let loc = a.location.clone().unwrap();
    let order = a.json_body().unwrap().clone();
    t.authorize(&key, &kid, &order).await;
    let p = refused(
        t.finalize(&key, &kid, &order, key.csr(&["www.example.com"]))
            .await,
    );
    assert_eq!(p.kind, ProblemType::BadCsr, "{p}");
    assert!(p.detail.contains("account key"), "{p}");
    assert!(t.mem.db().issued.is_empty());
    // The order stays ready: a CSR with another key is signed.
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "ready");
    t.finalize(&key, &kid, &order, Key::new().csr(&["www.example.com"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn finalizing_an_order_that_is_not_ready_is_refused() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let order = a.json_body().unwrap().clone();
    let p = refused(
        t.finalize(&key, &kid, &order, Key::new().csr(&["www.example.com"]))
            .await,
    );
    assert_eq!(p.kind, ProblemType::OrderNotReady);
    assert_eq!(p.detail, "the order is pending, not ready");
    assert!(t.mem.db().issued.is_empty());
}

#[tokio::test]
async fn a_csr_must_name_exactly_the_order_identifiers() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t
        .new_order(&key, &kid, &["www.example.com", "api.example.com"])
        .await
        .unwrap();
    let loc = a.location.clone().unwrap();
    let order = a.json_body().unwrap().clone();
    t.authorize(&key, &kid, &order).await;
    let p = refused(
        t.finalize(
            &key,
            &kid,
            &order,
            Key::new().csr(&["www.example.com", "x.example.com"]),
        )
        .await,
    );
    assert_eq!(p.kind, ProblemType::BadCsr);
    assert!(
        p.detail.contains("names not in the order: x.example.com"),
        "{}",
        p.detail
    );
    assert!(
        p.detail.contains("missing from the CSR: api.example.com"),
        "{}",
        p.detail
    );
    let p = refused(t.finalize(&key, &kid, &order, "AAAA".into()).await);
    assert_eq!(p.kind, ProblemType::BadCsr);
    // Still ready for a better CSR.
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "ready");
    assert!(t.mem.db().issued.is_empty());
}

#[tokio::test]
async fn a_ready_order_becomes_valid_with_its_certificate() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let loc = a.location.clone().unwrap();
    let order = a.json_body().unwrap().clone();
    t.authorize(&key, &kid, &order).await;
    let done = t
        .finalize(&key, &kid, &order, Key::new().csr(&["www.example.com"]))
        .await
        .unwrap();
    assert_eq!(done.status, 200);
    assert_eq!(done.location.as_deref(), Some(loc.as_str()));
    let v = done.json_body().unwrap();
    assert_eq!(v["status"], "valid");
    let issued = t.mem.db().issued.clone();
    assert_eq!(issued, vec![(last(&loc).to_string(), issued[0].1.clone())]);
    assert_eq!(v["certificate"], format!("{BASE}/cert/{}", issued[0].1));
    // Polling agrees, and a second finalize is refused.
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "valid");
    let p = refused(
        t.finalize(&key, &kid, &order, Key::new().csr(&["www.example.com"]))
            .await,
    );
    assert_eq!(p.kind, ProblemType::OrderNotReady);
    assert_eq!(t.mem.db().issued.len(), 1);
}

#[tokio::test]
async fn a_refused_issuance_leaves_the_order_ready() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let loc = a.location.clone().unwrap();
    let order = a.json_body().unwrap().clone();
    t.authorize(&key, &kid, &order).await;
    t.mem.db().refuse = Some(IssuerError::Refused("validity too long".into()));
    let p = refused(
        t.finalize(&key, &kid, &order, Key::new().csr(&["www.example.com"]))
            .await,
    );
    assert_eq!(p.kind, ProblemType::BadCsr);
    assert_eq!(p.detail, "validity too long");
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "ready");
    // An internal failure is not shown.
    t.mem.db().refuse = Some(IssuerError::Internal("disk full".into()));
    let e = t
        .finalize(&key, &kid, &order, Key::new().csr(&["www.example.com"]))
        .await
        .unwrap_err();
    assert!(e.is_internal());
    assert_eq!(e.to_problem().kind, ProblemType::ServerInternal);
    assert!(!e.to_problem().detail.contains("disk"));
}

#[tokio::test]
async fn an_interrupted_finalization_ends_the_order_as_invalid() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let loc = a.location.clone().unwrap();
    let order = a.json_body().unwrap().clone();
    t.authorize(&key, &kid, &order).await;
    // The process stopped after taking the order.
    assert!(
        t.mem
            .order_start_processing(last(&loc), START)
            .await
            .unwrap()
    );
    let polled = t.get_order(&key, &kid, &loc).await;
    assert_eq!(polled["status"], "processing");
    t.advance(super::order::INTERRUPTED_FINALIZE_SECS - 1);
    assert!(t.engine.fail_interrupted_orders().await.unwrap().is_empty());
    t.advance(2);
    assert_eq!(
        t.engine.fail_interrupted_orders().await.unwrap(),
        vec![last(&loc).to_string()]
    );
    let v = t.get_order(&key, &kid, &loc).await;
    assert_eq!(v["status"], "invalid");
    assert_eq!(
        v["error"]["type"],
        "urn:ietf:params:acme:error:serverInternal"
    );
    assert!(t.engine.fail_interrupted_orders().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_certificate_recorded_after_the_order_was_given_up_answers_the_order_as_it_is() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let loc = a.location.clone().unwrap();
    let order = a.json_body().unwrap().clone();
    t.authorize(&key, &kid, &order).await;
    // The order is ended as interrupted while the certificate is being signed.
    t.mem.db().give_up_first = true;
    let r = t
        .finalize(&key, &kid, &order, Key::new().csr(&["www.example.com"]))
        .await
        .unwrap();
    let v = r.json_body().unwrap();
    assert_eq!(v["status"], "invalid");
    assert!(v.get("certificate").is_none());
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "invalid");
}

// ---------------------------------------------------------------- certificates

/// A certificate as the CA would record it, for an order of `kid`'s account.
fn record_certificate(
    t: &T,
    names: &[&str],
    key: &Key,
    order_of: Option<&str>,
) -> (String, Vec<u8>) {
    let kp = certkeeper_ca::KeyPair::try_from(key.pkcs8.as_slice()).unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let der = params.self_signed(&kp).unwrap().der().to_vec();
    let mut db = t.mem.db();
    db.next_id += 1;
    let id = format!("cert{}", db.next_id);
    db.certs.insert(
        id.clone(),
        StoredCertificate {
            id: id.clone(),
            ca_id: "ca".into(),
            der: der.clone(),
            status: "valid".into(),
            not_before: START,
            not_after: START + 90 * 86400,
        },
    );
    if let Some(account) = order_of {
        let order_id = format!("order-{id}");
        db.orders.insert(
            order_id.clone(),
            AcmeOrder {
                id: order_id,
                account_id: account.into(),
                status: "valid".into(),
                identifiers: "[]".into(),
                not_before: None,
                not_after: None,
                expires_at: START + 86400,
                error: None,
                certificate_id: Some(id.clone()),
                replaces: None,
                replaced_id: None,
                created_at: START,
            },
        );
    }
    (id, der)
}

async fn revoke(t: &T, key: &Key, kid: Option<&str>, der: &[u8]) -> Result<Answer, AcmeError> {
    let url = format!("{BASE}/revoke-cert");
    let payload = json!({"certificate": b64(der), "reason": 1});
    let body = key.sign(kid, &t.nonce().await, &url, Some(&payload));
    t.engine.revoke(&t.call(&url), &body).await
}

#[tokio::test]
async fn the_ordering_account_may_revoke_once() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let (id, der) = record_certificate(&t, &["www.example.com"], &Key::new(), Some(last(&kid)));
    assert_eq!(
        revoke(&t, &key, Some(&kid), &der).await.unwrap().status,
        200
    );
    assert_eq!(t.mem.db().certs[&id].status, "revoked");
    let p = refused(revoke(&t, &key, Some(&kid), &der).await);
    assert_eq!(p.kind, ProblemType::AlreadyRevoked);
}

#[tokio::test]
async fn another_account_needs_authorizations_for_every_name() {
    let t = T::new();
    let (owner, other) = (Key::new(), Key::new());
    let owner_kid = t.account(&owner).await;
    let kid = t.account(&other).await;
    let (id, der) = record_certificate(
        &t,
        &["www.example.com", "api.example.com"],
        &Key::new(),
        Some(last(&owner_kid)),
    );
    let p = refused(revoke(&t, &other, Some(&kid), &der).await);
    assert_eq!(p.kind, ProblemType::Unauthorized);
    // Valid authorizations for one name are not enough; for both they are.
    let a = t
        .new_order(&other, &kid, &["www.example.com"])
        .await
        .unwrap();
    t.authorize(&other, &kid, a.json_body().unwrap()).await;
    assert_eq!(
        refused(revoke(&t, &other, Some(&kid), &der).await).kind,
        ProblemType::Unauthorized
    );
    let a = t
        .new_order(&other, &kid, &["api.example.com"])
        .await
        .unwrap();
    t.authorize(&other, &kid, a.json_body().unwrap()).await;
    assert_eq!(
        revoke(&t, &other, Some(&kid), &der).await.unwrap().status,
        200
    );
    assert_eq!(t.mem.db().certs[&id].status, "revoked");
}

#[tokio::test]
async fn the_certificate_key_may_revoke_but_no_other_key() {
    let t = T::new();
    let cert_key = Key::new();
    let (id, der) = record_certificate(&t, &["www.example.com"], &cert_key, None);
    let p = refused(revoke(&t, &Key::new(), None, &der).await);
    assert_eq!(p.kind, ProblemType::Unauthorized);
    assert_eq!(p.detail, "the JWS key is not the certificate's key");
    assert_eq!(revoke(&t, &cert_key, None, &der).await.unwrap().status, 200);
    assert_eq!(t.mem.db().certs[&id].status, "revoked");
}

#[tokio::test]
async fn unknown_certificates_and_bad_reasons_are_refused() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let (_, der) = record_certificate(&t, &["www.example.com"], &Key::new(), Some(last(&kid)));
    let url = format!("{BASE}/revoke-cert");
    let body = key.sign(
        Some(&kid),
        &t.nonce().await,
        &url,
        Some(&json!({"certificate": b64(&der), "reason": 6})),
    );
    let p = refused(t.engine.revoke(&t.call(&url), &body).await);
    assert_eq!(p.kind, ProblemType::BadRevocationReason);
    let kp = certkeeper_ca::KeyPair::generate().unwrap();
    let stranger = rcgen::CertificateParams::new(vec!["www.example.com".to_string()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let p = refused(revoke(&t, &key, Some(&kid), stranger.der()).await);
    assert_eq!(p.kind, ProblemType::Unauthorized);
    assert_eq!(p.detail, "this certificate was not issued here");
}

#[tokio::test]
async fn a_certificate_is_downloaded_only_by_its_account() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let (_, cert) = t.issued(&key, &kid, &["www.example.com"]).await;
    // The fake issuer records no DER: give the certificate one.
    let (id, der) = record_certificate(&t, &["www.example.com"], &Key::new(), Some(last(&kid)));
    let url = format!("{BASE}/cert/{id}");
    let body = t.post(&key, &kid, &url, None).await;
    let a = t
        .engine
        .certificate(&t.call(&url), &id, &body)
        .await
        .unwrap();
    let Body::PemChain(pem) = a.body else {
        panic!("a PEM chain")
    };
    assert_eq!(pem, certkeeper_ca::pem_encode_certs([der.as_slice()]));
    let other = Key::new();
    let kid2 = t.account(&other).await;
    let body = t.post(&other, &kid2, &url, None).await;
    let e = t
        .engine
        .certificate(&t.call(&url), &id, &body)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ProblemType::Unauthorized);
    assert!(cert.starts_with("cert"));
}

// ---------------------------------------------------------------- registration rules

/// An external account binding of `key` by the EAB key `kid`/`mac`.
fn eab(key: &Key, kid: &str, mac: &[u8], url: &str) -> Value {
    use aws_lc_rs::hmac;
    let protected = b64(json!({"alg": "HS256", "kid": kid, "url": url})
        .to_string()
        .as_bytes());
    let payload = b64(key.jwk.to_string().as_bytes());
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, mac),
        format!("{protected}.{payload}").as_bytes(),
    );
    json!({"protected": protected, "payload": payload, "signature": b64(tag.as_ref())})
}

#[tokio::test]
async fn external_account_binding_is_required_and_binds_its_key_once() {
    let t = T::new();
    let url = format!("{BASE}/new-account");
    let mut call = t.call(&url);
    call.eab_required = true;
    t.mem.db().eab.insert(
        "eab1".into(),
        EabKey {
            id: "eab1".into(),
            profile: "web".into(),
            account_id: None,
            mac_key: vec![9; 32],
        },
    );
    let key = Key::new();
    let body = key.sign(None, &t.nonce().await, &url, Some(&json!({})));
    let p = refused(t.engine.new_account(&call, &body).await);
    assert_eq!(p.kind, ProblemType::ExternalAccountRequired);
    // A wrong MAC key does not bind.
    let payload = json!({"externalAccountBinding": eab(&key, "eab1", &[8; 32], &url)});
    let body = key.sign(None, &t.nonce().await, &url, Some(&payload));
    assert_eq!(
        refused(t.engine.new_account(&call, &body).await).kind,
        ProblemType::Unauthorized
    );
    let payload = json!({"externalAccountBinding": eab(&key, "eab1", &[9; 32], &url)});
    let body = key.sign(None, &t.nonce().await, &url, Some(&payload));
    let a = t.engine.new_account(&call, &body).await.unwrap();
    assert_eq!(a.status, 201);
    let account = last(a.location.as_deref().unwrap()).to_string();
    assert_eq!(
        t.mem.db().eab["eab1"].account_id.as_deref(),
        Some(account.as_str())
    );
    // The key is used: another account cannot bind it.
    let other = Key::new();
    let payload = json!({"externalAccountBinding": eab(&other, "eab1", &[9; 32], &url)});
    let body = other.sign(None, &t.nonce().await, &url, Some(&payload));
    let p = refused(t.engine.new_account(&call, &body).await);
    assert_eq!(p.kind, ProblemType::Unauthorized);
    assert_eq!(
        p.detail,
        "the external account binding key is already bound to an account"
    );
    assert_eq!(t.mem.db().accounts.len(), 1);
}

#[tokio::test]
async fn new_accounts_are_rate_limited_per_address_and_must_agree_to_the_terms() {
    let t = T::with(Config {
        new_accounts_per_ip_per_hour: 1,
        terms_of_service: Some("https://acme.test/terms".into()),
        ..config()
    });
    let url = format!("{BASE}/new-account");
    let key = Key::new();
    let body = key.sign(None, &t.nonce().await, &url, Some(&json!({})));
    let p = refused(t.engine.new_account(&t.call(&url), &body).await);
    assert_eq!(p.kind, ProblemType::Malformed);
    assert_eq!(p.detail, "the terms of service must be agreed to");
    let agreed = json!({"termsOfServiceAgreed": true, "contact": ["mailto:ops@example.com"]});
    let body = key.sign(None, &t.nonce().await, &url, Some(&agreed));
    let a = t.engine.new_account(&t.call(&url), &body).await.unwrap();
    assert_eq!(
        a.json_body().unwrap()["contact"],
        json!(["mailto:ops@example.com"])
    );
    let other = Key::new();
    let body = other.sign(None, &t.nonce().await, &url, Some(&agreed));
    assert_eq!(
        refused(t.engine.new_account(&t.call(&url), &body).await).kind,
        ProblemType::RateLimited
    );
    // Contacts must be email addresses.
    let kid = a.location.clone().unwrap();
    let bad = json!({"contact": ["tel:+1555"]});
    let body = t.post(&key, &kid, &kid, Some(&bad)).await;
    let p = refused(t.engine.account(&t.call(&kid), last(&kid), &body).await);
    assert_eq!(p.kind, ProblemType::UnsupportedContact);
}

#[tokio::test]
async fn the_directory_lists_the_resources_and_the_meta() {
    let t = T::with(Config {
        terms_of_service: Some("https://acme.test/terms".into()),
        ..config()
    });
    let url = format!("{BASE}/directory");
    let d = t.engine.directory(&t.call(&url));
    let v = d.json_body().unwrap();
    assert_eq!(v["newOrder"], format!("{BASE}/new-order"));
    assert_eq!(v["renewalInfo"], format!("{BASE}/renewal-info"));
    assert_eq!(v["meta"]["termsOfService"], "https://acme.test/terms");
    assert_eq!(v["meta"]["externalAccountRequired"], false);
    assert!(v["meta"]["profiles"]["web"].is_string());
}

#[tokio::test]
async fn a_csr_key_type_the_profile_does_not_allow_is_refused() {
    let mut t = T::new();
    t.profile.allowed_key_types = vec![certkeeper_ca::KeyAlgorithm::Ed25519];
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let loc = a.location.clone().unwrap();
    let order = a.json_body().unwrap().clone();
    t.authorize(&key, &kid, &order).await;
    let p = refused(
        t.finalize(&key, &kid, &order, Key::new().csr(&["www.example.com"]))
            .await,
    );
    assert_eq!(p.kind, ProblemType::BadCsr);
    assert!(
        p.detail.contains("is not allowed by the profile"),
        "{}",
        p.detail
    );
    assert_eq!(t.get_order(&key, &kid, &loc).await["status"], "ready");
    assert!(t.mem.db().issued.is_empty());
}

#[tokio::test]
async fn a_stuck_validation_without_a_usable_account_key_is_ended() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t.new_order(&key, &kid, &["www.example.com"]).await.unwrap();
    let authz_id = last(
        a.json_body().unwrap()["authorizations"][0]
            .as_str()
            .unwrap(),
    )
    .to_string();
    let chall = t.mem.challenges(&authz_id).await.unwrap()[0].id.clone();
    let (_, v) = t.start(&key, &kid, &format!("{BASE}/chall/{chall}")).await;
    assert!(v.is_some());
    t.mem.db().accounts.get_mut(last(&kid)).unwrap().jwk = "{}".into();
    t.advance(301);
    let r = t.engine.reclaim_stuck_validations().await.unwrap();
    assert!(r.validations.is_empty());
    assert_eq!(r.ended, vec![chall.clone()]);
    assert_eq!(t.mem.db().challenges[&chall].status, "invalid");
    assert_eq!(t.mem.db().authzs[&authz_id].status, "invalid");
}

/// A recorded certificate with an authority key identifier and a known serial, ordered by
/// `account`; returns its id and its RFC 9773 CertID.
fn record_ari_certificate(t: &T, serial: u8, account: &str) -> (String, String) {
    let kp = certkeeper_ca::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["www.example.com".to_string()]).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from(vec![serial, 2, 3]));
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![0xAA; 20]);
    let der = params.self_signed(&kp).unwrap().der().to_vec();
    let mut db = t.mem.db();
    let id = format!("ari{serial}");
    db.certs.insert(
        id.clone(),
        StoredCertificate {
            id: id.clone(),
            ca_id: "ca".into(),
            der,
            status: "valid".into(),
            not_before: START,
            not_after: START + 90 * 86400,
        },
    );
    db.orders.insert(
        format!("order-{id}"),
        AcmeOrder {
            id: format!("order-{id}"),
            account_id: account.into(),
            status: "valid".into(),
            identifiers: "[]".into(),
            not_before: None,
            not_after: None,
            expires_at: START + 86400,
            error: None,
            certificate_id: Some(id.clone()),
            replaces: None,
            replaced_id: None,
            created_at: START,
        },
    );
    (id, format!("{}.{}", b64(&[0xAA; 20]), b64(&[serial, 2, 3])))
}

async fn replacing_order(t: &T, key: &Key, kid: &str, replaces: &str) -> Result<Answer, AcmeError> {
    let url = format!("{BASE}/new-order");
    let payload = json!({
        "identifiers": [{"type": "dns", "value": "www.example.com"}],
        "replaces": replaces,
    });
    let body = t.post(key, kid, &url, Some(&payload)).await;
    t.engine.new_order(&t.call(&url), &body).await
}

#[tokio::test]
async fn renewal_information_suggests_the_last_third_of_the_lifetime() {
    let t = T::new();
    let key = Key::new();
    let kid = t.account(&key).await;
    let (_, cert_id) = record_ari_certificate(&t, 1, last(&kid));
    let a = t.engine.renewal_info(&cert_id).await.unwrap();
    assert_eq!(a.retry_after, Some(21600));
    let w = &a.json_body().unwrap()["suggestedWindow"];
    assert_eq!(w["start"], rfc3339(START + 60 * 86400));
    assert_eq!(w["end"], rfc3339(START + 75 * 86400));
    let unknown = format!("{}.{}", b64(&[0xAA; 20]), b64(&[9, 9]));
    let p = t
        .engine
        .renewal_info(&unknown)
        .await
        .unwrap_err()
        .to_problem();
    assert_eq!(p.kind, ProblemType::Malformed);
    assert_eq!(p.status(), 404);
}

#[tokio::test]
async fn an_order_replaces_a_certificate_of_its_account_once() {
    let t = T::new();
    let (key, other) = (Key::new(), Key::new());
    let kid = t.account(&key).await;
    let kid2 = t.account(&other).await;
    let (id, cert_id) = record_ari_certificate(&t, 1, last(&kid));
    let p = refused(replacing_order(&t, &other, &kid2, &cert_id).await);
    assert_eq!(p.kind, ProblemType::Unauthorized);
    let a = replacing_order(&t, &key, &kid, &cert_id).await.unwrap();
    assert_eq!(a.json_body().unwrap()["replaces"], cert_id.as_str());
    let stored = t.mem.db().orders[last(a.location.as_deref().unwrap())].clone();
    assert_eq!(stored.replaced_id.as_deref(), Some(id.as_str()));
    let p = refused(replacing_order(&t, &key, &kid, &cert_id).await);
    assert_eq!(p.kind, ProblemType::AlreadyReplaced);
    let p = refused(replacing_order(&t, &key, &kid, "not-a-cert-id").await);
    assert_eq!(p.kind, ProblemType::Malformed);
    assert!(p.detail.starts_with("replaces: "), "{}", p.detail);
}

// ---------------------------------------------------------------- caps on validations

/// The http-01 challenge URLs of an order, one per authorization.
async fn http01_urls(t: &T, key: &Key, kid: &str, order: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for authz_url in order["authorizations"].as_array().unwrap() {
        let authz_url = authz_url.as_str().unwrap();
        let body = t.post(key, kid, authz_url, None).await;
        let a = t
            .engine
            .authz(&t.call(authz_url), last(authz_url), &body)
            .await
            .unwrap();
        let v = a.json_body().unwrap();
        let url = v["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "http-01")
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string();
        out.push(url);
    }
    out
}

async fn try_start(t: &T, key: &Key, kid: &str, url: &str) -> Result<Option<Validation>, Problem> {
    let body = t.post(key, kid, url, Some(&json!({}))).await;
    match t.engine.challenge(&t.call(url), last(url), &body).await {
        Ok((_, v)) => Ok(v),
        Err(AcmeError::Refused(p)) => Err(p),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn validations_in_flight_are_capped_per_account() {
    let t = T::with(Config {
        max_concurrent_validations_per_account: 1,
        ..config()
    });
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t
        .new_order(&key, &kid, &["a.example.com", "b.example.com"])
        .await
        .unwrap();
    let urls = http01_urls(&t, &key, &kid, a.json_body().unwrap()).await;
    let first = try_start(&t, &key, &kid, &urls[0]).await.unwrap().unwrap();
    let p = try_start(&t, &key, &kid, &urls[1]).await.unwrap_err();
    assert_eq!(p.kind, ProblemType::RateLimited, "{p}");
    assert!(p.retry_after.is_some(), "{p:?}");
    let second = last(&urls[1]).to_string();
    assert_eq!(
        t.mem.db().challenges[&second].status,
        "pending",
        "left to retry"
    );
    // Another account is not held up.
    let other = Key::new();
    let other_kid = t.account(&other).await;
    let b = t
        .new_order(&other, &other_kid, &["c.example.com"])
        .await
        .unwrap();
    let other_urls = http01_urls(&t, &other, &other_kid, b.json_body().unwrap()).await;
    assert!(
        try_start(&t, &other, &other_kid, &other_urls[0])
            .await
            .unwrap()
            .is_some()
    );
    // Once the first validation is recorded and dropped, the second starts.
    assert!(t.engine.record_validation(&first, Ok(())).await.unwrap());
    drop(first);
    assert!(try_start(&t, &key, &kid, &urls[1]).await.unwrap().is_some());
}

#[tokio::test]
async fn validations_in_flight_are_capped_overall() {
    let t = T::with(Config {
        max_concurrent_validations: 1,
        ..config()
    });
    let (k1, k2) = (Key::new(), Key::new());
    let (kid1, kid2) = (t.account(&k1).await, t.account(&k2).await);
    let o1 = t.new_order(&k1, &kid1, &["a.example.com"]).await.unwrap();
    let o2 = t.new_order(&k2, &kid2, &["b.example.com"]).await.unwrap();
    let u1 = http01_urls(&t, &k1, &kid1, o1.json_body().unwrap()).await;
    let u2 = http01_urls(&t, &k2, &kid2, o2.json_body().unwrap()).await;
    let v = try_start(&t, &k1, &kid1, &u1[0]).await.unwrap().unwrap();
    let p = try_start(&t, &k2, &kid2, &u2[0]).await.unwrap_err();
    assert_eq!(p.kind, ProblemType::RateLimited, "{p}");
    // A stuck challenge is not taken over while the cap is reached either.
    t.advance(301);
    let stuck = t.engine.reclaim_stuck_validations().await.unwrap();
    assert!(stuck.validations.is_empty(), "{stuck:?}");
    drop(v);
    assert_eq!(t.engine.validation_limits().in_flight(), 0);
    let stuck = t.engine.reclaim_stuck_validations().await.unwrap();
    assert_eq!(stuck.validations.len(), 1);
    assert_eq!(t.engine.validation_limits().in_flight(), 1);
    drop(stuck);
    assert!(try_start(&t, &k2, &kid2, &u2[0]).await.unwrap().is_some());
}

#[tokio::test]
async fn pending_authorizations_per_account_are_capped() {
    let t = T::with(Config {
        max_pending_authorizations_per_account: 2,
        ..config()
    });
    let key = Key::new();
    let kid = t.account(&key).await;
    let a = t
        .new_order(&key, &kid, &["a.example.com", "b.example.com"])
        .await
        .unwrap();
    let p = refused(t.new_order(&key, &kid, &["c.example.com"]).await);
    assert_eq!(p.kind, ProblemType::RateLimited, "{p}");
    assert!(p.detail.contains("pending authorizations"), "{p}");
    // Authorizations the account completed free room.
    let order = a.json_body().unwrap().clone();
    t.authorize(&key, &kid, &order).await;
    t.new_order(&key, &kid, &["c.example.com"]).await.unwrap();
    // Expired pending authorizations do not count.
    t.new_order(&key, &kid, &["d.example.com"]).await.unwrap();
    assert_eq!(
        refused(t.new_order(&key, &kid, &["e.example.com"]).await).kind,
        ProblemType::RateLimited
    );
    t.advance(31 * 86400);
    t.new_order(&key, &kid, &["e.example.com"]).await.unwrap();
}
