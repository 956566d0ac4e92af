//! Orders, authorizations, challenges (validated by the caller's background runner),
//! finalization, and the recovery of work a stopped process left unfinished.

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{AcmeError, Answer, Call, Engine, account_key, internal, random_token, rfc3339};
use crate::store::{
    AcmeAccount, AcmeAuthz, AcmeChallenge, AcmeOrder, AcmeStore, Actor, Issuer, IssuerError,
    NewAcmeAuthz, StoreError,
};
use crate::{
    ChallengeType, Identifier, IdentifierKind, LimitReached, Problem, ProblemType, Status,
    ValidationPermit, authz_status, key_authorization, order_status,
};

/// How long the CAA check made when an authorization was validated covers issuance: eight
/// hours, as the CA/Browser Forum's Baseline Requirements allow. Authorizations are reused
/// for longer, so an older one is checked again at finalize.
const CAA_RECHECK_AFTER_SECS: i64 = 8 * 3600;

/// How many stuck challenges one pass takes over at most.
const RECLAIM_BATCH: i64 = 100;

/// How long an order may stay `processing`: finalization signs within one request, so an
/// order older than this was interrupted by a stopped process.
pub(super) const INTERRUPTED_FINALIZE_SECS: i64 = 120;

fn parse_status(s: &str) -> Status {
    Status::parse(s).unwrap_or(Status::Invalid)
}

/// The identifiers of an order as stored.
fn order_identifiers(o: &AcmeOrder) -> Result<Vec<Identifier>, AcmeError> {
    serde_json::from_str(&o.identifiers).map_err(internal)
}

/// The authorization's identifier (with its `*.`).
fn authz_identifier(a: &AcmeAuthz) -> Identifier {
    Identifier {
        kind: if a.id_type == "ip" {
            IdentifierKind::Ip
        } else {
            IdentifierKind::Dns
        },
        value: a.id_value.clone(),
    }
}

/// An order's effective status, from its authorizations and the time.
fn effective_status(o: &AcmeOrder, authzs: &[AcmeAuthz], now: i64) -> Status {
    let statuses: Vec<Status> = authzs
        .iter()
        .map(|a| authz_status(parse_status(&a.status), a.expires_at, now))
        .collect();
    order_status(parse_status(&o.status), &statuses, o.expires_at, now)
}

fn order_json(
    call: &Call<'_>,
    o: &AcmeOrder,
    authzs: &[AcmeAuthz],
    now: i64,
) -> Result<Value, AcmeError> {
    let status = effective_status(o, authzs, now);
    let mut v = json!({
        "status": status.as_str(),
        "expires": rfc3339(o.expires_at),
        "identifiers": order_identifiers(o)?,
        "authorizations": authzs.iter().map(|a| call.link("authz", &a.id)).collect::<Vec<_>>(),
        "finalize": format!("{}/finalize", call.link("order", &o.id)),
    });
    if let Some(nb) = o.not_before {
        v["notBefore"] = json!(rfc3339(nb));
    }
    if let Some(na) = o.not_after {
        v["notAfter"] = json!(rfc3339(na));
    }
    if let Some(c) = &o.certificate_id
        && status == Status::Valid
    {
        v["certificate"] = json!(call.link("cert", c));
    }
    if let Some(r) = &o.replaces {
        v["replaces"] = json!(r);
    }
    if let Some(e) = &o.error {
        v["error"] = serde_json::from_str(e).unwrap_or(Value::Null);
    }
    Ok(v)
}

fn challenge_json(call: &Call<'_>, c: &AcmeChallenge) -> Value {
    let mut v = json!({
        "type": c.kind,
        "url": call.link("chall", &c.id),
        "status": c.status,
        "token": c.token,
    });
    if let Some(t) = c.validated_at {
        v["validated"] = json!(rfc3339(t));
    }
    if let Some(e) = &c.error {
        v["error"] = serde_json::from_str(e).unwrap_or(Value::Null);
    }
    v
}

