//! The ACME flow (RFC 8555, RFC 9773) over an [`AcmeStore`] and an [`Issuer`]: each
//! request of the protocol is one method of [`Engine`] that takes the request's context
//! ([`Call`]) and body and gives an [`Answer`] or an [`AcmeError`]. Time comes from the
//! injected clock; the engine never spawns: a challenge to validate is handed back as a
//! [`Validation`] for the caller's background runner.

mod account;
mod cert;
mod order;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use certkeeper_ca::{Clock, Profile};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::{AcmeAccount, AcmeStore, Issuer, IssuerError, StoreError};
use crate::{
    Jws, KeyRef, NonceRejection, Problem, ProblemType, PublicJwk, ValidationConfig,
    ValidationLimits,
};

pub use order::{Reclaimed, Validation};

/// The engine's settings (from the server's `[acme]` section).
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a nonce may be used after it was handed out (seconds).
    pub nonce_lifetime_secs: i64,
    /// How long a new order stays open (seconds).
    pub order_lifetime_secs: i64,
    /// How long a new authorization stays valid (seconds).
    pub authz_lifetime_secs: i64,
    /// Terms of service clients must agree to, when set.
    pub terms_of_service: Option<String>,
    /// A website for the directory's meta.
    pub website: Option<String>,
    /// New orders per account per hour (0: no limit).
    pub new_orders_per_account_per_hour: u32,
    /// New accounts per client address per hour (0: no limit).
    pub new_accounts_per_ip_per_hour: u32,
    /// A validation running longer than this (seconds) was left by a stopped process.
    pub stuck_validation_after_secs: i64,
    /// Validations in flight at once in this process, over all accounts (0: no cap).
    pub max_concurrent_validations: usize,
    /// Validations in flight at once in this process for one account (0: no cap).
    pub max_concurrent_validations_per_account: usize,
    /// Pending (unexpired) authorizations one account may hold; a new order that would
    /// pass this is refused with `rateLimited` (0: no cap).
    pub max_pending_authorizations_per_account: u32,
    /// Challenge validation: ports, resolvers, timeout, CAA identities.
    pub validation: ValidationConfig,
}

/// One request's context: the directory (profile) it was sent to and where from.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The directory's profile.
    pub profile: &'a Profile,
    /// `https://host/acme/<profile>`: resource URLs are made under it.
    pub base: &'a str,
    /// The full URL the request was sent to (compared with the JWS `url`).
    pub url: &'a str,
    /// The client's address.
    pub client_ip: Option<&'a str>,
    /// Whether this directory requires external account binding.
    pub eab_required: bool,
}

impl Call<'_> {
    /// The URL of a resource under this directory.
    pub fn link(&self, kind: &str, id: &str) -> String {
        format!("{}/{kind}/{id}", self.base)
    }

    /// The account id in an account URL of this directory. Only the path is compared, so
    /// replicas reached under different host names accept each other's URLs.
    pub fn account_id_in<'u>(&self, url: &'u str) -> Option<&'u str> {
        let path_of = |u: &str| -> Option<usize> {
            let rest = u.strip_prefix("https://")?;
            Some(u.len() - rest.len() + rest.find('/')?)
        };
        let base_path = &self.base[path_of(self.base)?..];
        let path = &url[path_of(url)?..];
        let id = path.strip_prefix(base_path)?.strip_prefix("/acct/")?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }

    fn actor(&self, account_id: Option<&str>) -> crate::store::Actor {
        crate::store::Actor::acme(account_id, self.client_ip)
    }
}

/// The body of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `application/json`.
    Json(Value),
    /// `application/pem-certificate-chain`.
    PemChain(String),
    /// Nothing.
    Empty,
}

/// A successful answer, before the front end adds the nonce and the index link.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Body,
    /// The `Location` header.
    pub location: Option<String>,
    /// The `Retry-After` header (seconds).
    pub retry_after: Option<u64>,
    /// A `Link: <..>;rel="up"` header.
    pub up: Option<String>,
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, v: Value) -> Answer {
        Answer {
            status,
            body: Body::Json(v),
            location: None,
            retry_after: None,
            up: None,
        }
    }

    /// An empty answer.
    pub fn empty(status: u16) -> Answer {
        Answer {
            body: Body::Empty,
            ..Answer::json(status, Value::Null)
        }
    }

    fn location(mut self, url: String) -> Answer {
        self.location = Some(url);
        self
    }

    fn retry_after(mut self, secs: u64) -> Answer {
        self.retry_after = Some(secs);
        self
    }

    /// The JSON body, if any.
    pub fn json_body(&self) -> Option<&Value> {
        match &self.body {
            Body::Json(v) => Some(v),
            _ => None,
        }
    }
}

