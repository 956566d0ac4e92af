//! `/api/v1/certificates`: issue, search, fetch, revoke.

use std::net::IpAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use certkeeper_ca::KeyAlgorithm;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::{Auth, Reader};
use super::extract::{Json, Path, Query};
use crate::error::Error;
use crate::server::AppState;
use crate::services::certificates::{GenerateRequest, IssuedWithKey, Search, Validity};
use crate::services::pki::Issued;
use crate::store::CertRecord;

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/certificates", get(list).post(issue_from_csr))
        .route("/certificates/generate", post(issue_with_key))
        .route("/certificates/{id}", get(get_one))
        .route("/certificates/{id}/pem", get(get_pem))
        .route("/certificates/{id}/der", get(get_der))
        .route("/certificates/{id}/chain", get(get_chain))
        .route("/certificates/{id}/revoke", post(revoke))
}

/// A stored certificate as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct CertView {
    id: String,
    ca_id: String,
    profile: Option<String>,
    serial: String,
    subject: String,
    common_name: Option<String>,
    sans: Vec<String>,
    issuer: String,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    key_algorithm: Option<String>,
    fingerprint_sha256: String,
    status: String,
    managed: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
    revocation_reason: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
}

fn view(c: CertRecord, now: OffsetDateTime, with_pem: bool) -> CertView {
    let status = if c.status == "valid" && c.not_after < now {
        "expired".to_string()
    } else {
        c.status.clone()
    };
    CertView {
        certificate: with_pem.then(|| certkeeper_ca::pem_encode_certs([c.der.as_slice()])),
        id: c.id,
        ca_id: c.ca_id,
        profile: c.profile_name,
        serial: c.serial,
        subject: c.subject,
        common_name: c.common_name,
        sans: c.sans,
        issuer: c.issuer,
        not_before: c.not_before,
        not_after: c.not_after,
        key_algorithm: c.key_algorithm,
        fingerprint_sha256: c.fingerprint,
        status,
        managed: c.managed,
        revoked_at: c.revoked_at,
        revocation_reason: c.revocation_reason,
        created_at: c.created_at,
        created_by: c.created_by,
    }
}

/// The answer to an issuance.
#[derive(Debug, Serialize)]
struct IssuedView {
    id: String,
    ca_id: String,
    profile: String,
    serial: String,
    subject: String,
    sans: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    fingerprint_sha256: String,
    /// The certificate, PEM.
    certificate: String,
    /// The issuer chain without the root, PEM, nearest first.
    chain: String,
    /// The root certificate, PEM.
    root: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pkcs12: Option<String>,
}

fn issued_view(i: &Issued, profile: &str) -> IssuedView {
    let info = &i.cert.info;
    let mut sans: Vec<String> = info.dns_names.clone();
    sans.extend(info.ip_addresses.iter().map(|ip| ip.to_string()));
    // The root is the last certificate of the chain when the chain reaches one (an imported
    // CA may come without its root).
    let (root, intermediates) = match i.chain.split_last() {
        Some((root, rest)) if certkeeper_ca::is_self_issued(root) => {
            (certkeeper_ca::pem_encode_certs([root.as_slice()]), rest)
        }
        _ => (String::new(), &i.chain[..]),
    };
    IssuedView {
        id: i.id.clone(),
        ca_id: i.ca_id.clone(),
        profile: profile.to_string(),
        serial: info.serial.clone(),
        subject: info.subject.clone(),
        sans,
        not_before: info.not_before,
        not_after: info.not_after,
        fingerprint_sha256: info.fingerprint_sha256.clone(),
        certificate: i.cert.pem(),
        chain: certkeeper_ca::pem_encode_certs(intermediates.iter().map(Vec::as_slice)),
        root,
        private_key: None,
        pkcs12: None,
    }
}

/// Body of `POST /certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueCsr {
    profile: String,
    csr: String,
    validity_days: Option<u32>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_after: Option<OffsetDateTime>,
}

async fn issue_from_csr(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<IssueCsr>,
) -> Result<Response, Error> {
    auth.require_issuer_for(&body.profile)?;
    let validity = Validity {
        days: body.validity_days,
        not_after: body.not_after,
    };
    let (issued, profile) = state
        .services
        .certificates
        .issue_from_csr(&body.profile, body.csr.as_bytes(), validity, &auth.actor)
        .await?;
    Ok((StatusCode::CREATED, Json(issued_view(&issued, &profile))).into_response())
}

/// Output of server-side key generation.
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum KeyFormat {
    #[default]
    Pem,
    Pkcs12,
}

/// Body of `POST /certificates/generate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueGenerate {
    profile: String,
    #[serde(default)]
    dns_names: Vec<String>,
    #[serde(default)]
    ip_addresses: Vec<IpAddr>,
    common_name: Option<String>,
    key_algorithm: Option<KeyAlgorithm>,
    validity_days: Option<u32>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_after: Option<OffsetDateTime>,
    #[serde(default)]
    format: KeyFormat,
    password: Option<String>,
    #[serde(default)]
    managed: bool,
}