fn authz_json(call: &Call<'_>, a: &AcmeAuthz, challenges: &[AcmeChallenge], now: i64) -> Value {
    let id = authz_identifier(a);
    let status = authz_status(parse_status(&a.status), a.expires_at, now);
    let mut v = json!({
        "status": status.as_str(),
        "expires": rfc3339(a.expires_at),
        "identifier": {"type": id.kind, "value": id.base()},
        "challenges": challenges.iter().map(|c| challenge_json(call, c)).collect::<Vec<_>>(),
    });
    if id.is_wildcard() {
        v["wildcard"] = json!(true);
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrderPayload {
    identifiers: Vec<Identifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    replaces: Option<String>,
}

#[derive(Deserialize)]
struct FinalizePayload {
    csr: String,
}

#[derive(Deserialize)]
struct AuthzUpdate {
    status: String,
}

fn parse_time(s: &Option<String>, what: &str) -> Result<Option<i64>, Problem> {
    s.as_deref()
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|_| Problem::malformed(format!("{what} is not an RFC 3339 time")))
        })
        .transpose()
}

/// Refuse identifiers the profile would not sign, before anything is stored.
fn check_policy(call: &Call<'_>, ids: &[Identifier]) -> Result<(), Problem> {
    let policy = call.profile;
    let mut problem = Problem::new(
        ProblemType::RejectedIdentifier,
        format!(
            "the profile {:?} does not allow some identifiers",
            policy.name
        ),
    );
    for id in ids {
        let refusal = match id.kind {
            IdentifierKind::Dns if id.is_wildcard() && !policy.allow_wildcards => {
                Some("wildcard names are not allowed by this profile".to_string())
            }
            IdentifierKind::Dns
                if !policy.allowed_dns_names.iter().any(|r| r.allows(&id.value)) =>
            {
                Some(format!("{} is not allowed by this profile", id.value))
            }
            IdentifierKind::Ip => match id.value.parse::<std::net::IpAddr>() {
                Ok(ip) if policy.allowed_ip_ranges.iter().any(|r| r.contains(ip)) => None,
                _ => Some(format!(
                    "{} is not in an IP range this profile allows",
                    id.value
                )),
            },
            _ => None,
        };
        if let Some(detail) = refusal {
            problem = problem.with_subproblem(ProblemType::RejectedIdentifier, detail, id.clone());
        }
    }
    if problem.subproblems.is_empty() {
        Ok(())
    } else {
        if problem.subproblems.len() == 1 {
            problem.detail = problem.subproblems[0].detail.clone();
        }
        Err(problem)
    }
}

/// Compare a CSR's names with the order's identifiers: they must match exactly.
fn check_csr_names(csr: &certkeeper_ca::ParsedCsr, ids: &[Identifier]) -> Result<(), Problem> {
    let mut requested: Vec<String> = Vec::new();
    for n in &csr.dns_names {
        let n = certkeeper_ca::normalize_dns_name(n)
            .map_err(|e| Problem::new(ProblemType::BadCsr, format!("CSR name: {e}")))?;
        requested.push(n);
    }
    requested.extend(csr.ip_addresses.iter().map(|i| i.to_string()));
    if let Some(cn) = csr.common_name() {
        let cn_norm = certkeeper_ca::normalize_dns_name(cn).unwrap_or_else(|_| cn.to_string());
        let cn_ip = cn.parse::<std::net::IpAddr>().ok().map(|i| i.to_string());
        if !requested.contains(&cn_norm) && cn_ip.as_ref().is_none_or(|i| !requested.contains(i)) {
            requested.push(cn_ip.unwrap_or(cn_norm));
        }
    }
    requested.sort();
    requested.dedup();
    let mut ordered: Vec<String> = ids.iter().map(|i| i.value.clone()).collect();
    ordered.sort();
    let extra: Vec<&String> = requested.iter().filter(|n| !ordered.contains(n)).collect();
    let missing: Vec<&String> = ordered.iter().filter(|n| !requested.contains(n)).collect();
    if extra.is_empty() && missing.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !extra.is_empty() {
        parts.push(format!("names not in the order: {}", join(&extra)));
    }
    if !missing.is_empty() {
        parts.push(format!(
            "order identifiers missing from the CSR: {}",
            join(&missing)
        ));
    }
    Err(Problem::new(
        ProblemType::BadCsr,
        format!(
            "the CSR's names must match the order exactly; {}",
            parts.join("; ")
        ),
    ))
}