/// What an ACME request can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// The request is refused: the problem document says why.
    #[error("{}: {}", .0.kind.name(), .0.detail)]
    Refused(Problem),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The registration authority failed.
    #[error("issuer: {0}")]
    Issuer(IssuerError),
    /// Something else broke inside.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<Problem> for AcmeError {
    fn from(p: Problem) -> Self {
        AcmeError::Refused(p)
    }
}

impl AcmeError {
    /// True for failures inside the server (to be logged), false for refusals.
    pub fn is_internal(&self) -> bool {
        !matches!(self, AcmeError::Refused(_))
    }

    /// The problem document the client gets: the refusal, or a bare `serverInternal`.
    pub fn to_problem(&self) -> Problem {
        match self {
            AcmeError::Refused(p) => p.clone(),
            _ => Problem::internal(),
        }
    }

    /// The problem type, for tests and metrics.
    pub fn kind(&self) -> ProblemType {
        match self {
            AcmeError::Refused(p) => p.kind,
            _ => ProblemType::ServerInternal,
        }
    }
}

impl From<AcmeError> for Problem {
    fn from(e: AcmeError) -> Problem {
        e.to_problem()
    }
}

fn internal(what: impl std::fmt::Display) -> AcmeError {
    AcmeError::Internal(what.to_string())
}

