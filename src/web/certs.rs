//! Certificates: search (by name, serial, fingerprint, profile, CA, state) a page at a
//! time, issue through a form, a certificate's detail with its chain and downloads, and
//! revocation with a reason.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use certkeeper_ca::KeyAlgorithm;
use maud::{Markup, html};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::layout::{
    WebError, check_csrf, csrf_field, is_admin, may_issue, may_issue_any, next_page, page, when,
};
use super::session::Signed;
use crate::error::Error;
use crate::server::AppState;
use crate::services::certificates::{GenerateRequest, Search, Validity};
use crate::services::certificates::{REASONS, decode_cursor, encode_cursor_in};
use crate::store::CertRecord;

/// Rows per page.
const PAGE_SIZE: i64 = 50;
/// What "expiring" means in the search: valid, and ending within this.
const EXPIRING_WITHIN: Duration = Duration::days(30);

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/certificates", get(list))
        .route("/certificates/issue", post(issue))
        .route("/certificates/{id}", get(detail))
        .route("/certificates/{id}/revoke", post(revoke))
        .route("/certificates/{id}/tags", post(tags))
        .route("/certificates/{id}/download/{format}", get(download))
}

/// The search form's fields; empty means "any".
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListQuery {
    /// What `q` is: `name` (DNS name or IP, `*.example.com` below), `serial`, `fingerprint`.
    by: String,
    q: String,
    status: String,
    profile: String,
    ca: String,
    /// `newest` or `expiry` (soonest end first); by default `expiry` for the expiring
    /// certificates and `newest` otherwise.
    sort: String,
    cursor: String,
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The state a certificate is in at `now`.
fn state_of(c: &CertRecord, now: OffsetDateTime) -> &'static str {
    if c.status == "revoked" {
        "revoked"
    } else if c.not_after < now {
        "expired"
    } else if c.not_after < now + EXPIRING_WITHIN {
        "expiring"
    } else {
        "valid"
    }
}

/// Whether the list is in order of expiry (soonest first) rather than newest first. The
/// expiring certificates come soonest first unless asked otherwise: that is what the list
/// is for, and the expiry index then gives the page directly, however many there are.
fn by_expiry(q: &ListQuery) -> Result<bool, Error> {
    match q.sort.as_str() {
        "" => Ok(q.status == "expiring"),
        "newest" => Ok(false),
        "expiry" => Ok(true),
        other => Err(Error::BadRequest(format!("cannot sort by {other:?}"))),
    }
}

fn search_of(q: &ListQuery, now: OffsetDateTime) -> Result<Search, Error> {
    let mut search = Search {
        ca: opt(&q.ca),
        profile: opt(&q.profile),
        limit: Some(PAGE_SIZE),
        after: opt(&q.cursor).as_deref().map(decode_cursor).transpose()?,
        by_expiry: by_expiry(q)?,
        ..Search::default()
    };
    if let Some(text) = opt(&q.q) {
        match q.by.as_str() {
            "" | "name" => search.san = Some(text),
            "serial" => search.serial = Some(text),
            "fingerprint" => search.fingerprint = Some(text),
            "tag" => search.tag = Some(text),
            other => return Err(Error::BadRequest(format!("cannot search by {other:?}"))),
        }
    }
    match q.status.as_str() {
        "" => {}
        "expiring" => {
            search.status = Some("valid".into());
            search.expiring_before = Some(now + EXPIRING_WITHIN);
        }
        other => search.status = Some(other.to_string()),
    }
    Ok(search)
}

fn selected(cond: bool) -> Option<&'static str> {
    cond.then_some("selected")
}

