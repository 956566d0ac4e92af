//! The enrollment protocols (admins only): ACME directories, accounts (a page at a time)
//! and each account's orders, EAB keys and renewal windows; EST labels (created here too)
//! and credentials. Secrets (EAB MAC keys, EST passwords) are shown once, on the page that
//! answers their creation.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use time::format_description::well_known::Iso8601;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::layout::with_status;
use super::layout::{
    CsrfOnly, WebError, check_csrf, csrf_field, cursor_of, next_page, page, paged, when, when_unix,
};
use super::session::Signed;
use crate::error::Error;
use crate::problem::HttpError;
use crate::server::AppState;
use crate::services::dashboard::EstPage;
use crate::services::est::NewCredential;
use crate::services::sessions::Session;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/enrollment/acme", get(acme))
        .route("/enrollment/acme/accounts/{id}", get(account))
        .route("/enrollment/acme/eab", post(create_eab))
        .route("/enrollment/acme/renewal-window", post(move_window))
        .route("/enrollment/est", get(est).post(create_credential))
        .route("/enrollment/est/labels", post(create_label))
        .route(
            "/enrollment/est/credentials/{id}/revoke",
            post(revoke_credential),
        )
}

/// ACME accounts, or an account's orders, a page.
const ACME_ROWS: usize = 50;

/// EST credentials a page.
const EST_ROWS: usize = 50;

/// Which page of a keyset-paged list.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PageQuery {
    cursor: String,
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

async fn acme(
    State(state): State<AppState>,
    Signed(s): Signed,
    Query(q): Query<PageQuery>,
) -> Result<Markup, WebError> {
    s.caller.require_admin()?;
    let a = state
        .services
        .dashboard
        .acme(cursor_of(&q.cursor)?, ACME_ROWS as i64 + 1)
        .await?;
    let keys = a.eab_keys;
    let (accounts, cursor) = paged(a.accounts, ACME_ROWS, |a| {
        (a.account.created_at, a.account.id.as_str())
    });
    let settings = &state.pki.settings().acme;
    let mut profiles = vec![settings.default_profile.clone()];
    profiles.extend(
        settings
            .profiles
            .iter()
            .filter(|p| **p != settings.default_profile)
            .cloned(),
    );
    let body = html! {
        h2 { "Directories" }
        @if settings.enabled {
            table #acme-directories {
                thead { tr { th { "Profile" } th { "Directory" } th { "Needs an EAB key" } } }
                tbody {
                    @for p in &profiles {
                        tr {
                            td { (p) }
                            td.mono { "/acme/" (p) "/directory" @if *p == settings.default_profile { " (also /acme/directory)" } }
                            td { (if settings.eab_required.iter().any(|r| r == p) { "yes" } else { "no" }) }
                        }
                    }
                }
            }
        } @else {
            p.muted { "The ACME server is off (acme.enabled)." }
        }
        h2 { "Accounts" }
        table #acme-accounts {
            thead { tr { th { "Account" } th { "Directory" } th { "Status" } th { "Contact" } th { "Created" } th { "Orders" } } }
            tbody {
                @for a in &accounts {
                    @let acc = &a.account;
                    tr {
                        td.mono { a href=(format!("/enrollment/acme/accounts/{}", acc.id)) { (acc.id) } }
                        td { (acc.profile) }
                        td { (acc.status) }
                        td { (acc.contact.join(", ")) }
                        td { (when_unix(acc.created_at)) }
                        td.orders { (a.orders) }
                    }
                }
            }
        }
        @if accounts.is_empty() && cursor_of(&q.cursor)?.is_none() { p.muted { "No ACME account yet." } }
        (next_page("/enrollment/acme", &[], cursor.as_deref()))
        h2 { "External account binding keys" }
        table #eab-keys {
            thead { tr { th { "Name" } th { "Profile" } th { "Key id" } th { "Used by account" } th { "Created" } } }
            tbody {
                @for k in &keys {
                    tr {
                        td { (k.name) } td { (k.profile) } td.mono { (k.id) }
                        td.mono { (k.account_id.as_deref().unwrap_or("unused")) }
                        td { (when_unix(k.created_at)) " by " (k.created_by) }
                    }
                }
            }
        }
        @if settings.enabled {
            form method="post" action="/enrollment/acme/eab" #create-eab {
                (csrf_field(&s))
                label { "Name" input name="name" maxlength="100"; }
                label { "Directory"
                    select name="profile" { @for p in &profiles { option value=(p) { (p) } } }
                }
                button type="submit" #create-eab-submit { "Create EAB key" }
            }
        }
        h2 { "Move a renewal window earlier" }
        p.muted { "ACME clients that ask for renewal information (RFC 9773) renew within the window." }
        form method="post" action="/enrollment/acme/renewal-window" #renewal-window {
            (csrf_field(&s))
            label { "Certificate id (or leave empty and give a CA)" input name="certificate"; }
            label { "CA (every certificate it issued)" input name="ca"; }
            label { "Start (UTC)" input type="datetime-local" name="start" required; }
            label { "End (UTC)" input type="datetime-local" name="end" required; }
            button type="submit" { "Move window" }
        }
    };
    Ok(page(&s, "ACME", "/enrollment/acme", body))
}