/// RFC 3339 text of Unix seconds.
pub fn rfc3339(ts: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The ACME engine over a store and a registration authority.
pub struct Engine<S, I> {
    store: S,
    issuer: I,
    clock: Arc<dyn Clock>,
    config: Config,
    limits: ValidationLimits,
}

impl<S, I> std::fmt::Debug for Engine<S, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl<S: AcmeStore, I: Issuer> Engine<S, I> {
    /// An engine over `store` and `issuer`, with time from `clock`.
    pub fn new(store: S, issuer: I, clock: Arc<dyn Clock>, config: Config) -> Self {
        let limits = ValidationLimits::new(
            config.max_concurrent_validations,
            config.max_concurrent_validations_per_account,
        );
        Engine {
            store,
            issuer,
            clock,
            config,
            limits,
        }
    }

    /// The caps on validations in flight (shared by every request and pass of this engine).
    pub fn validation_limits(&self) -> &ValidationLimits {
        &self.limits
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// The directory object (RFC 8555 §7.1.1) of `call`'s profile.
    pub fn directory(&self, call: &Call<'_>) -> Answer {
        let c = &self.config;
        let name = &call.profile.name;
        let mut meta = json!({
            "externalAccountRequired": call.eab_required,
            "profiles": { name.clone(): format!("certificates under the {name:?} profile") },
        });
        if let Some(t) = &c.terms_of_service {
            meta["termsOfService"] = json!(t);
        }
        if let Some(w) = &c.website {
            meta["website"] = json!(w);
        }
        if !c.validation.caa_identities.is_empty() {
            meta["caaIdentities"] = json!(c.validation.caa_identities);
        }
        let b = call.base;
        Answer::json(
            200,
            json!({
                "newNonce": format!("{b}/new-nonce"),
                "newAccount": format!("{b}/new-account"),
                "newOrder": format!("{b}/new-order"),
                "revokeCert": format!("{b}/revoke-cert"),
                "keyChange": format!("{b}/key-change"),
                "renewalInfo": format!("{b}/renewal-info"),
                "meta": meta,
            }),
        )
    }

    /// A fresh nonce.
    pub async fn new_nonce(&self) -> Result<String, AcmeError> {
        Ok(self.store.nonce_key().await?.issue(self.now())?)
    }

    /// Accept `nonce` once: it must be ours, unexpired and unused.
    async fn redeem_nonce(&self, nonce: &str) -> Result<(), AcmeError> {
        let now = self.now();
        let key = self.store.nonce_key().await?;
        let expires_at = match key.check(nonce, now, self.config.nonce_lifetime_secs) {
            Ok(at) => at,
            Err(NonceRejection::Unknown) => {
                return Err(Problem::new(
                    ProblemType::BadNonce,
                    "the nonce was not issued by this server",
                )
                .into());
            }
            Err(NonceRejection::Expired) => {
                return Err(Problem::new(ProblemType::BadNonce, "the nonce has expired").into());
            }
        };
        if !self.store.nonce_use(nonce, expires_at, now).await? {
            return Err(Problem::new(ProblemType::BadNonce, "the nonce was used already").into());
        }
        Ok(())
    }

    /// Parse and check a JWS request: signature, URL and nonce. Returns the JWS and, for
    /// `kid` requests, the (valid) account.
    async fn verify(
        &self,
        call: &Call<'_>,
        body: &[u8],
    ) -> Result<(Jws, Option<AcmeAccount>), AcmeError> {
        let jws = Jws::parse(body, false)?;
        if jws.header.url != call.url {
            return Err(Problem::unauthorized(format!(
                "the JWS url {:?} is not the request URL {:?}",
                jws.header.url, call.url
            ))
            .into());
        }
        let (account, key) = match &jws.header.key {
            KeyRef::Jwk(k) => (None, k.clone()),
            KeyRef::Kid(kid) => {
                let acct = self.account_by_kid(call, kid).await?;
                let key = account_key(&acct)?;
                (Some(acct), key)
            }
        };
        jws.verify(&key)?;
        let nonce = jws
            .header
            .nonce
            .as_deref()
            .ok_or_else(|| Problem::new(ProblemType::BadNonce, "the JWS has no nonce"))?;
        self.redeem_nonce(nonce).await?;
        if let Some(a) = &account
            && a.status != "valid"
        {
            return Err(Problem::unauthorized(format!("the account is {}", a.status)).into());
        }
        Ok((jws, account))
    }

    async fn account_by_kid(&self, call: &Call<'_>, kid: &str) -> Result<AcmeAccount, AcmeError> {
        let id = call.account_id_in(kid).ok_or_else(|| {
            Problem::new(
                ProblemType::AccountDoesNotExist,
                format!("{kid:?} is not an account URL of this directory"),
            )
        })?;
        Ok(self
            .store
            .account(id)
            .await?
            .filter(|a| a.profile == call.profile.name)
            .ok_or_else(|| {
                Problem::new(
                    ProblemType::AccountDoesNotExist,
                    format!("no account {kid:?}"),
                )
            })?)
    }

    /// [`Engine::verify`] for a request that must be signed by an account (`kid`).
    async fn verify_kid(
        &self,
        call: &Call<'_>,
        body: &[u8],
    ) -> Result<(Jws, AcmeAccount), AcmeError> {
        let (jws, account) = self.verify(call, body).await?;
        let account = account.ok_or_else(|| {
            Problem::malformed("this request must be signed with the account key (kid)")
        })?;
        Ok((jws, account))
    }

    /// Count one event against an hourly limit (0: none).
    async fn check_rate(&self, bucket: String, limit: u32) -> Result<(), AcmeError> {
        if limit == 0 {
            return Ok(());
        }
        let now = self.now();
        let window = now - now.rem_euclid(3600);
        let count = self.store.rate_count(&bucket, window).await?;
        if count > i64::from(limit) {
            let wait = (window + 3600 - now).max(1) as u64;
            return Err(Problem::new(
                ProblemType::RateLimited,
                format!("rate limit of {limit} per hour reached; retry in {wait} s"),
            )
            .with_retry_after(wait)
            .into());
        }
        Ok(())
    }
}

/// The account's key.
fn account_key(a: &AcmeAccount) -> Result<PublicJwk, AcmeError> {
    let v: Value = serde_json::from_str(&a.jwk).map_err(internal)?;
    PublicJwk::from_json(&v).map_err(|p| internal(p.detail))
}

fn random_token() -> Result<String, AcmeError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| internal("no randomness for a token"))?;
    Ok(crate::b64(&bytes))
}
