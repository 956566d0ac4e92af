//! Accounts: newAccount, account updates and deactivation, the orders list, key change.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{AcmeError, Answer, Call, Engine, account_key, internal};
use crate::store::{AcmeAccount, AcmeStore, Issuer, StoreError};
use crate::{Jws, KeyRef, Problem, ProblemType, PublicJwk};

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: Value,
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

/// The account object, with its URL as `Location`.
fn account_answer(call: &Call<'_>, status: u16, a: &AcmeAccount) -> Answer {
    Answer::json(
        status,
        json!({
            "status": a.status,
            "contact": a.contact,
            "orders": format!("{}/orders", call.link("acct", &a.id)),
        }),
    )
    .location(call.link("acct", &a.id))
}

impl<S: AcmeStore, I: Issuer> Engine<S, I> {
    /// newAccount (RFC 8555 §7.3): find the account of the signing key or register one.
    pub async fn new_account(&self, call: &Call<'_>, body: &[u8]) -> Result<Answer, AcmeError> {
        let (jws, _) = self.verify(call, body).await?;
        let KeyRef::Jwk(key) = &jws.header.key else {
            return Err(
                Problem::malformed("newAccount must be signed with a jwk, not a kid").into(),
            );
        };
        let p: NewAccountPayload = jws.json()?;
        let thumbprint = key.thumbprint();
        let profile = call.profile.name.clone();
        if let Some(existing) = self.store.account_by_key(&profile, &thumbprint).await? {
            return Ok(account_answer(call, 200, &existing));
        }
        if p.only_return_existing {
            return Err(Problem::new(
                ProblemType::AccountDoesNotExist,
                "no account exists with this key",
            )
            .into());
        }
        let eab_key = match &p.external_account_binding {
            Some(eab) => Some(self.check_eab(call, eab, key).await?),
            None if call.eab_required => {
                return Err(Problem::new(
                    ProblemType::ExternalAccountRequired,
                    "this directory requires external account binding",
                )
                .into());
            }
            None => None,
        };
        if self.config.terms_of_service.is_some() && p.terms_of_service_agreed != Some(true) {
            return Err(Problem::malformed("the terms of service must be agreed to").into());
        }
        let contact = p.contact.unwrap_or_default();
        check_contacts(&contact)?;
        self.check_rate(
            format!("new-account:{}", call.client_ip.unwrap_or("-")),
            self.config.new_accounts_per_ip_per_hour,
        )
        .await?;
        let account = AcmeAccount {
            id: self.store.new_id(),
            profile,
            thumbprint,
            jwk: key.canonical_json(),
            status: "valid".into(),
            contact,
            created_at: self.now(),
        };
        let ev = call
            .actor(Some(&account.id))
            .event("acme.account.create", "acme_account", &account.id)
            .detail(json!({"profile": account.profile, "thumbprint": account.thumbprint}));
        match self
            .store
            .account_insert(&account, eab_key.as_deref(), &ev)
            .await
        {
            Ok(true) => Ok(account_answer(call, 201, &account)),
            Ok(false) => Err(Problem::unauthorized(
                "the external account binding key is already bound to an account",
            )
            .into()),
            Err(StoreError::Conflict(_)) => {
                // The same key registered concurrently (maybe on another replica).
                match self
                    .store
                    .account_by_key(&account.profile, &account.thumbprint)
                    .await?
                {
                    Some(a) => Ok(account_answer(call, 200, &a)),
                    None => Err(internal("account conflict without a row")),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Check an external account binding (RFC 8555 §7.3.4): an HS256 JWS over the account
    /// key, by a key made for this directory's profile and not used yet. Returns the key id.
    async fn check_eab(
        &self,
        call: &Call<'_>,
        eab: &Value,
        account_key: &PublicJwk,
    ) -> Result<String, AcmeError> {
        let body = serde_json::to_vec(eab).map_err(internal)?;
        let inner = Jws::parse(&body, true)?;
        if inner.header.alg != "HS256" {
            return Err(Problem::new(
                ProblemType::BadSignatureAlgorithm,
                "external account binding must use HS256",
            )
            .into());
        }
        let KeyRef::Kid(kid) = &inner.header.key else {
            return Err(Problem::malformed(
                "the external account binding must name its key with kid",
            )
            .into());
        };
        if inner.header.nonce.is_some() {
            return Err(
                Problem::malformed("the external account binding must not have a nonce").into(),
            );
        }
        if inner.header.url != call.url {
            return Err(Problem::unauthorized(
                "the external account binding url is not the newAccount URL",
            )
            .into());
        }
        let bound: Value = inner.json()?;
        if PublicJwk::from_json(&bound)? != *account_key {
            return Err(
                Problem::unauthorized("the external account binding signs another key").into(),
            );
        }
        let key = self
            .store
            .eab_key(kid)
            .await?
            .filter(|k| k.profile == call.profile.name)
            .ok_or_else(|| Problem::unauthorized("unknown external account binding key"))?;
        if key.account_id.is_some() {
            return Err(Problem::unauthorized(
                "the external account binding key is already bound to an account",
            )
            .into());
        }
        inner.verify_hmac(&key.mac_key)?;
        Ok(key.id)
    }

    /// The account `id`, signed by its own key.
    async fn own_account(
        &self,
        call: &Call<'_>,
        id: &str,
        body: &[u8],
    ) -> Result<(Jws, AcmeAccount), AcmeError> {
        let (jws, account) = self.verify_kid(call, body).await?;
        if account.id != id {
            return Err(Problem::unauthorized("this is not your account").into());
        }
        Ok((jws, account))
    }

    /// Read (POST-as-GET) or update an account: its contacts, or its deactivation.
    pub async fn account(
        &self,
        call: &Call<'_>,
        id: &str,
        body: &[u8],
    ) -> Result<Answer, AcmeError> {
        let (jws, mut account) = self.own_account(call, id, body).await?;
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
                    ))
                    .into());
                }
            }
            if changed {
                let ev = call
                    .actor(Some(&account.id))
                    .event("acme.account.update", "acme_account", &account.id)
                    .detail(json!({"status": account.status, "contacts": account.contact.len()}));
                self.store.account_update(&account, &ev, self.now()).await?;
            }
        }
        Ok(account_answer(call, 200, &account))
    }

    /// The account's orders list (POST-as-GET).
    pub async fn orders(
        &self,
        call: &Call<'_>,
        id: &str,
        body: &[u8],
    ) -> Result<Answer, AcmeError> {
        let (jws, account) = self.own_account(call, id, body).await?;
        if !jws.is_post_as_get() {
            return Err(Problem::malformed("the orders list is read with POST-as-GET").into());
        }
        let ids = self.store.order_ids(&account.id).await?;
        let urls: Vec<String> = ids.iter().map(|o| call.link("order", o)).collect();
        Ok(Answer::json(200, json!({ "orders": urls })))
    }

    /// keyChange (RFC 8555 §7.3.5): the outer JWS is signed by the old key, the inner by
    /// the new one.
    pub async fn key_change(&self, call: &Call<'_>, body: &[u8]) -> Result<Answer, AcmeError> {
        let (outer, mut account) = self.verify_kid(call, body).await?;
        let inner = Jws::parse(&outer.payload, false)?;
        let KeyRef::Jwk(new_key) = &inner.header.key else {
            return Err(
                Problem::malformed("the inner JWS of a key change must carry a jwk").into(),
            );
        };
        inner.verify(new_key)?;
        if inner.header.url != outer.header.url {
            return Err(Problem::malformed("the inner JWS url differs from the outer one").into());
        }
        if inner.header.nonce.is_some() {
            return Err(Problem::malformed("the inner JWS must not have a nonce").into());
        }
        let p: KeyChangePayload = inner.json()?;
        if call.account_id_in(&p.account) != Some(account.id.as_str()) {
            return Err(Problem::malformed("the key change names another account").into());
        }
        let old = PublicJwk::from_json(&p.old_key)?;
        if old != account_key(&account)? {
            return Err(Problem::malformed("oldKey is not the account's current key").into());
        }
        let thumbprint = new_key.thumbprint();
        if let Some(other) = self
            .store
            .account_by_key(&account.profile, &thumbprint)
            .await?
        {
            return Err(Problem::new(
                ProblemType::Conflict,
                "the new key is already used by an account",
            )
            .with_location(call.link("acct", &other.id))
            .into());
        }
        account.thumbprint = thumbprint;
        account.jwk = new_key.canonical_json();
        let ev = call
            .actor(Some(&account.id))
            .event("acme.account.key_change", "acme_account", &account.id)
            .detail(json!({"thumbprint": account.thumbprint}));
        match self.store.account_update(&account, &ev, self.now()).await {
            Ok(()) => Ok(account_answer(call, 200, &account)),
            Err(StoreError::Conflict(_)) => Err(Problem::new(
                ProblemType::Conflict,
                "the new key is already used by an account",
            )
            .into()),
            Err(e) => Err(e.into()),
        }
    }
}