/// Whether the CSR requests a certificate for `key`.
fn csr_key_is(csr: &certkeeper_ca::ParsedCsr, key: &crate::PublicJwk) -> bool {
    use x509_parser::prelude::FromDer;
    x509_parser::x509::SubjectPublicKeyInfo::from_der(&csr.public_key_der)
        .is_ok_and(|(_, spki)| spki.subject_public_key.data.as_ref() == key.subject_public_key())
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// A challenge validation to run in the background (see [`Engine::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The challenge, `processing`.
    pub challenge: AcmeChallenge,
    /// Its authorization's identifier (with its `*.`).
    pub identifier: Identifier,
    /// The account key's thumbprint, for the key authorization.
    pub thumbprint: String,
    /// The account.
    pub account_id: String,
    /// Its place under the caps on validations in flight, held until it is dropped.
    pub permit: ValidationPermit,
}

/// What a pass over stuck validations took over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// The validations to run again.
    pub validations: Vec<Validation>,
    /// Challenges ended as invalid instead, because their authorization or account key is
    /// unusable (they would otherwise be taken over again and again).
    pub ended: Vec<String>,
}

impl<S: AcmeStore, I: Issuer> Engine<S, I> {
    fn supported_types(&self, id: &Identifier) -> Vec<ChallengeType> {
        let supported = self.config.validation.supported();
        id.challenge_types()
            .into_iter()
            .filter(|t| supported.contains(t))
            .collect()
    }

