//! Accounts: newAccount, account updates and deactivation, the orders list, key change.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use certkeeper_acme::{Jws, KeyRef, Problem, ProblemType, PublicJwk};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AcmePost, Ctx, Reply, account_key, internal};
use crate::store::{AcmeAccount, StoreError, new_id};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NewAccountPayload {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
    #[serde(default)]
    only_return_existing: bool,
    #[serde(default)]
    external_account_binding: Option<Value>,
}

#[derive(Deserialize)]
struct UpdatePayload {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
}

fn check_contacts(contacts: &[String]) -> Result<(), Problem> {
    if contacts.len() > 10 {
        return Err(Problem::new(
            ProblemType::InvalidContact,
            "at most 10 contacts",
        ));
    }
    for c in contacts {
        let Some(addr) = c.strip_prefix("mailto:") else {
            return Err(Problem::new(
                ProblemType::UnsupportedContact,
                format!("contact {c:?} is not a mailto: URL"),
            ));
        };
        let valid = addr.len() <= 254
            && !addr.contains(',')
            && addr
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'));
        if !valid {
            return Err(Problem::new(
                ProblemType::InvalidContact,
                format!("{addr:?} is not an email address"),
            ));
        }
    }
    Ok(())
}

/// The account object.
pub(crate) fn account_json(ctx: &Ctx, a: &AcmeAccount) -> Value {
    json!({
        "status": a.status,
        "contact": a.contact,
        "orders": format!("{}/orders", ctx.link("acct", &a.id)),
    })
}

pub(crate) async fn check_rate(ctx: &Ctx, bucket: String, limit: u32) -> Result<(), Problem> {
    if limit == 0 {
        return Ok(());
    }
    let now = ctx.now();
    let window = now - now.rem_euclid(3600);
    let count = ctx
        .pki()
        .store()
        .acme_rate_count(&bucket, window)
        .await
        .map_err(internal)?;
    if count > i64::from(limit) {
        let wait = (window + 3600 - now).max(1) as u64;
        return Err(Problem::new(
            ProblemType::RateLimited,
            format!("rate limit of {limit} per hour reached; retry in {wait} s"),
        )
        .with_retry_after(wait));
    }
    Ok(())
}

pub(super) async fn new_account(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(new_account_inner(ctx, &p.headers, &p.body)))
        .await
}

async fn new_account_inner(ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> Result<Reply, Problem> {
    let (jws, _) = ctx.verify(headers, body).await?;
    let KeyRef::Jwk(key) = &jws.header.key else {
        return Err(Problem::malformed(
            "newAccount must be signed with a jwk, not a kid",
        ));
    };
    let p: NewAccountPayload = jws.json()?;
    let thumbprint = key.thumbprint();
    let store = ctx.pki().store();
    let profile = ctx.profile.policy.name.clone();
    if let Some(existing) = store
        .acme_account_by_key(&profile, &thumbprint)
        .await
        .map_err(internal)?
    {
        return Ok(Reply::json(StatusCode::OK, &account_json(ctx, &existing))
            .header(header::LOCATION, ctx.link("acct", &existing.id)));
    }
    if p.only_return_existing {
        return Err(Problem::new(
            ProblemType::AccountDoesNotExist,
            "no account exists with this key",
        ));
    }
    let eab_key = match &p.external_account_binding {
        Some(eab) => Some(check_eab(ctx, eab, key).await?),
        None if ctx.pki().settings().acme.eab_required(&profile) => {
            return Err(Problem::new(
                ProblemType::ExternalAccountRequired,
                "this directory requires external account binding",
            ));
        }
        None => None,
    };
    if ctx.pki().settings().acme.terms_of_service.is_some()
        && p.terms_of_service_agreed != Some(true)
    {
        return Err(Problem::malformed("the terms of service must be agreed to"));
    }
    let contact = p.contact.unwrap_or_default();
    check_contacts(&contact)?;
    let limit = ctx.pki().settings().acme.new_accounts_per_ip_per_hour;
    check_rate(
        ctx,
        format!("new-account:{}", ctx.client_ip.as_deref().unwrap_or("-")),
        limit,
    )
    .await?;
    let account = AcmeAccount {
        id: new_id(),
        profile,
        thumbprint,
        jwk: key.canonical_json(),
        status: "valid".into(),
        contact,
        created_at: ctx.now(),
    };
    let ev = ctx
        .actor(Some(&account.id))
        .event("acme.account.create", "acme_account")
        .object(&account.id)
        .detail(json!({"profile": account.profile, "thumbprint": account.thumbprint}));
    match store
        .acme_account_insert(&account, eab_key.as_deref(), &ev)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return Err(Problem::unauthorized(
                "the external account binding key is already bound to an account",
            ));
        }
        Err(StoreError::Conflict(_)) => {
            // The same key registered concurrently (maybe on another replica).
            if let Some(a) = store
                .acme_account_by_key(&account.profile, &account.thumbprint)
                .await
                .map_err(internal)?
            {
                return Ok(Reply::json(StatusCode::OK, &account_json(ctx, &a))
                    .header(header::LOCATION, ctx.link("acct", &a.id)));
            }
            return Err(internal("account conflict without a row"));
        }
        Err(e) => return Err(internal(e)),
    }
    Ok(
        Reply::json(StatusCode::CREATED, &account_json(ctx, &account))
            .header(header::LOCATION, ctx.link("acct", &account.id)),
    )
}

