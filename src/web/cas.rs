//! The CA hierarchy: every root with the CAs below it and where its key is kept; create a
//! root or an intermediate (its key sealed in software or, with `[hsm]`, in the PKCS#11
//! token); download certificates and CRLs (from the public endpoints).

use axum::Router;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use certkeeper_ca::KeyAlgorithm;
use maud::html;
use serde::Deserialize;

use super::layout::{WebError, check_csrf, csrf_field, is_admin, page, when};
use super::session::Signed;
use crate::error::Error;
use crate::server::AppState;
use crate::services::cas::{CaKind, NewCa};
use crate::services::pki::KeyStorage;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/hierarchy", get(hierarchy).post(create))
        .route("/hierarchy/rollover", axum::routing::post(rollover))
        .route("/hierarchy/import", axum::routing::post(import))
}

async fn hierarchy(State(state): State<AppState>, Signed(s): Signed) -> Result<Response, WebError> {
    let nodes = state.services.dashboard.hierarchy().await?;
    let now = state.pki.now();
    let hsm = state.services.cas.token_storage();
    let body = html! {
        table #hierarchy {
            thead { tr {
                th { "CA" } th { "Subject" } th { "Key" } th { "Validity" } th { "Status" }
                th { "Issued" } th { "CRL" } th { "Download" }
            } }
            tbody {
                @for n in &nodes {
                    @let ca = &n.ca;
                    tr id=(format!("ca-{}", ca.id)) {
                        td class=(format!("tree d{}", n.depth.min(6))) {
                            @if n.depth > 0 { span.branch { "└ " } }
                            strong { (ca.name) } " " span.muted { (ca.kind) }
                        }
                        td.subject { (ca.subject) }
                        td.key {
                            (ca.key_algorithm)
                            @if ca.key_ref.is_some() {
                                br; span.muted.key-storage { "in the PKCS#11 token" }
                            } @else if !ca.key_sealed.is_empty() {
                                br; span.muted.key-storage { "software (sealed)" }
                            }
                        }
                        td {
                            @if let (Some(a), Some(b)) = (ca.not_before, ca.not_after) {
                                (when(a)) br; "to " (when(b))
                            } @else { "—" }
                        }
                        td {
                            (ca.status)
                            @if let (Some(next), Some(from)) = (&ca.successor_id, ca.successor_from) {
                                @let name = nodes.iter().find(|m| &m.ca.id == next).map_or(next.as_str(), |m| m.ca.name.as_str());
                                br;
                                span.muted.successor {
                                    @if from <= now { "superseded by " } @else { "hands over to " }
                                    a href=(format!("#ca-{next}")) { (name) }
                                    " from " (when(from))
                                }
                            }
                        }
                        td { a href=(format!("/certificates?ca={}", ca.id)) { (n.issued) } }
                        td.crl {
                            @if let Some(crl) = &n.crl {
                                "#" (crl.number) br;
                                span.muted { "signed " (age(now - crl.this_update)) " ago" }
                                @if crl.next_update < now { br; strong.bad { "overdue" } }
                            } @else { "—" }
                        }
                        td {
                            @if ca.cert_der.is_some() {
                                a href=(format!("/ca/{}.pem", ca.id)) download { "certificate" }
                                " · "
                                a href=(format!("/crl/{}.crl", ca.id)) download { "CRL" }
                            }
                        }
                    }
                }
            }
        }
        @if is_admin(&s) {
            section #create-ca {
                h2 { "Create a CA" }
                form method="post" action="/hierarchy" {
                    (csrf_field(&s))
                    label { "Name" input name="name" required pattern="[A-Za-z0-9._-]{1,64}"; }
                    label { "Type"
                        select name="kind" {
                            option value="intermediate" { "Intermediate" }
                            option value="root" { "Root" }
                        }
                    }
                    label { "Parent (intermediates)"
                        select name="parent" {
                            @for n in nodes.iter().filter(|n| n.ca.status == "active") {
                                option value=(n.ca.name) { (n.ca.name) }
                            }
                        }
                    }
                    label { "Common name" input name="common_name" required; }
                    label { "Organisation" input name="organization"; }
                    label { "Key type"
                        select name="key_algorithm" {
                            option value="" { "default" }
                            @for k in KeyAlgorithm::GENERATABLE {
                                option value=(k) { (k) }
                            }
                        }
                    }
                    label { "Validity (days)" input name="validity_days" type="number" min="1"; }
                    label { "Key storage"
                        select name="key_storage" {
                            option value="sealed" { "Software, sealed under the master key" }
                            @if hsm { option value="pkcs11" { "PKCS#11 token ([hsm])" } }
                        }
                    }
                    button type="submit" #create-ca-submit { "Create CA" }
                }
            }
            section #import-ca {
                h2 { "Import a CA" }
                p.muted { "An existing CA certificate (optionally followed by its chain) and its private key, PEM. The key is sealed under the master key; it is never shown again." }
                form method="post" action="/hierarchy/import" {
                    (csrf_field(&s))
                    label { "Name" input name="name" required pattern="[A-Za-z0-9._-]{1,64}"; }
                    label { "Certificate (PEM)" textarea name="certificate" rows="6" required {} }
                    label { "Private key (PEM)" textarea name="private_key" rows="6" required autocomplete="off" {} }
                    button type="submit" #import-submit { "Import CA" }
                }
            }
            section #rollover-ca {
                h2 { "Roll a CA over" }
                p.muted { "A successor with a new key and the same policy issues in the CA's place from the chosen time; the CA keeps signing its CRL and OCSP answers. A root's successor is cross-signed both ways." }
                form method="post" action="/hierarchy/rollover" {
                    (csrf_field(&s))
                    label { "CA"
                        select name="ca" {
                            @for n in nodes.iter().filter(|n| n.ca.status == "active" && n.ca.successor_id.is_none()) {
                                option value=(n.ca.name) { (n.ca.name) }
                            }
                        }
                    }
                    label { "Successor name" input name="name" required pattern="[A-Za-z0-9._-]{1,64}"; }
                    label { "Common name (default: next generation)" input name="common_name"; }
                    label { "Issues from (default: now)" input name="from" type="datetime-local"; }
                    button type="submit" #rollover-submit { "Roll over" }
                }
            }
        }
    };
    Ok(page(&s, "CA hierarchy", "/hierarchy", body).into_response())
}