async fn issue_with_key(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<IssueGenerate>,
) -> Result<Response, Error> {
    auth.require_issuer_for(&body.profile)?;
    let password = match (body.format, &body.password) {
        (KeyFormat::Pkcs12, Some(p)) if p.len() >= 4 => Some(p.clone()),
        (KeyFormat::Pkcs12, _) => {
            return Err(Error::BadRequest(
                "format pkcs12 needs a \"password\" of at least 4 characters".into(),
            ));
        }
        (KeyFormat::Pem, Some(_)) => {
            return Err(Error::BadRequest(
                "\"password\" is only for format pkcs12".into(),
            ));
        }
        (KeyFormat::Pem, None) => None,
    };
    let request = GenerateRequest {
        profile: body.profile,
        dns_names: body.dns_names,
        ip_addresses: body.ip_addresses,
        common_name: body.common_name,
        key_algorithm: body.key_algorithm,
        validity: Validity {
            days: body.validity_days,
            not_after: body.not_after,
        },
        managed: body.managed,
    };
    let IssuedWithKey {
        issued,
        profile,
        key,
    } = state
        .services
        .certificates
        .issue_with_key(request, &auth.actor)
        .await?;
    let pkcs8 = key.serialize_der();
    let mut out = issued_view(&issued, &profile);
    match password {
        None => out.private_key = Some(key.serialize_pem()),
        Some(pw) => {
            let p12 = certkeeper_ca::export_pkcs12(
                &pkcs8,
                &issued.cert.der,
                &issued.chain,
                &pw,
                &out.subject,
            )?;
            out.pkcs12 = Some(base64::engine::general_purpose::STANDARD.encode(p12));
        }
    }
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Query of `GET /certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    ca: Option<String>,
    profile: Option<String>,
    status: Option<String>,
    san: Option<String>,
    serial: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expiring_before: Option<OffsetDateTime>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of certificates.
#[derive(Debug, Serialize)]
struct Page {
    items: Vec<CertView>,
    next_cursor: Option<String>,
}

fn encode_cursor(c: &CertRecord) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}.{}",
        c.created_at.unix_timestamp(),
        c.id
    ))
}

fn decode_cursor(s: &str) -> Result<(i64, String), Error> {
    let bad = || Error::BadRequest("malformed cursor".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

async fn list(
    State(state): State<AppState>,
    _r: Reader,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page>, Error> {
    let search = Search {
        ca: q.ca,
        profile: q.profile,
        status: q.status,
        san: q.san,
        serial: q.serial,
        expiring_before: q.expiring_before,
        limit: q.limit,
        after: q.cursor.as_deref().map(decode_cursor).transpose()?,
    };
    let page = state.services.certificates.search(search).await?;
    let next_cursor = if page.more {
        page.items.last().map(encode_cursor)
    } else {
        None
    };
    let now = page.now;
    Ok(Json(Page {
        items: page
            .items
            .into_iter()
            .map(|c| view(c, now, false))
            .collect(),
        next_cursor,
    }))
}

async fn get_one(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<CertView>, Error> {
    let c = state.services.certificates.get(&id).await?;
    Ok(Json(view(c.cert, c.now, true)))
}

async fn get_pem(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let c = state.services.certificates.get(&id).await?.cert;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        certkeeper_ca::pem_encode_certs([c.der.as_slice()]),
    )
        .into_response())
}

async fn get_der(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let c = state.services.certificates.get(&id).await?.cert;
    Ok(([(header::CONTENT_TYPE, "application/pkix-cert")], c.der).into_response())
}

async fn get_chain(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let (c, chain) = state.services.certificates.with_chain(&id).await?;
    // Leaf and intermediates; the root is the client's trust anchor and is left out.
    let mut ders: Vec<&[u8]> = vec![c.der.as_slice()];
    let n = match chain.last() {
        Some(last) if certkeeper_ca::is_self_issued(last) => chain.len() - 1,
        _ => chain.len(),
    };
    ders.extend(chain[..n].iter().map(Vec::as_slice));
    Ok((
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        certkeeper_ca::pem_encode_certs(ders),
    )
        .into_response())
}

/// Body of `POST /certificates/{id}/revoke`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Revoke {
    reason: Option<serde_json::Value>,
}

/// RFC 5280 reason names (camelCase as in the RFC, or snake_case) or numbers.
pub(super) fn parse_reason(v: Option<&serde_json::Value>) -> Result<u8, Error> {
    let bad = |s: &str| {
        Error::BadRequest(format!(
            "unknown revocation reason {s} (use unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, aACompromise, or 0-5, 9, 10)"
        ))
    };
    match v {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| bad(&n.to_string())),
        Some(serde_json::Value::String(s)) => {
            let key: String = s
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            Ok(match key.as_str() {
                "unspecified" => 0,
                "keycompromise" => 1,
                "cacompromise" => 2,
                "affiliationchanged" => 3,
                "superseded" => 4,
                "cessationofoperation" => 5,
                "privilegewithdrawn" => 9,
                "aacompromise" => 10,
                _ => return Err(bad(s)),
            })
        }
        Some(other) => Err(bad(&other.to_string())),
    }
}

async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<Revoke>,
) -> Result<Json<CertView>, Error> {
    let reason = parse_reason(body.reason.as_ref())?;
    let c = state
        .services
        .certificates
        .revoke(
            &id,
            reason,
            |profile| auth.require_issuer_for(profile),
            &auth.actor,
        )
        .await?;
    Ok(Json(view(c.cert, c.now, false)))
}