/// Check an external account binding (RFC 8555 §7.3.4): an HS256 JWS over the account key,
/// by a key made for this directory's profile and not used yet. Returns the key id.
async fn check_eab(ctx: &Ctx, eab: &Value, account_key: &PublicJwk) -> Result<String, Problem> {
    let body = serde_json::to_vec(eab).map_err(internal)?;
    let inner = Jws::parse(&body, true)?;
    if inner.header.alg != "HS256" {
        return Err(Problem::new(
            ProblemType::BadSignatureAlgorithm,
            "external account binding must use HS256",
        ));
    }
    let KeyRef::Kid(kid) = &inner.header.key else {
        return Err(Problem::malformed(
            "the external account binding must name its key with kid",
        ));
    };
    if inner.header.nonce.is_some() {
        return Err(Problem::malformed(
            "the external account binding must not have a nonce",
        ));
    }
    if inner.header.url != ctx.url {
        return Err(Problem::unauthorized(
            "the external account binding url is not the newAccount URL",
        ));
    }
    let bound: Value = inner.json()?;
    if PublicJwk::from_json(&bound)? != *account_key {
        return Err(Problem::unauthorized(
            "the external account binding signs another key",
        ));
    }
    let (rec, sealed) = ctx
        .pki()
        .store()
        .acme_eab_key(kid)
        .await
        .map_err(internal)?
        .filter(|(k, _)| k.profile == ctx.profile.policy.name)
        .ok_or_else(|| Problem::unauthorized("unknown external account binding key"))?;
    if rec.account_id.is_some() {
        return Err(Problem::unauthorized(
            "the external account binding key is already bound to an account",
        ));
    }
    let mac_key = ctx
        .pki()
        .master()
        .open(&sealed, format!("acme-eab:{}", rec.id).as_bytes())
        .map_err(internal)?;
    inner.verify_hmac(&mac_key)?;
    Ok(rec.id)
}

pub(super) async fn account(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(account_inner(ctx, &p.id, &p.headers, &p.body)))
        .await
}

async fn own_account(
    ctx: &Ctx,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Jws, AcmeAccount), Problem> {
    let (jws, account) = ctx.verify_kid(headers, body).await?;
    if account.id != id {
        return Err(Problem::unauthorized("this is not your account"));
    }
    Ok((jws, account))
}