async fn account(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Markup, WebError> {
    s.caller.require_admin()?;
    let (acc, orders) = state
        .services
        .acme
        .account_orders(&id, cursor_of(&q.cursor)?, ACME_ROWS as i64 + 1)
        .await?;
    let (orders, cursor) = paged(orders, ACME_ROWS, |o| (o.created_at, o.id.as_str()));
    let now = state.pki.now().unix_timestamp();
    let body = html! {
        dl.facts #acme-account {
            dt { "Account" } dd.mono { (acc.id) }
            dt { "Directory" } dd { (acc.profile) }
            dt { "Status" } dd #account-status { (acc.status) }
            dt { "Contact" } dd { @if acc.contact.is_empty() { "none" } @else { (acc.contact.join(", ")) } }
            dt { "Created" } dd { (when_unix(acc.created_at)) }
            dt { "Key thumbprint" } dd.mono { (acc.thumbprint) }
        }
        h2 { "Orders" }
        table #acme-orders {
            thead { tr { th { "Created" } th { "Status" } th { "Identifiers" } th { "Expires" } th { "Certificate" } } }
            tbody {
                @for o in &orders {
                    tr id=(format!("order-{}", o.id)) {
                        td { (when_unix(o.created_at)) }
                        td.status { (o.status) }
                        td.identifiers { (identifiers(&o.identifiers)) }
                        td {
                            (when_unix(o.expires_at))
                            @if o.expires_at < now && o.status != "valid" { " " span.muted { "(expired)" } }
                        }
                        td {
                            @if let Some(c) = &o.certificate_id {
                                a.certificate href=(format!("/certificates/{c}")) { "certificate" }
                            } @else { "—" }
                        }
                    }
                }
            }
        }
        @if orders.is_empty() && cursor_of(&q.cursor)?.is_none() { p.muted { "No order (expired ones are pruned after acme.retention)." } }
        (next_page(&format!("/enrollment/acme/accounts/{}", acc.id), &[], cursor.as_deref()))
        p { a href="/enrollment/acme" { "Back to ACME" } }
    };
    Ok(page(&s, "ACME account", "/enrollment/acme", body))
}