/// A duration as people say it: `45 s`, `12 min`, `3 h`, `2 d`.
fn age(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

#[derive(Deserialize)]
struct CreateCa {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    parent: String,
    #[serde(default)]
    common_name: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    key_algorithm: String,
    #[serde(default)]
    validity_days: String,
    #[serde(default)]
    key_storage: String,
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

async fn create(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<CreateCa>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let (kind, parent) = match f.kind.as_str() {
        "root" => (CaKind::Root, None),
        "intermediate" => (CaKind::Intermediate, non_empty(f.parent)),
        other => {
            return Err(Error::BadRequest(format!("unknown CA type {other:?}")).into());
        }
    };
    let key_algorithm = non_empty(f.key_algorithm)
        .map(|k| k.parse::<KeyAlgorithm>())
        .transpose()
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let validity_days = non_empty(f.validity_days)
        .map(|d| d.parse::<u32>())
        .transpose()
        .map_err(|_| Error::BadRequest("validity must be a whole number of days".into()))?;
    let key_storage = match f.key_storage.trim() {
        "" | "sealed" => KeyStorage::Sealed,
        "pkcs11" => KeyStorage::Pkcs11,
        other => {
            return Err(Error::BadRequest(format!(
                "key storage {other:?} is neither \"sealed\" nor \"pkcs11\""
            ))
            .into());
        }
    };
    let new = NewCa {
        name: f.name.trim().to_string(),
        kind,
        parent,
        common_name: f.common_name.trim().to_string(),
        organization: non_empty(f.organization),
        country: None,
        key_algorithm,
        validity_days,
        path_len: None,
        name_constraints: None,
        key_storage,
    };
    let created = state.services.cas.create(new, &s.caller.actor).await?;
    Ok(Redirect::to(&format!("/hierarchy#ca-{}", created.ca.id)).into_response())
}

#[derive(Deserialize)]
struct RolloverForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ca: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    common_name: String,
    /// `datetime-local`: `YYYY-MM-DDTHH:MM`, taken as UTC.
    #[serde(default)]
    from: String,
}

async fn rollover(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<RolloverForm>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let from = non_empty(f.from)
        .map(|t| {
            let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
            time::PrimitiveDateTime::parse(&t, &fmt)
                .map(time::PrimitiveDateTime::assume_utc)
                .map_err(|_| Error::BadRequest(format!("{t:?} is not a date and time")))
        })
        .transpose()?;
    let req = crate::services::pki::Rollover {
        name: non_empty(f.name),
        common_name: non_empty(f.common_name),
        from,
        ..Default::default()
    };
    let (done, _) = state
        .services
        .cas
        .roll_over(f.ca.trim(), req, &s.caller.actor)
        .await?;
    Ok(Redirect::to(&format!("/hierarchy#ca-{}", done.ca.id)).into_response())
}

#[derive(Deserialize)]
struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    certificate: String,
    #[serde(default)]
    private_key: String,
}

async fn import(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<ImportForm>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let done = state
        .services
        .cas
        .import(
            f.name.trim(),
            f.certificate.as_bytes(),
            f.private_key.as_bytes(),
            &s.caller.actor,
        )
        .await?;
    Ok(Redirect::to(&format!("/hierarchy#ca-{}", done.ca.id)).into_response())
}