async fn account_inner(
    ctx: &Ctx,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Problem> {
    let (jws, mut account) = own_account(ctx, id, headers, body).await?;
    if !jws.is_post_as_get() {
        let p: UpdatePayload = jws.json()?;
        let mut changed = false;
        if let Some(c) = p.contact {
            check_contacts(&c)?;
            account.contact = c;
            changed = true;
        }
        match p.status.as_deref() {
            None => {}
            Some("deactivated") => {
                account.status = "deactivated".into();
                changed = true;
            }
            Some(other) => {
                return Err(Problem::malformed(format!(
                    "an account's status can only be changed to \"deactivated\", not {other:?}"
                )));
            }
        }
        if changed {
            let ev = ctx
                .actor(Some(&account.id))
                .event("acme.account.update", "acme_account")
                .object(&account.id)
                .detail(json!({"status": account.status, "contacts": account.contact.len()}));
            ctx.pki()
                .store()
                .acme_account_update(&account, &ev, ctx.now())
                .await
                .map_err(internal)?;
        }
    }
    Ok(Reply::json(StatusCode::OK, &account_json(ctx, &account))
        .header(header::LOCATION, ctx.link("acct", &account.id)))
}

pub(super) async fn orders(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(orders_inner(ctx, &p.id, &p.headers, &p.body)))
        .await
}

async fn orders_inner(
    ctx: &Ctx,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Problem> {
    let (jws, account) = own_account(ctx, id, headers, body).await?;
    if !jws.is_post_as_get() {
        return Err(Problem::malformed(
            "the orders list is read with POST-as-GET",
        ));
    }
    let ids = ctx
        .pki()
        .store()
        .acme_order_ids(&account.id)
        .await
        .map_err(internal)?;
    let urls: Vec<String> = ids.iter().map(|o| ctx.link("order", o)).collect();
    Ok(Reply::json(StatusCode::OK, &json!({ "orders": urls })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: Value,
}

pub(super) async fn key_change(post: AcmePost) -> Response {
    post.answer(|ctx, p| Box::pin(key_change_inner(ctx, &p.headers, &p.body)))
        .await
}

/// RFC 8555 §7.3.5: the outer JWS is signed by the old key, the inner by the new one.
async fn key_change_inner(ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> Result<Reply, Problem> {
    let (outer, mut account) = ctx.verify_kid(headers, body).await?;
    let inner = Jws::parse(&outer.payload, false)?;
    let KeyRef::Jwk(new_key) = &inner.header.key else {
        return Err(Problem::malformed(
            "the inner JWS of a key change must carry a jwk",
        ));
    };
    inner.verify(new_key)?;
    if inner.header.url != outer.header.url {
        return Err(Problem::malformed(
            "the inner JWS url differs from the outer one",
        ));
    }
    if inner.header.nonce.is_some() {
        return Err(Problem::malformed("the inner JWS must not have a nonce"));
    }
    let p: KeyChangePayload = inner.json()?;
    if ctx.account_id_in(&p.account) != Some(account.id.as_str()) {
        return Err(Problem::malformed("the key change names another account"));
    }
    let old = certkeeper_acme::PublicJwk::from_json(&p.old_key)?;
    if old != account_key(&account)? {
        return Err(Problem::malformed(
            "oldKey is not the account's current key",
        ));
    }
    let thumbprint = new_key.thumbprint();
    if let Some(other) = ctx
        .pki()
        .store()
        .acme_account_by_key(&account.profile, &thumbprint)
        .await
        .map_err(internal)?
    {
        return Err(Problem::new(
            ProblemType::Conflict,
            "the new key is already used by an account",
        )
        .with_location(ctx.link("acct", &other.id)));
    }
    account.thumbprint = thumbprint;
    account.jwk = new_key.canonical_json();
    let ev = ctx
        .actor(Some(&account.id))
        .event("acme.account.key_change", "acme_account")
        .object(&account.id)
        .detail(json!({"thumbprint": account.thumbprint}));
    match ctx
        .pki()
        .store()
        .acme_account_update(&account, &ev, ctx.now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(Problem::new(
                ProblemType::Conflict,
                "the new key is already used by an account",
            ));
        }
        Err(e) => return Err(internal(e)),
    }
    Ok(Reply::json(StatusCode::OK, &account_json(ctx, &account))
        .header(header::LOCATION, ctx.link("acct", &account.id)))
}