/// An order's identifiers (stored as the JSON array the client sent) as `dns:a, ip:b`.
fn identifiers(stored: &str) -> String {
    match serde_json::from_str::<Vec<serde_json::Value>>(stored) {
        Ok(ids) => ids
            .iter()
            .map(|i| match (i["type"].as_str(), i["value"].as_str()) {
                (Some(t), Some(v)) => format!("{t}:{v}"),
                _ => i.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(_) => stored.to_string(),
    }
}

#[derive(Deserialize)]
struct CreateEab {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    profile: String,
}

async fn create_eab(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<CreateEab>,
) -> Result<Markup, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let (key, secret) = state
        .services
        .acme
        .create_eab_key(f.profile, f.name.trim().to_string(), &s.caller.actor)
        .await?;
    let body = html! {
        p { "EAB key for the " strong { (key.profile) } " directory." }
        p.warning { "This is the only time the MAC key is shown: copy it now." }
        dl.facts {
            dt { "Key id" } dd.mono #eab-kid { (key.id) }
            dt { "MAC key (base64url)" } dd.mono #eab-hmac { (certkeeper_acme::b64(&secret)) }
        }
        p { a href="/enrollment/acme" { "Back to ACME" } }
    };
    Ok(page(&s, "EAB key created", "/enrollment/acme", body))
}

#[derive(Deserialize)]
struct MoveWindow {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    certificate: String,
    #[serde(default)]
    ca: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
}

/// A `datetime-local` value, taken as UTC.
fn instant(field: &str, s: &str) -> Result<OffsetDateTime, Error> {
    let text = s.trim();
    let text = if text.len() == 16 {
        format!("{text}:00")
    } else {
        text.to_string()
    };
    PrimitiveDateTime::parse(&text, &Iso8601::DEFAULT)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| {
            Error::BadRequest(format!(
                "{field} must be a date and time like 2026-01-31T12:00"
            ))
        })
}

async fn move_window(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<MoveWindow>,
) -> Result<Markup, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let (start, end) = (instant("start", &f.start)?, instant("end", &f.end)?);
    let (ca, certificate) = (opt(&f.ca), opt(&f.certificate));
    let w = state
        .services
        .acme
        .move_renewal_window(
            ca.as_deref(),
            certificate.as_deref(),
            start,
            end,
            &s.caller.actor,
        )
        .await?;
    let body = html! {
        p #window-moved { "Renewal window moved to " (when(w.start)) " – " (when(w.end)) "." }
        p { a href="/enrollment/acme" { "Back to ACME" } }
    };
    Ok(page(&s, "Renewal window moved", "/enrollment/acme", body))
}

async fn est(
    State(state): State<AppState>,
    Signed(s): Signed,
    Query(q): Query<PageQuery>,
) -> Result<Markup, WebError> {
    s.caller.require_admin()?;
    est_page(&state, &s, &q.cursor, None).await
}

/// A label refused by the service, with the form's values to show again.
struct Refused<'a> {
    message: String,
    label: &'a str,
}