async fn list(
    State(state): State<AppState>,
    Signed(s): Signed,
    Query(q): Query<ListQuery>,
) -> Result<Markup, WebError> {
    let search = search_of(&q, state.pki.now())?;
    let expiry_first = search.by_expiry;
    let p = state.services.dashboard.certificates(search).await?;
    let now = p.page.now;
    let ca_name = |id: &str| {
        p.cas
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let cursor = p
        .page
        .items
        .last()
        .filter(|_| p.page.more)
        .map(|last| encode_cursor_in(last, expiry_first));
    let next = next_page(
        "/certificates",
        &[
            ("by", &q.by),
            ("q", &q.q),
            ("status", &q.status),
            ("profile", &q.profile),
            ("ca", &q.ca),
            ("sort", &q.sort),
        ],
        cursor.as_deref(),
    );
    let issuable: Vec<&str> = p
        .profiles
        .iter()
        .map(|pr| pr.policy.name.as_str())
        .filter(|name| may_issue(&s, name))
        .collect();
    let body = html! {
        form.search method="get" action="/certificates" #search {
            select name="by" {
                option value="name" selected=[selected(q.by == "name")] { "Name" }
                option value="serial" selected=[selected(q.by == "serial")] { "Serial" }
                option value="fingerprint" selected=[selected(q.by == "fingerprint")] { "Fingerprint" }
                option value="tag" selected=[selected(q.by == "tag")] { "Tag" }
            }
            input type="search" name="q" value=(q.q) placeholder="www.example.com, *.example.com, serial or SHA-256";
            select name="status" {
                option value="" { "any state" }
                @for st in ["valid", "expiring", "expired", "revoked"] {
                    option value=(st) selected=[selected(q.status == st)] { (st) }
                }
            }
            select name="profile" {
                option value="" { "any profile" }
                @for pr in &p.profiles {
                    option value=(pr.policy.name) selected=[selected(q.profile == pr.policy.name)] { (pr.policy.name) }
                }
            }
            select name="ca" {
                option value="" { "any CA" }
                @for ca in &p.cas {
                    option value=(ca.id) selected=[selected(q.ca == ca.id || q.ca == ca.name)] { (ca.name) }
                }
            }
            select name="sort" {
                option value="newest" selected=[selected(!expiry_first)] { "newest first" }
                option value="expiry" selected=[selected(expiry_first)] { "soonest end first" }
            }
            button type="submit" #search-submit { "Search" }
        }
        table #certificates {
            thead { tr { th { "Common name" } th { "Names" } th { "Serial" } th { "Profile" } th { "CA" } th { "Expires" } th { "State" } } }
            tbody {
                @for c in &p.page.items {
                    tr {
                        td { a href=(format!("/certificates/{}", c.id)) { (c.common_name.as_deref().unwrap_or("(no CN)")) } }
                        td { (c.sans.join(", ")) }
                        td.mono { (c.serial) }
                        td { (c.profile_name.as_deref().unwrap_or("")) }
                        td { (ca_name(&c.ca_id)) }
                        td { (when(c.not_after)) }
                        td { span class=(format!("state {}", state_of(c, now))) { (state_of(c, now)) } }
                    }
                }
            }
        }
        @if p.page.items.is_empty() { p.muted { "No certificate matches." } }
        (next)
        @if may_issue_any(&s) && !issuable.is_empty() {
            section #issue {
                h2 { "Issue a certificate" }
                form method="post" action="/certificates/issue" {
                    (csrf_field(&s))
                    label { "Profile"
                        select name="profile" {
                            @for name in &issuable { option value=(name) { (name) } }
                        }
                    }
                    label { "DNS names (one per line or comma-separated)" textarea name="dns_names" rows="2" {} }
                    label { "Common name" input name="common_name"; }
                    label { "Validity (days, empty for the profile's default)" input name="validity_days" type="number" min="1"; }
                    label { "Key type (a key is made here and shown once)"
                        select name="key_algorithm" {
                            @for k in KeyAlgorithm::GENERATABLE { option value=(k) { (k) } }
                        }
                    }
                    label { "Or a CSR (PEM); its key stays with you" textarea name="csr" rows="4" {} }
                    button type="submit" #issue-submit { "Issue" }
                }
            }
        }
    };
    Ok(page(&s, "Certificates", "/certificates", body))
}

#[derive(Deserialize)]
struct IssueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    dns_names: String,
    #[serde(default)]
    common_name: String,
    #[serde(default)]
    validity_days: String,
    #[serde(default)]
    key_algorithm: String,
    #[serde(default)]
    csr: String,
}

async fn issue(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<IssueForm>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_issuer_for(&f.profile)?;
    let validity = Validity {
        days: opt(&f.validity_days)
            .map(|d| d.parse::<u32>())
            .transpose()
            .map_err(|_| Error::BadRequest("validity must be a whole number of days".into()))?,
        not_after: None,
    };
    let certs = &state.services.certificates;
    if let Some(csr) = opt(&f.csr) {
        let (issued, _) = certs
            .issue_from_csr(&f.profile, csr.as_bytes(), validity, &s.caller.actor)
            .await?;
        return Ok(Redirect::to(&format!("/certificates/{}", issued.id)).into_response());
    }
    let request = GenerateRequest {
        profile: f.profile,
        dns_names: f
            .dns_names
            .split([',', '\n', ' ', '\r'])
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
        ip_addresses: Vec::new(),
        common_name: opt(&f.common_name),
        key_algorithm: opt(&f.key_algorithm)
            .map(|k| k.parse::<KeyAlgorithm>())
            .transpose()
            .map_err(|e| Error::BadRequest(e.to_string()))?,
        validity,
        managed: false,
    };
    let done = certs.issue_with_key(request, &s.caller.actor).await?;
    let id = done.issued.id.clone();
    let body = html! {
        p { "Issued " a href=(format!("/certificates/{id}")) #issued-link { "certificate " (id) } "." }
        p.warning { "This is the only time the private key is shown: copy it now." }
        pre #private-key { (done.key.serialize_pem()) }
    };
    Ok(page(&s, "Certificate issued", "/certificates", body).into_response())
}

/// The subject of a DER certificate, for the chain list.
fn subject_of(der: &[u8]) -> String {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "(unreadable certificate)".into())
}

