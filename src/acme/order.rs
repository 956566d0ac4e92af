//! Orders, authorizations, challenges (with background validation) and finalization.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use certkeeper_acme::{
    ChallengeType, Identifier, IdentifierKind, Problem, ProblemType, Status, ValidationConfig,
    authz_status, key_authorization, order_status,
};
use certkeeper_ca::IssuanceRequest;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::account::check_rate;
use super::{AcmePost, Ctx, Reply, account_key, internal};
use crate::error::Error;
use crate::services::pki::Pki;
use crate::store::{
    AcmeAccount, AcmeAuthz, AcmeChallenge, AcmeOrder, NewAcmeAuthz, StoreError, new_id,
};

/// RFC 3339 text of Unix seconds.
pub(crate) fn rfc3339(ts: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn random_token() -> Result<String, Problem> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| internal("random token"))?;
    Ok(certkeeper_acme::b64(&bytes))
}

fn parse_status(s: &str) -> Status {
    Status::parse(s).unwrap_or(Status::Invalid)
}

/// The identifiers of an order as stored.
pub(crate) fn order_identifiers(o: &AcmeOrder) -> Result<Vec<Identifier>, Problem> {
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
pub(crate) fn effective_status(ctx: &Ctx, o: &AcmeOrder, authzs: &[AcmeAuthz]) -> Status {
    let now = ctx.now();
    let statuses: Vec<Status> = authzs
        .iter()
        .map(|a| authz_status(parse_status(&a.status), a.expires_at, now))
        .collect();
    order_status(parse_status(&o.status), &statuses, o.expires_at, now)
}

fn order_json(ctx: &Ctx, o: &AcmeOrder, authzs: &[AcmeAuthz]) -> Result<Value, Problem> {
    let status = effective_status(ctx, o, authzs);
    let mut v = json!({
        "status": status.as_str(),
        "expires": rfc3339(o.expires_at),
        "identifiers": order_identifiers(o)?,
        "authorizations": authzs.iter().map(|a| ctx.link("authz", &a.id)).collect::<Vec<_>>(),
        "finalize": format!("{}/finalize", ctx.link("order", &o.id)),
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
        v["certificate"] = json!(ctx.link("cert", c));
    }
    if let Some(r) = &o.replaces {
        v["replaces"] = json!(r);
    }
    if let Some(e) = &o.error {
        v["error"] = serde_json::from_str(e).unwrap_or(Value::Null);
    }
    Ok(v)
}

fn challenge_json(ctx: &Ctx, c: &AcmeChallenge) -> Value {
    let mut v = json!({
        "type": c.kind,
        "url": ctx.link("chall", &c.id),
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

fn authz_json(ctx: &Ctx, a: &AcmeAuthz, challenges: &[AcmeChallenge]) -> Value {
    let id = authz_identifier(a);
    let status = authz_status(parse_status(&a.status), a.expires_at, ctx.now());
    let mut v = json!({
        "status": status.as_str(),
        "expires": rfc3339(a.expires_at),
        "identifier": {"type": id.kind, "value": id.base()},
        "challenges": challenges.iter().map(|c| challenge_json(ctx, c)).collect::<Vec<_>>(),
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
fn check_policy(ctx: &Ctx, ids: &[Identifier]) -> Result<(), Problem> {
    let policy = &ctx.profile.policy;
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

fn supported_types(ctx: &Ctx, id: &Identifier) -> Vec<ChallengeType> {
    let supported = validation_config(ctx.pki()).supported();
    id.challenge_types()
        .into_iter()
        .filter(|t| supported.contains(t))
        .collect()
}

pub(crate) fn validation_config(pki: &Pki) -> ValidationConfig {
    let s = &pki.settings().acme;
    ValidationConfig {
        http01_port: s.http01_port,
        tls_alpn01_port: s.tls_alpn01_port,
        dns_resolvers: s.dns_resolvers.clone(),
        timeout: s.validation_timeout,
        caa_identities: s.caa_identities.clone(),
    }
}

pub(super) async fn new_order(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(new_order_inner(ctx, &p.headers, &p.body)))
        .await
}

async fn new_order_inner(ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> Result<Reply, Problem> {
    let (jws, account) = ctx.verify_kid(headers, body).await?;
    let p: NewOrderPayload = jws.json()?;
    if p.identifiers.is_empty() {
        return Err(Problem::malformed("an order needs at least one identifier"));
    }
    let max = ctx.profile.policy.max_names as usize;
    if p.identifiers.len() > max {
        return Err(Problem::new(
            ProblemType::RejectedIdentifier,
            format!("at most {max} identifiers per order under this profile"),
        ));
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
    check_policy(ctx, &ids)?;
    for id in &ids {
        if supported_types(ctx, id).is_empty() {
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
            ));
        }
    }
    let replaced_id = match &p.replaces {
        None => None,
        Some(cert_id) => {
            let rec = super::cert::cert_by_ari_id(ctx, cert_id)
                .await
                .map_err(|e| Problem::malformed(format!("replaces: {}", e.detail)))?;
            let owned = ctx
                .pki()
                .store()
                .acme_order_by_certificate(&rec.id)
                .await
                .map_err(internal)?
                .is_some_and(|o| o.account_id == account.id);
            if !owned {
                return Err(Problem::unauthorized(
                    "replaces names a certificate this account did not order",
                ));
            }
            if ctx
                .pki()
                .store()
                .acme_is_replaced(&rec.id)
                .await
                .map_err(internal)?
            {
                return Err(Problem::new(
                    ProblemType::AlreadyReplaced,
                    "an order already replaces this certificate",
                ));
            }
            Some(rec.id)
        }
    };
    let not_before = parse_time(&p.not_before, "notBefore")?;
    let not_after = parse_time(&p.not_after, "notAfter")?;
    let settings = &ctx.pki().settings().acme;
    check_rate(
        ctx,
        format!("new-order:{}", account.id),
        settings.new_orders_per_account_per_hour,
    )
    .await?;
    let now = ctx.now();
    let order_expires = now + settings.order_lifetime.as_secs() as i64;
    let store = ctx.pki().store();
    let mut new = Vec::new();
    let mut reused = Vec::new();
    let mut authzs = Vec::new();
    for id in &ids {
        let id_type = match id.kind {
            IdentifierKind::Dns => "dns",
            IdentifierKind::Ip => "ip",
        };
        if let Some(a) = store
            .acme_reusable_authz(&account.id, id_type, &id.value, order_expires)
            .await
            .map_err(internal)?
        {
            reused.push(a.id.clone());
            authzs.push(a);
            continue;
        }
        let authz = AcmeAuthz {
            id: new_id(),
            account_id: account.id.clone(),
            id_type: id_type.into(),
            id_value: id.value.clone(),
            status: "pending".into(),
            expires_at: now + settings.authz_lifetime.as_secs() as i64,
        };
        let token = random_token()?;
        let challenges = supported_types(ctx, id)
            .into_iter()
            .map(|t| AcmeChallenge {
                id: new_id(),
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
    let order = AcmeOrder {
        id: new_id(),
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
    let ev = ctx
        .actor(Some(&account.id))
        .event("acme.order.create", "acme_order")
        .object(&order.id)
        .detail(json!({"identifiers": ids, "profile": ctx.profile.policy.name}));
    match store.acme_order_insert(&order, &new, &reused, &ev).await {
        Ok(()) => {}
        Err(crate::store::StoreError::Conflict(_)) if order.replaced_id.is_some() => {
            return Err(Problem::new(
                ProblemType::AlreadyReplaced,
                "an order already replaces this certificate",
            ));
        }
        Err(e) => return Err(internal(e)),
    }
    authzs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(
        Reply::json(StatusCode::CREATED, &order_json(ctx, &order, &authzs)?)
            .header(header::LOCATION, ctx.link("order", &order.id)),
    )
}

/// One of the account's orders, with its authorizations.
async fn own_order(
    ctx: &Ctx,
    account: &AcmeAccount,
    id: &str,
) -> Result<(AcmeOrder, Vec<AcmeAuthz>), Problem> {
    ctx.pki()
        .store()
        .acme_order_with_authzs(id)
        .await
        .map_err(internal)?
        .filter(|(o, _)| o.account_id == account.id)
        .ok_or_else(|| Problem::unauthorized("no such order for this account"))
}

pub(super) async fn order(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(order_inner(ctx, &p.id, &p.headers, &p.body)))
        .await
}

async fn order_inner(
    ctx: &Ctx,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Problem> {
    let (jws, account) = ctx.verify_kid(headers, body).await?;
    if !jws.is_post_as_get() {
        return Err(Problem::malformed("orders are read with POST-as-GET"));
    }
    let (o, authzs) = own_order(ctx, &account, id).await?;
    let v = order_json(ctx, &o, &authzs)?;
    let mut r = Reply::json(StatusCode::OK, &v);
    if v["status"] == "processing" {
        r = r.header(header::RETRY_AFTER, "1");
    }
    Ok(r)
}

#[derive(Deserialize)]
struct FinalizePayload {
    csr: String,
}

pub(super) async fn finalize(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(finalize_inner(ctx, &p.id, &p.headers, &p.body)))
        .await
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

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

async fn finalize_inner(
    ctx: &Ctx,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Problem> {
    let (jws, account) = ctx.verify_kid(headers, body).await?;
    let p: FinalizePayload = jws.json()?;
    let (o, authzs) = own_order(ctx, &account, id).await?;
    let store = ctx.pki().store();
    let status = effective_status(ctx, &o, &authzs);
    if status != Status::Ready {
        return Err(Problem::new(
            ProblemType::OrderNotReady,
            format!("the order is {}, not ready", status.as_str()),
        ));
    }
    let der = certkeeper_acme::b64_decode(&p.csr, "csr")
        .map_err(|e| Problem::new(ProblemType::BadCsr, e.detail))?;
    let csr = certkeeper_ca::parse_csr(&der)
        .map_err(|e| Problem::new(ProblemType::BadCsr, e.to_string()))?;
    let ids = order_identifiers(&o)?;
    check_csr_names(&csr, &ids)?;
    let key_alg = csr.key_algorithm;
    if !ctx.profile.policy.allowed_key_types.contains(&key_alg) {
        return Err(Problem::new(
            ProblemType::BadCsr,
            format!(
                "key type {key_alg} is not allowed by the profile {:?}",
                ctx.profile.policy.name
            ),
        ));
    }
    recheck_caa(ctx, &authzs).await?;
    if !store
        .acme_order_start_processing(&o.id, ctx.now())
        .await
        .map_err(internal)?
    {
        return Err(Problem::new(
            ProblemType::OrderNotReady,
            "the order is already being finalized",
        ));
    }
    let mut req = IssuanceRequest::from_csr(&csr);
    if let Some(na) = o.not_after {
        req.not_after = OffsetDateTime::from_unix_timestamp(na).ok();
    }
    let issued = ctx
        .pki()
        .issue_for_acme_order(&ctx.profile, req, &ctx.actor(Some(&account.id)), &o.id)
        .await;
    let o = match issued {
        // Valid with its certificate, as committed.
        Ok((issued, true)) => AcmeOrder {
            status: "valid".into(),
            error: None,
            certificate_id: Some(issued.id),
            ..o
        },
        // No longer processing when the certificate was recorded (given up on as
        // interrupted): answer with what it is now.
        Ok((_, false)) => store
            .acme_order(&o.id)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("order vanished"))?,
        Err(e) => {
            // The order stays ready: the client may try again with a better CSR.
            let _ = store
                .acme_order_transition(&o.id, "processing", "pending", None, None)
                .await;
            return Err(match e {
                Error::Policy(v) => Problem::new(ProblemType::BadCsr, v.detail),
                Error::BadCsr(d) | Error::BadRequest(d) => Problem::new(ProblemType::BadCsr, d),
                other => internal(other),
            });
        }
    };
    Ok(Reply::json(StatusCode::OK, &order_json(ctx, &o, &authzs)?)
        .header(header::LOCATION, ctx.link("order", &o.id)))
}

/// How long the CAA check made when an authorization was validated covers issuance: eight
/// hours, as the CA/Browser Forum's Baseline Requirements allow. Authorizations are reused
/// for longer, so an older one is checked again at finalize.
const CAA_RECHECK_AFTER_SECS: i64 = 8 * 3600;

/// Check CAA again for each authorization of the order validated longer ago than
/// [`CAA_RECHECK_AFTER_SECS`] (when CAA checking is on): records published since then can
/// forbid this CA. A refusal is a `caa` problem (a failed lookup a `dns` one) and the order
/// stays ready.
async fn recheck_caa(ctx: &Ctx, authzs: &[AcmeAuthz]) -> Result<(), Problem> {
    let cfg = validation_config(ctx.pki());
    if cfg.caa_identities.is_empty() {
        return Ok(());
    }
    let now = ctx.now();
    for a in authzs {
        let validated = ctx
            .pki()
            .store()
            .acme_challenges(&a.id)
            .await
            .map_err(internal)?
            .iter()
            .filter_map(|c| c.validated_at)
            .max();
        if validated.is_some_and(|at| now - at < CAA_RECHECK_AFTER_SECS) {
            continue;
        }
        certkeeper_acme::check_caa(&cfg, &authz_identifier(a)).await?;
    }
    Ok(())
}

/// One of the account's authorizations, with its challenges.
async fn own_authz(
    ctx: &Ctx,
    account: &AcmeAccount,
    id: &str,
) -> Result<(AcmeAuthz, Vec<AcmeChallenge>), Problem> {
    ctx.pki()
        .store()
        .acme_authz_with_challenges(id)
        .await
        .map_err(internal)?
        .filter(|(a, _)| a.account_id == account.id)
        .ok_or_else(|| Problem::unauthorized("no such authorization for this account"))
}

#[derive(Deserialize)]
struct AuthzUpdate {
    status: String,
}

pub(super) async fn authz(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(authz_inner(ctx, &p.id, &p.headers, &p.body)))
        .await
}

async fn authz_inner(
    ctx: &Ctx,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Problem> {
    let (jws, account) = ctx.verify_kid(headers, body).await?;
    let (mut a, challenges) = own_authz(ctx, &account, id).await?;
    if !jws.is_post_as_get() {
        let u: AuthzUpdate = jws.json()?;
        if u.status != "deactivated" {
            return Err(Problem::malformed(
                "an authorization can only be deactivated",
            ));
        }
        let ev = ctx
            .actor(Some(&account.id))
            .event("acme.authz.deactivate", "acme_authz")
            .object(&a.id);
        if !ctx
            .pki()
            .store()
            .acme_authz_deactivate(&a.id, &ev, ctx.now())
            .await
            .map_err(internal)?
        {
            return Err(Problem::malformed(format!(
                "an authorization that is {} cannot be deactivated",
                a.status
            )));
        }
        a.status = "deactivated".into();
    }
    let v = authz_json(ctx, &a, &challenges);
    Ok(Reply::json(StatusCode::OK, &v))
}

pub(super) async fn challenge(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(challenge_inner(ctx, &p.id, &p.headers, &p.body)))
        .await
}

async fn challenge_inner(
    ctx: &Ctx,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Problem> {
    let (jws, account) = ctx.verify_kid(headers, body).await?;
    let store = ctx.pki().store();
    let (c, authz) = store
        .acme_challenge_with_authz(id)
        .await
        .map_err(internal)?
        .filter(|(_, a)| a.account_id == account.id)
        .ok_or_else(|| Problem::unauthorized("no such challenge for this account"))?;
    let now = ctx.now();
    let mut started = false;
    if !jws.is_post_as_get() {
        let _: Value = jws.json()?;
        if authz_status(parse_status(&authz.status), authz.expires_at, now) == Status::Pending
            && store
                .acme_challenge_start(&c.id, &authz.id, now)
                .await
                .map_err(internal)?
        {
            started = true;
            let thumbprint = account_key(&account)?.thumbprint();
            spawn_validation(
                ctx.state.pki.clone(),
                c.clone(),
                authz_identifier(&authz),
                thumbprint,
                account.id.clone(),
            );
        }
    }
    let c = if started {
        AcmeChallenge {
            status: "processing".into(),
            processing_since: Some(now),
            ..c
        }
    } else if jws.is_post_as_get() {
        c
    } else {
        // Someone else moved it on: answer with what it is now.
        store
            .acme_challenge(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("challenge vanished"))?
    };
    let mut r = Reply::json(StatusCode::OK, &challenge_json(ctx, &c)).header(
        header::LINK,
        format!("<{}>;rel=\"up\"", ctx.link("authz", &authz.id)),
    );
    if c.status == "processing" {
        r = r.header(header::RETRY_AFTER, "1");
    }
    Ok(r)
}

/// Validate in the background and record the outcome on the challenge and authorization.
fn spawn_validation(
    pki: Arc<Pki>,
    c: AcmeChallenge,
    identifier: Identifier,
    thumbprint: String,
    account_id: String,
) {
    tokio::spawn(async move {
        let cfg = validation_config(&pki);
        let kind = ChallengeType::parse(&c.kind);
        let target = Identifier {
            kind: identifier.kind,
            value: identifier.base().to_string(),
        };
        let keyauth = key_authorization(&c.token, &thumbprint);
        // CAA is checked once control is proven, before the authorization becomes valid.
        let outcome = match kind {
            Some(k) => {
                match certkeeper_acme::validate(&cfg, k, &target, &c.token, &keyauth).await {
                    Ok(()) => certkeeper_acme::check_caa(&cfg, &identifier).await,
                    Err(p) => Err(p),
                }
            }
            None => Err(Problem::malformed("unknown challenge type")),
        };
        let error = outcome.as_ref().err().map(|p| p.to_json().to_string());
        let ev = crate::services::pki::Actor {
            name: format!("acme:{account_id}"),
            source: None,
        }
        .event("acme.challenge.validate", "acme_challenge")
        .object(&c.id)
        .detail(json!({
            "type": c.kind, "identifier": identifier.value,
            "result": if outcome.is_ok() { "valid" } else { "invalid" },
            "error": outcome.as_ref().err().map(|p| p.detail.clone()),
        }));
        let now = pki.now().unix_timestamp();
        match pki
            .store()
            .acme_challenge_finish(&c, error.as_deref(), &ev, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(challenge = %c.id, "another validation of this challenge was recorded first");
            }
            Err(e) => {
                tracing::error!(error = %e, challenge = %c.id, "recording a validation result failed");
            }
        }
    });
}

/// How many stuck challenges one pass takes over at most.
const RECLAIM_BATCH: i64 = 100;

/// Validate again the challenges left `processing` by a process that died mid-validation:
/// those whose validation started longer ago than one can take
/// ([`crate::config::AcmeSettings::stuck_validation_after`]). Each is taken over with a
/// compare-and-set on its start time, so of several replicas sharing the database exactly one
/// validates it again. Returns how many this pass took over.
/// How long an order may stay `processing`: finalization signs within one request, so an
/// order older than this was interrupted by a stopped process.
const INTERRUPTED_FINALIZE_SECS: i64 = 120;

/// End orders whose finalization was interrupted (the process stopped between taking the
/// order and recording its certificate): they become invalid with a `serverInternal` error,
/// so clients stop polling and order again. Returns how many.
pub(crate) async fn fail_interrupted_orders(pki: &Arc<Pki>) -> Result<usize, StoreError> {
    let now = pki.now().unix_timestamp();
    let error = Problem::new(
        ProblemType::ServerInternal,
        "finalization was interrupted; please create a new order",
    )
    .to_json()
    .to_string();
    let ids = pki
        .store()
        .acme_fail_stuck_orders(now - INTERRUPTED_FINALIZE_SECS, &error, now)
        .await?;
    for id in &ids {
        tracing::warn!(order = %id, "an order's finalization was interrupted; it is now invalid");
    }
    Ok(ids.len())
}

pub(crate) async fn reclaim_stuck_validations(pki: &Arc<Pki>) -> Result<usize, StoreError> {
    let now = pki.now().unix_timestamp();
    let after = pki.settings().acme.stuck_validation_after().as_secs() as i64;
    let store = pki.store();
    let mut taken = 0;
    for (id, since) in store
        .acme_stuck_challenges(now - after, RECLAIM_BATCH)
        .await?
    {
        let ev = crate::services::pki::Actor {
            name: "acme".into(),
            source: None,
        }
        .event("acme.challenge.reclaim", "acme_challenge")
        .object(&id)
        .detail(json!({ "processing_since": rfc3339(since) }));
        if !store.acme_challenge_reclaim(&id, since, &ev, now).await? {
            continue;
        }
        taken += 1;
        let Some(c) = store.acme_challenge(&id).await? else {
            continue;
        };
        tracing::warn!(challenge = %id, processing_since = since, "a validation was left unfinished; validating again");
        let authz = store.acme_authz(&c.authz_id).await?;
        let account = match &authz {
            Some(a) => store.acme_account(&a.account_id).await?,
            None => None,
        };
        let key = account
            .as_ref()
            .map(|a| account_key(a).map(|k| k.thumbprint()));
        match (authz, account, key) {
            (Some(authz), Some(account), Some(Ok(thumbprint))) => spawn_validation(
                pki.clone(),
                c,
                authz_identifier(&authz),
                thumbprint,
                account.id,
            ),
            // Without its account key the challenge cannot be validated: end it rather than
            // take it over again and again.
            _ => {
                tracing::error!(challenge = %id, "a stuck challenge's authorization or account key is unusable");
                let error = Problem::internal().to_json().to_string();
                let ev = crate::services::pki::Actor {
                    name: "acme".into(),
                    source: None,
                }
                .event("acme.challenge.validate", "acme_challenge")
                .object(&id)
                .detail(json!({"result": "invalid", "error": "internal error"}));
                store
                    .acme_challenge_finish(&c, Some(&error), &ev, now)
                    .await?;
            }
        }
    }
    Ok(taken)
}