/// The EST page; `refused` shows why a label was not created, next to its form.
async fn est_page(
    state: &AppState,
    s: &Session,
    cursor: &str,
    refused: Option<Refused<'_>>,
) -> Result<Markup, WebError> {
    let EstPage {
        labels,
        credentials,
        profiles,
    } = state
        .services
        .dashboard
        .est(cursor_of(cursor)?, EST_ROWS as i64 + 1)
        .await?;
    let (credentials, next) = paged(credentials, EST_ROWS, |c| {
        (c.created_at.unix_timestamp(), c.id.as_str())
    });
    let body = html! {
        h2 { "Labels" }
        table #est-labels {
            thead { tr { th { "Label" } th { "Path" } th { "Profile" } th { "Channel binding" } th { "Created" } } }
            tbody {
                @for l in &labels {
                    tr {
                        td { (l.label) }
                        td.mono { "/.well-known/est/" (l.label) "/" }
                        td { (l.profile) }
                        td { (if l.require_channel_binding { "required" } else { "optional" }) }
                        td { (when(l.created_at)) }
                    }
                }
            }
        }
        @if labels.is_empty() { p.muted { "No label: enrollment uses the bare path and the default EST profile." } }
        h2 { "Create a label" }
        @if let Some(r) = &refused { p.error role="alert" #label-error { (r.message) } }
        form method="post" action="/enrollment/est/labels" #create-label {
            (csrf_field(s))
            label { "Label" input name="label" required maxlength="64" value=(refused.as_ref().map_or("", |r| r.label)); }
            label { "Profile"
                select name="profile" {
                    @for p in &profiles { option value=(p.policy.name) { (p.policy.name) } }
                }
            }
            label.check { input type="checkbox" name="require_channel_binding" value="true"; " Require channel binding (tls-unique in the CSR)" }
            button type="submit" #create-label-submit { "Create label" }
        }
        h2 { "Credentials" }
        table #est-credentials {
            thead { tr { th { "User name" } th { "Label" } th { "Uses left" } th { "Expires" } th { "State" } th {} } }
            tbody {
                @for c in &credentials {
                    tr {
                        td { (c.username) }
                        td { (if c.label.is_empty() { "(bare path)" } else { c.label.as_str() }) }
                        td { (c.uses_left.map(|u| u.to_string()).unwrap_or_else(|| "unlimited".into())) }
                        td { (c.expires_at.map(when).unwrap_or_else(|| "never".into())) }
                        td { @if let Some(at) = c.revoked_at { "disabled " (when(at)) } @else { "active" } }
                        td {
                            @if c.revoked_at.is_none() {
                                form method="post" action=(format!("/enrollment/est/credentials/{}/revoke", c.id)) data-confirm="Disable this credential?" {
                                    (csrf_field(s))
                                    button.danger type="submit" { "Disable" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (next_page("/enrollment/est", &[], next.as_deref()))
        h2 { "Create a credential" }
        form method="post" action="/enrollment/est" #create-credential {
            (csrf_field(s))
            label { "User name" input name="username" required; }
            label { "Label"
                select name="label" {
                    option value="" { "(bare path)" }
                    @for l in &labels { option value=(l.label) { (l.label) } }
                }
            }
            label { "Uses (empty for unlimited; 1 for a one-time bootstrap password)" input name="max_uses" type="number" min="1"; }
            label { "Expires in (days, empty for never)" input name="expires_in_days" type="number" min="1"; }
            button type="submit" #create-credential-submit { "Create credential" }
        }
    };
    Ok(page(s, "EST", "/enrollment/est", body))
}

#[derive(Deserialize)]
struct CreateLabel {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    require_channel_binding: Option<String>,
}

async fn create_label(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<CreateLabel>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let label = f.label.trim();
    let done = state
        .services
        .est
        .create_label(
            label.to_string(),
            f.profile.trim(),
            f.require_channel_binding.is_some(),
            &s.caller.actor,
        )
        .await;
    let refused = match done {
        Ok(_) => return Ok(Redirect::to("/enrollment/est").into_response()),
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_) | Error::NotFound(_))) => e,
        Err(e) => return Err(e.into()),
    };
    // Shown next to the form, with what was typed, so it can be corrected.
    let message = refused.to_string();
    let status = HttpError::from(refused).status();
    let page = est_page(&state, &s, "", Some(Refused { message, label })).await?;
    Ok(with_status(status, page))
}

#[derive(Deserialize)]
struct CreateCredential {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    max_uses: String,
    #[serde(default)]
    expires_in_days: String,
}

fn count(field: &str, s: &str) -> Result<Option<u32>, Error> {
    opt(s)
        .map(|v| v.parse::<u32>())
        .transpose()
        .map_err(|_| Error::BadRequest(format!("{field} must be a whole number")))
}

async fn create_credential(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<CreateCredential>,
) -> Result<Markup, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let new = NewCredential {
        username: f.username.trim().to_string(),
        label: opt(&f.label),
        password: None,
        expires_in_days: count("expiry", &f.expires_in_days)?,
        max_uses: count("uses", &f.max_uses)?,
    };
    let (rec, password) = state
        .services
        .est
        .create_credential(new, &s.caller.actor)
        .await?;
    let body = html! {
        p { "Credential " strong { (rec.username) } " was created." }
        p.warning { "This is the only time its password is shown: copy it now." }
        pre #est-password { (password) }
        p { a href="/enrollment/est" { "Back to EST" } }
    };
    Ok(page(&s, "EST credential created", "/enrollment/est", body))
}

async fn revoke_credential(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    state
        .services
        .est
        .revoke_credential(&id, &s.caller.actor)
        .await?;
    Ok(Redirect::to("/enrollment/est").into_response())
}