    /// newOrder (RFC 8555 §7.4): check the identifiers against the profile, reuse the
    /// account's valid authorizations, create the others with their challenges.
    pub async fn new_order(&self, call: &Call<'_>, body: &[u8]) -> Result<Answer, AcmeError> {
        let (jws, account) = self.verify_kid(call, body).await?;
        let p: NewOrderPayload = jws.json()?;
        if p.identifiers.is_empty() {
            return Err(Problem::malformed("an order needs at least one identifier").into());
        }
        let max = call.profile.max_names as usize;
        if p.identifiers.len() > max {
            return Err(Problem::new(
                ProblemType::RejectedIdentifier,
                format!("at most {max} identifiers per order under this profile"),
            )
            .into());
        }
        let mut ids: Vec<Identifier> = Vec::new();
        for raw in &p.identifiers {
            let id = raw.checked().map_err(|e| {
                Problem::new(ProblemType::RejectedIdentifier, e.detail.clone()).with_subproblem(
                    e.kind,
                    e.detail.clone(),
                    raw.clone(),
                )
            })?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        check_policy(call, &ids)?;
        for id in &ids {
            if self.supported_types(id).is_empty() {
                return Err(Problem::new(
                    ProblemType::RejectedIdentifier,
                    format!(
                        "no challenge type this server supports can validate {}",
                        id.value
                    ),
                )
                .with_subproblem(
                    ProblemType::RejectedIdentifier,
                    "no supported challenge",
                    id.clone(),
                )
                .into());
            }
        }
        let replaced_id = match &p.replaces {
            None => None,
            Some(cert_id) => Some(self.check_replaces(&account, cert_id).await?),
        };
        let not_before = parse_time(&p.not_before, "notBefore")?;
        let not_after = parse_time(&p.not_after, "notAfter")?;
        self.check_rate(
            format!("new-order:{}", account.id),
            self.config.new_orders_per_account_per_hour,
        )
        .await?;
        let now = self.now();
        let order_expires = now + self.config.order_lifetime_secs;
        let mut new = Vec::new();
        let mut reused = Vec::new();
        let mut authzs = Vec::new();
        for id in &ids {
            let id_type = match id.kind {
                IdentifierKind::Dns => "dns",
                IdentifierKind::Ip => "ip",
            };
            if let Some(a) = self
                .store
                .reusable_authz(&account.id, id_type, &id.value, order_expires)
                .await?
            {
                reused.push(a.id.clone());
                authzs.push(a);
                continue;
            }
            let authz = AcmeAuthz {
                id: self.store.new_id(),
                account_id: account.id.clone(),
                id_type: id_type.into(),
                id_value: id.value.clone(),
                status: "pending".into(),
                expires_at: now + self.config.authz_lifetime_secs,
            };
            let token = random_token()?;
            let challenges = self
                .supported_types(id)
                .into_iter()
                .map(|t| AcmeChallenge {
                    id: self.store.new_id(),
                    authz_id: authz.id.clone(),
                    kind: t.as_str().into(),
                    token: token.clone(),
                    status: "pending".into(),
                    validated_at: None,
                    error: None,
                    processing_since: None,
                })
                .collect();
            authzs.push(authz.clone());
            new.push(NewAcmeAuthz { authz, challenges });
        }
        self.check_pending_authzs(&account, new.len(), now).await?;
        let order = AcmeOrder {
            id: self.store.new_id(),
            account_id: account.id.clone(),
            status: "pending".into(),
            identifiers: serde_json::to_string(&ids).map_err(internal)?,
            not_before,
            not_after,
            expires_at: order_expires,
            error: None,
            certificate_id: None,
            replaces: p.replaces.clone(),
            replaced_id,
            created_at: now,
        };
        let ev = call
            .actor(Some(&account.id))
            .event("acme.order.create", "acme_order", &order.id)
            .detail(json!({
                "identifiers": ids, "profile": call.profile.name, "replaces": order.replaced_id,
            }));
        match self.store.order_insert(&order, &new, &reused, &ev).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) if order.replaced_id.is_some() => {
                return Err(Problem::new(
                    ProblemType::AlreadyReplaced,
                    "an order already replaces this certificate",
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        authzs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Answer::json(201, order_json(call, &order, &authzs, now)?)
            .location(call.link("order", &order.id)))
    }

    /// Refuse an order whose `adding` new authorizations would take the account past
    /// [`super::Config::max_pending_authorizations_per_account`] pending ones.
    async fn check_pending_authzs(
        &self,
        account: &AcmeAccount,
        adding: usize,
        now: i64,
    ) -> Result<(), AcmeError> {
        let limit = i64::from(self.config.max_pending_authorizations_per_account);
        if limit == 0 || adding == 0 {
            return Ok(());
        }
        let pending = self.store.pending_authz_count(&account.id, now).await?;
        if pending + adding as i64 > limit {
            return Err(Problem::new(
                ProblemType::RateLimited,
                format!(
                    "an account may hold at most {limit} pending authorizations; it holds {pending} and this order needs {adding} more: complete, deactivate or let some expire"
                ),
            )
            .with_retry_after(60)
            .into());
        }
        Ok(())
    }

    /// A place under the caps on validations in flight for `account`, or `rateLimited`.
    fn validation_permit(&self, account: &str) -> Result<ValidationPermit, AcmeError> {
        self.limits.try_acquire(&account.to_string()).map_err(|r| {
            let detail = match r {
                LimitReached::Global(n) => {
                    format!("the server is running {n} validations already; try again shortly")
                }
                LimitReached::PerKey(n) => format!(
                    "this account has {n} validations in flight already; try again when one ends"
                ),
            };
            Problem::new(ProblemType::RateLimited, detail)
                .with_retry_after(self.config.validation.timeout.as_secs().max(1))
                .into()
        })
    }

    /// The certificate an order's `replaces` names (RFC 9773 §5): ordered by this account
    /// and not replaced yet. Returns its id.
    async fn check_replaces(
        &self,
        account: &AcmeAccount,
        cert_id: &str,
    ) -> Result<String, AcmeError> {
        let rec = match self.cert_by_ari_id(cert_id).await {
            Ok(rec) => rec,
            Err(AcmeError::Refused(p)) => {
                return Err(Problem::malformed(format!("replaces: {}", p.detail)).into());
            }
            Err(e) => return Err(e),
        };
        let owned = self
            .store
            .order_by_certificate(&rec.id)
            .await?
            .is_some_and(|o| o.account_id == account.id);
        if !owned {
            return Err(Problem::unauthorized(
                "replaces names a certificate this account did not order",
            )
            .into());
        }
        if self.store.is_replaced(&rec.id).await? {
            return Err(Problem::new(
                ProblemType::AlreadyReplaced,
                "an order already replaces this certificate",
            )
            .into());
        }
        Ok(rec.id)
    }

    /// One of the account's orders, with its authorizations.
    async fn own_order(
        &self,
        account: &AcmeAccount,
        id: &str,
    ) -> Result<(AcmeOrder, Vec<AcmeAuthz>), AcmeError> {
        Ok(self
            .store
            .order_with_authzs(id)
            .await?
            .filter(|(o, _)| o.account_id == account.id)
            .ok_or_else(|| Problem::unauthorized("no such order for this account"))?)
    }

    /// An order (POST-as-GET), with its effective status.
    pub async fn order(&self, call: &Call<'_>, id: &str, body: &[u8]) -> Result<Answer, AcmeError> {
        let (jws, account) = self.verify_kid(call, body).await?;
        if !jws.is_post_as_get() {
            return Err(Problem::malformed("orders are read with POST-as-GET").into());
        }
        let (o, authzs) = self.own_order(&account, id).await?;
        let v = order_json(call, &o, &authzs, self.now())?;
        let processing = v["status"] == "processing";
        let mut a = Answer::json(200, v);
        if processing {
            a = a.retry_after(1);
        }
        Ok(a)
    }

    /// finalize (RFC 8555 §7.4): a ready order, a CSR naming exactly its identifiers with
    /// a key the profile allows; the order is taken with a compare-and-set, and the
    /// certificate and the order's move to valid are committed together.
    pub async fn finalize(
        &self,
        call: &Call<'_>,
        id: &str,
        body: &[u8],
    ) -> Result<Answer, AcmeError> {
        let (jws, account) = self.verify_kid(call, body).await?;
        let p: FinalizePayload = jws.json()?;
        let (o, authzs) = self.own_order(&account, id).await?;
        let status = effective_status(&o, &authzs, self.now());
        if status != Status::Ready {
            return Err(Problem::new(
                ProblemType::OrderNotReady,
                format!("the order is {}, not ready", status.as_str()),
            )
            .into());
        }
        let der = crate::b64_decode(&p.csr, "csr")
            .map_err(|e| Problem::new(ProblemType::BadCsr, e.detail))?;
        let csr = certkeeper_ca::parse_csr(&der)
            .map_err(|e| Problem::new(ProblemType::BadCsr, e.to_string()))?;
        let ids = order_identifiers(&o)?;
        check_csr_names(&csr, &ids)?;
        // RFC 8555 §11.1: the certificate's key must not be the account key.
        if csr_key_is(&csr, &account_key(&account)?) {
            return Err(Problem::new(
                ProblemType::BadCsr,
                "the CSR's public key is the account key; use a separate key for the certificate",
            )
            .into());
        }
        let key_alg = csr.key_algorithm;
        if !call.profile.allowed_key_types.contains(&key_alg) {
            return Err(Problem::new(
                ProblemType::BadCsr,
                format!(
                    "key type {key_alg} is not allowed by the profile {:?}",
                    call.profile.name
                ),
            )
            .into());
        }
        self.recheck_caa(&authzs).await?;
        if !self.store.order_start_processing(&o.id, self.now()).await? {
            return Err(Problem::new(
                ProblemType::OrderNotReady,
                "the order is already being finalized",
            )
            .into());
        }
        let mut req = certkeeper_ca::IssuanceRequest::from_csr(&csr);
        if let Some(na) = o.not_after {
            req.not_after = OffsetDateTime::from_unix_timestamp(na).ok();
        }
        let issued = self
            .issuer
            .issue_for_order(
                &call.profile.name,
                req,
                &call.actor(Some(&account.id)),
                &o.id,
            )
            .await;
        let o = match issued {
            // Valid with its certificate, as committed.
            Ok(i) if i.order_completed => AcmeOrder {
                status: "valid".into(),
                error: None,
                certificate_id: Some(i.certificate_id),
                ..o
            },
            // No longer processing when the certificate was recorded (given up on as
            // interrupted): answer with what it is now.
            Ok(_) => self
                .store
                .order(&o.id)
                .await?
                .ok_or_else(|| internal("order vanished"))?,
            Err(e) => {
                // The order stays ready: the client may try again with a better CSR.
                let _ = self
                    .store
                    .order_transition(&o.id, "processing", "pending", None, None)
                    .await;
                return Err(match e {
                    IssuerError::Refused(d) => Problem::new(ProblemType::BadCsr, d).into(),
                    other => AcmeError::Issuer(other),
                });
            }
        };
        Ok(
            Answer::json(200, order_json(call, &o, &authzs, self.now())?)
                .location(call.link("order", &o.id)),
        )
    }

    /// Check CAA again for each authorization of the order validated longer ago than
    /// [`CAA_RECHECK_AFTER_SECS`] (when CAA checking is on): records published since then
    /// can forbid this CA. A refusal is a `caa` problem (a failed lookup a `dns` one) and
    /// the order stays ready.
    async fn recheck_caa(&self, authzs: &[AcmeAuthz]) -> Result<(), AcmeError> {
        let cfg = &self.config.validation;
        if cfg.caa_identities.is_empty() {
            return Ok(());
        }
        let now = self.now();
        for a in authzs {
            let validated = self
                .store
                .challenges(&a.id)
                .await?
                .iter()
                .filter_map(|c| c.validated_at)
                .max();
            if validated.is_some_and(|at| now - at < CAA_RECHECK_AFTER_SECS) {
                continue;
            }
            crate::check_caa(cfg, &authz_identifier(a)).await?;
        }
        Ok(())
    }

    /// An authorization: read it (POST-as-GET) or deactivate it.
    pub async fn authz(&self, call: &Call<'_>, id: &str, body: &[u8]) -> Result<Answer, AcmeError> {
        let (jws, account) = self.verify_kid(call, body).await?;
        let (mut a, challenges) = self
            .store
            .authz_with_challenges(id)
            .await?
            .filter(|(a, _)| a.account_id == account.id)
            .ok_or_else(|| Problem::unauthorized("no such authorization for this account"))?;
        if !jws.is_post_as_get() {
            let u: AuthzUpdate = jws.json()?;
            if u.status != "deactivated" {
                return Err(Problem::malformed("an authorization can only be deactivated").into());
            }
            let ev =
                call.actor(Some(&account.id))
                    .event("acme.authz.deactivate", "acme_authz", &a.id);
            if !self.store.authz_deactivate(&a.id, &ev, self.now()).await? {
                return Err(Problem::malformed(format!(
                    "an authorization that is {} cannot be deactivated",
                    a.status
                ))
                .into());
            }
            a.status = "deactivated".into();
        }
        Ok(Answer::json(
            200,
            authz_json(call, &a, &challenges, self.now()),
        ))
    }

    /// A challenge: read it (POST-as-GET), or (with `{}`) start its validation. A
    /// validation starts once, with a compare-and-set; the one that started it gets the
    /// [`Validation`] to hand to the background runner.
    pub async fn challenge(
        &self,
        call: &Call<'_>,
        id: &str,
        body: &[u8],
    ) -> Result<(Answer, Option<Validation>), AcmeError> {
        let (jws, account) = self.verify_kid(call, body).await?;
        let (c, authz) = self
            .store
            .challenge_with_authz(id)
            .await?
            .filter(|(_, a)| a.account_id == account.id)
            .ok_or_else(|| Problem::unauthorized("no such challenge for this account"))?;
        let now = self.now();
        let mut validation = None;
        if !jws.is_post_as_get() {
            let _: Value = jws.json()?;
            if authz_status(parse_status(&authz.status), authz.expires_at, now) == Status::Pending
                && c.status == "pending"
            {
                // The place under the caps is taken before the challenge is: over a cap, the
                // client is told to retry and the challenge stays pending.
                let permit = self.validation_permit(&account.id)?;
                if self.store.challenge_start(&c.id, &authz.id, now).await? {
                    validation = Some(Validation {
                        challenge: c.clone(),
                        identifier: authz_identifier(&authz),
                        thumbprint: account_key(&account)?.thumbprint(),
                        account_id: account.id.clone(),
                        permit,
                    });
                }
            }
        }
        let c = if validation.is_some() {
            AcmeChallenge {
                status: "processing".into(),
                processing_since: Some(now),
                ..c
            }
        } else if jws.is_post_as_get() {
            c
        } else {
            // Someone else moved it on: answer with what it is now.
            self.store
                .challenge(id)
                .await?
                .ok_or_else(|| internal("challenge vanished"))?
        };
        let mut a = Answer::json(200, challenge_json(call, &c));
        a.up = Some(call.link("authz", &authz.id));
        if c.status == "processing" {
            a = a.retry_after(1);
        }
        Ok((a, validation))
    }

    /// Run a validation (this is the only part that dials out), then check CAA once control
    /// is proven, and record the outcome. Returns what [`Engine::record_validation`] says.
    pub async fn validate(&self, v: &Validation) -> Result<bool, AcmeError> {
        let cfg = &self.config.validation;
        let target = Identifier {
            kind: v.identifier.kind,
            value: v.identifier.base().to_string(),
        };
        let keyauth = key_authorization(&v.challenge.token, &v.thumbprint);
        let outcome = match ChallengeType::parse(&v.challenge.kind) {
            Some(k) => match crate::validate(cfg, k, &target, &v.challenge.token, &keyauth).await {
                Ok(()) => crate::check_caa(cfg, &v.identifier).await,
                Err(p) => Err(p),
            },
            None => Err(Problem::malformed("unknown challenge type")),
        };
        self.record_validation(v, outcome).await
    }

    /// Record a validation's outcome on the challenge and its authorization: true if it
    /// was the first recorded (false: another validation of it, say one taken over from a
    /// process thought dead, recorded first).
    pub async fn record_validation(
        &self,
        v: &Validation,
        outcome: Result<(), Problem>,
    ) -> Result<bool, AcmeError> {
        let c = &v.challenge;
        let error = outcome.as_ref().err().map(|p| p.to_json().to_string());
        let ev = Actor::acme(Some(&v.account_id), None)
            .event("acme.challenge.validate", "acme_challenge", &c.id)
            .detail(json!({
                "type": c.kind, "identifier": v.identifier.value,
                "result": if outcome.is_ok() { "valid" } else { "invalid" },
                "error": outcome.as_ref().err().map(|p| p.detail.clone()),
            }));
        Ok(self
            .store
            .challenge_finish(c, error.as_deref(), &ev, self.now())
            .await?)
    }

    /// Take over the challenges left `processing` by a process that died mid-validation
    /// (started longer ago than [`Config::stuck_validation_after_secs`]), each with a
    /// compare-and-set on its start time so that of several replicas exactly one takes it.
    /// A challenge whose account key is unusable is ended as invalid instead.
    pub async fn reclaim_stuck_validations(&self) -> Result<Reclaimed, AcmeError> {
        let now = self.now();
        let after = self.config.stuck_validation_after_secs;
        let mut taken = Reclaimed::default();
        for (id, since) in self
            .store
            .stuck_challenges(now - after, RECLAIM_BATCH)
            .await?
        {
            let Some(c) = self.store.challenge(&id).await? else {
                continue;
            };
            let authz = self.store.authz(&c.authz_id).await?;
            let account = match &authz {
                Some(a) => self.store.account(&a.account_id).await?,
                None => None,
            };
            // Over a cap on validations in flight, the rest waits for a later pass.
            let permit = match &authz {
                Some(a) => match self.limits.try_acquire(&a.account_id) {
                    Ok(p) => Some(p),
                    Err(_) => break,
                },
                None => None,
            };
            let ev = Actor::acme(None, None)
                .event("acme.challenge.reclaim", "acme_challenge", &id)
                .detail(json!({ "processing_since": rfc3339(since) }));
            if !self.store.challenge_reclaim(&id, since, &ev, now).await? {
                continue;
            }
            let key = account
                .as_ref()
                .map(|a| account_key(a).map(|k| k.thumbprint()));
            match (authz, account, key, permit) {
                (Some(authz), Some(account), Some(Ok(thumbprint)), Some(permit)) => {
                    taken.validations.push(Validation {
                        challenge: c,
                        identifier: authz_identifier(&authz),
                        thumbprint,
                        account_id: account.id,
                        permit,
                    })
                }
                // Without its account key the challenge cannot be validated: end it rather
                // than take it over again and again.
                _ => {
                    let error = Problem::internal().to_json().to_string();
                    let ev = Actor::acme(None, None)
                        .event("acme.challenge.validate", "acme_challenge", &id)
                        .detail(json!({"result": "invalid", "error": "internal error"}));
                    self.store
                        .challenge_finish(&c, Some(&error), &ev, now)
                        .await?;
                    taken.ended.push(id);
                }
            }
        }
        Ok(taken)
    }

    /// End orders whose finalization was interrupted (the process stopped between taking
    /// the order and recording its certificate): they become invalid with a
    /// `serverInternal` error, so clients stop polling and order again. Returns their ids.
    pub async fn fail_interrupted_orders(&self) -> Result<Vec<String>, AcmeError> {
        let now = self.now();
        let error = Problem::new(
            ProblemType::ServerInternal,
            "finalization was interrupted; please create a new order",
        )
        .to_json()
        .to_string();
        Ok(self
            .store
            .fail_stuck_orders(now - INTERRUPTED_FINALIZE_SECS, &error, now)
            .await?)
    }
}