async fn detail(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let d = state.services.dashboard.certificate(&id).await?;
    let (c, chain, now) = (&d.cert, &d.chain, d.now);
    let st = state_of(c, now);
    let profile = c.profile_name.clone().unwrap_or_default();
    let pem = certkeeper_ca::pem_encode_certs([c.der.as_slice()]);
    let reason_name = |code: i64| {
        REASONS
            .iter()
            .find(|r| i64::from(r.2) == code)
            .map(|r| r.0)
            .unwrap_or("unknown")
    };
    let body = html! {
        dl.facts {
            dt { "State" } dd { span #state class=(format!("state {st}")) { (st) } }
            @if let Some(at) = c.revoked_at {
                dt { "Revoked" } dd #revoked { (when(at)) " (" (reason_name(c.revocation_reason.unwrap_or(0))) ")" }
            }
            dt { "Subject" } dd { (c.subject) }
            dt { "Names" } dd { (c.sans.join(", ")) }
            dt { "Issuer" } dd { (c.issuer) }
            dt { "Serial" } dd.mono #serial { (c.serial) }
            dt { "SHA-256 fingerprint" } dd.mono #fingerprint { (c.fingerprint) }
            dt { "Key" } dd { (c.key_algorithm.as_deref().unwrap_or("")) }
            dt { "Validity" } dd { (when(c.not_before)) " to " (when(c.not_after)) }
            dt { "Profile" } dd { (profile) }
            dt { "Issued by" } dd { (c.created_by) " at " (when(c.created_at)) }
            dt { "Tags" } dd #tags { (d.tags.join(", ")) }
        }
        @if is_admin(&s) {
            form.search method="post" action=(format!("/certificates/{}/tags", c.id)) #edit-tags {
                (csrf_field(&s))
                input name="tags" value=(d.tags.join(", ")) placeholder="team:payments, env:prod";
                button type="submit" #tags-submit { "Save tags" }
            }
        }
        h2 { "Chain" }
        ol.chain {
            li { (c.subject) }
            @for der in chain { li { (subject_of(der)) } }
        }
        p {
            a href=(format!("/certificates/{}/download/pem", c.id)) download { "PEM with chain" }
            " · "
            a href=(format!("/certificates/{}/download/der", c.id)) download { "DER" }
        }
        pre.pem { (pem) }
        @if c.status == "valid" && may_issue(&s, &profile) {
            section #revoke {
                h2 { "Revoke" }
                form method="post" action=(format!("/certificates/{}/revoke", c.id)) data-confirm="Revoke this certificate? This cannot be undone." {
                    (csrf_field(&s))
                    label { "Reason"
                        select name="reason" {
                            @for (name, _, code) in REASONS { option value=(code) { (name) } }
                        }
                    }
                    button.danger type="submit" #revoke-submit { "Revoke" }
                }
            }
        }
    };
    Ok(page(
        &s,
        &format!(
            "Certificate {}",
            c.common_name.as_deref().unwrap_or(&c.serial)
        ),
        "/certificates",
        body,
    ))
}

#[derive(Deserialize)]
struct TagsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tags: String,
}

async fn tags(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Form(f): Form<TagsForm>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let tags: Vec<String> = f
        .tags
        .split([',', ' ', '\n'])
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    state
        .services
        .dashboard
        .tag_certificate(&id, &tags, &s.caller.actor)
        .await?;
    Ok(Redirect::to(&format!("/certificates/{id}")).into_response())
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn revoke(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Form(f): Form<RevokeForm>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    let reason = match f.reason.trim() {
        "" => 0,
        r => r
            .parse::<u8>()
            .ok()
            .filter(|c| REASONS.iter().any(|x| x.2 == *c))
            .ok_or_else(|| Error::BadRequest(format!("unknown revocation reason {r:?}")))?,
    };
    let caller = &s.caller;
    state
        .services
        .certificates
        .revoke(
            &id,
            reason,
            |profile| caller.require_issuer_for(profile),
            &caller.actor,
        )
        .await?;
    Ok(Redirect::to(&format!("/certificates/{id}")).into_response())
}

async fn download(
    State(state): State<AppState>,
    Signed(_s): Signed,
    Path((id, format)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (c, chain) = state.services.certificates.with_chain(&id).await?;
    let disposition = |ext: &str| format!("attachment; filename=\"{}.{ext}\"", c.serial);
    Ok(match format.as_str() {
        "pem" => (
            [
                (header::CONTENT_TYPE, "application/x-pem-file".to_string()),
                (header::CONTENT_DISPOSITION, disposition("pem")),
            ],
            certkeeper_ca::pem_encode_certs(
                std::iter::once(c.der.as_slice()).chain(chain.iter().map(Vec::as_slice)),
            ),
        )
            .into_response(),
        "der" => (
            [
                (header::CONTENT_TYPE, "application/pkix-cert".to_string()),
                (header::CONTENT_DISPOSITION, disposition("cer")),
            ],
            c.der.clone(),
        )
            .into_response(),
        other => return Err(Error::NotFound(format!("no download format {other:?}")).into()),
    })
}
