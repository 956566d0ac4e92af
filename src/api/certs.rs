//! `/api/v1/certificates`: issue, search, fetch, revoke.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use certkeeper_ca::KeyAlgorithm;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, Reader};
use super::extract::{Json, Path, Query};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::services::certificates::{
    GenerateRequest, IssuedWithKey, REASONS, Search, Validity, decode_cursor, encode_cursor,
};
use crate::services::pki::Issued;
use crate::store::CertRecord;

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, issue_from_csr))
        .routes(routes!(issue_with_key))
        .routes(routes!(get_one))
        .routes(routes!(get_pem))
        .routes(routes!(get_der))
        .routes(routes!(get_chain))
        .routes(routes!(revoke))
}

/// A stored certificate as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Certificate, description = "A stored certificate. `certificate` (PEM) is only in `GET /certificates/{id}`.")]
pub(super) struct CertView {
    /// Id (UUID).
    id: String,
    /// The issuing CA's id.
    ca_id: String,
    /// The profile it was issued under.
    #[schema(required = true)]
    profile: Option<String>,
    /// Serial number, lower-case hex.
    serial: String,
    /// Subject DN.
    subject: String,
    /// Subject CN.
    #[schema(required = true)]
    common_name: Option<String>,
    /// DNS names and IP addresses.
    sans: Vec<String>,
    /// Issuer DN.
    issuer: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    /// Subject key type, when recognised.
    #[schema(required = true)]
    key_algorithm: Option<String>,
    /// SHA-256 of the DER certificate, lower-case hex.
    fingerprint_sha256: String,
    // `expired`: not revoked but past `not_after`.
    #[schema(value_type = schemas::CertificateStatus, inline)]
    status: String,
    /// Whether the server keeps the private key.
    managed: bool,
    /// When revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    revoked_at: Option<OffsetDateTime>,
    /// RFC 5280 reason code.
    #[schema(required = true)]
    revocation_reason: Option<i64>,
    /// When issued.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Who asked (`token:<name>:<id>` or `system`).
    created_by: String,
    /// The certificate, PEM.
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IssuedCertificate, description = "A certificate just issued. `private_key` or `pkcs12` only come from `/certificates/generate`.")]
struct IssuedView {
    /// Id (UUID).
    id: String,
    /// The issuing CA's id.
    ca_id: String,
    /// The profile's name.
    profile: String,
    /// Serial number, lower-case hex.
    serial: String,
    /// Subject DN.
    subject: String,
    /// DNS names, then IP addresses.
    sans: Vec<String>,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    /// SHA-256 of the DER certificate, lower-case hex.
    fingerprint_sha256: String,
    /// The certificate, PEM.
    certificate: String,
    /// The issuer chain without the root, PEM, nearest first.
    chain: String,
    /// The root certificate, PEM.
    root: String,
    /// The generated key, PKCS#8 PEM (`format: pem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    /// Key, certificate and chain as PKCS#12, base64 (`format: pkcs12`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(content_encoding = "base64", content_media_type = "application/pkcs12")]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = IssueCertificateRequest)]
struct IssueCsr {
    /// The profile's name or id.
    profile: String,
    /// The CSR, PEM. Names are taken from its subjectAltName extension and CN.
    csr: String,
    /// Requested validity in days (not with `not_after`). Default: the profile's `default_validity_days`, else its `max_validity_days`.
    #[schema(minimum = 1)]
    validity_days: Option<u32>,
    /// Requested end of validity (not with `validity_days`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_after: Option<OffsetDateTime>,
}

#[utoipa::path(
    post,
    path = "/certificates",
    operation_id = "issueCertificate",
    tag = "Certificates",
    summary = "Issue a certificate for a CSR",
    description = "Signs a CSR under a profile. The names come from the CSR's subjectAltName extension (and its CN); the profile decides what is allowed. An admin token, or an issuer token that lists the profile.",
    request_body(content((IssueCsr = "application/json")), description = "The CSR and profile."),
    responses(
        (status = 201, description = "The issued certificate with its chain.", content((IssuedView = "application/json"))),
        (status = 400, description = "Invalid body, no such profile, an unusable CSR (`bad-csr`), both `validity_days` and `not_after`, or `validity_days` 0.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token may not use this profile (`forbidden`), or the profile refused the request (`policy-violation`, with `profile` and `rule`).", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The profile's CA is not active.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
        (status = 502, description = "The profile names an external issuer, and it refused or failed (its problem document is in `upstream`).", content((schemas::Problem = "application/problem+json"))),
    )
)]
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
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
enum KeyFormat {
    #[default]
    Pem,
    Pkcs12,
}

/// The key type generated when the request names none (the certificates service's default),
/// as the document's `default`.
fn generated_key_default() -> String {
    KeyAlgorithm::EcdsaP256.to_string()
}

/// Body of `POST /certificates/generate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GenerateCertificateRequest)]
struct IssueGenerate {
    /// The profile's name or id.
    profile: String,
    /// DNS names for subjectAltName.
    #[serde(default)]
    #[schema(default = json!([]))]
    dns_names: Vec<String>,
    /// IP addresses for subjectAltName.
    #[serde(default)]
    #[schema(default = json!([]), value_type = Vec<String>)]
    ip_addresses: Vec<IpAddr>,
    /// Subject CN; kept only if it is one of the requested names, otherwise the first name is used.
    common_name: Option<String>,
    /// Type of the key to generate; the profile must allow it.
    #[schema(value_type = Option<certkeeper_ca::schema::GeneratableKey>, default = generated_key_default)]
    key_algorithm: Option<KeyAlgorithm>,
    /// Requested validity in days (not with `not_after`). Default: the profile's `default_validity_days`, else its `max_validity_days`.
    #[schema(minimum = 1)]
    validity_days: Option<u32>,
    /// Requested end of validity (not with `validity_days`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_after: Option<OffsetDateTime>,
    /// `pem`: the key is returned as `private_key`; `pkcs12`: key, certificate and chain are returned as `pkcs12`, protected by `password`.
    #[serde(default)]
    #[schema(default = "pem")]
    format: KeyFormat,
    /// PKCS#12 password (at least 4 characters); required for `pkcs12`, refused for `pem`.
    #[schema(min_length = 4)]
    password: Option<String>,
    /// Keep the private key on the server, sealed with the master key.
    #[serde(default)]
    #[schema(default = false)]
    managed: bool,
}

#[utoipa::path(
    post,
    path = "/certificates/generate",
    operation_id = "generateCertificate",
    tag = "Certificates",
    summary = "Generate a key and issue a certificate for it",
    description = "Generates the subscriber key on the server and issues a certificate for the given names. The key is returned once, as PEM (`format: pem`) or inside a password-protected PKCS#12 (`format: pkcs12`); with `managed: true` the server also keeps it, sealed. An admin token, or an issuer token that lists the profile.",
    request_body(content((IssueGenerate = "application/json")), description = "The names, key type and profile."),
    responses(
        (status = 201, description = "The issued certificate with its chain and the new key (`private_key` or `pkcs12`).", content((IssuedView = "application/json"))),
        (status = 400, description = "Invalid body, no such profile, `format: pkcs12` without a `password` of at least 4 characters, a `password` with `format: pem`, a key type that cannot be generated, both `validity_days` and `not_after`, or `validity_days` 0.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token may not use this profile (`forbidden`), or the profile refused the request (`policy-violation`, with `profile` and `rule`).", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The profile's CA is not active.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
        (status = 502, description = "The profile names an external issuer, and it refused or failed (its problem document is in `upstream`).", content((schemas::Problem = "application/problem+json"))),
    )
)]
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
    fingerprint: Option<String>,
    tag: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expiring_before: Option<OffsetDateTime>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of certificates.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CertificatePage)]
struct Page {
    #[schema(value_type = Vec<CertView>)]
    items: Vec<CertView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/certificates",
    operation_id = "listCertificates",
    tag = "Certificates",
    summary = "Search certificates",
    description = "Certificates matching every given filter, newest first, a page at a time (without the PEM). Unknown query parameters are refused. Any valid token.",
    params(
        ("ca" = Option<String>, Query, description = "Issuing CA, by id or name (an unknown CA is a 400)."),
        ("profile" = Option<String>, Query, description = "Profile name."),
        ("status" = Option<String>, Query, description = "`valid`: not revoked and not expired; `expired`: not revoked but past `not_after`; `revoked`. One of: `valid`, `expired`, `revoked`."),
        ("san" = Option<String>, Query, description = "A DNS name or IP address in the certificate; `*.example.com` or `.example.com` matches every name below `example.com`."),
        ("serial" = Option<String>, Query, description = "Serial number in hex; colons and upper case are accepted."),
        ("fingerprint" = Option<String>, Query, description = "SHA-256 fingerprint of the DER certificate in hex; colons and upper case are accepted."),
        ("tag" = Option<String>, Query, description = "A tag the certificate carries (as set with `PUT /alerts/tags/{fingerprint}` or on the dashboard), matched exactly."),
        ("expiring_before" = Option<String>, Query, description = "Only certificates whose `not_after` is before this time (RFC 3339; percent-encode a `+` offset).", format = DateTime),
        ("limit" = Option<i64>, Query, description = "Page size. Default: `50`.", minimum = 1, maximum = 1000),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page (opaque)."),
    ),
    responses(
        (status = 200, description = "A page of certificates.", content((Page = "application/json"))),
        (status = 400, description = "A malformed or unknown query parameter, `limit` outside 1-1000, an unknown `status` or `ca`, or a malformed cursor.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
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
        fingerprint: q.fingerprint,
        tag: q.tag,
        expiring_before: q.expiring_before,
        limit: q.limit,
        after: q.cursor.as_deref().map(decode_cursor).transpose()?,
        by_expiry: false,
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

#[utoipa::path(
    get,
    path = "/certificates/{id}",
    operation_id = "getCertificate",
    tag = "Certificates",
    summary = "Get a certificate",
    description = "One certificate with its PEM. Any valid token.",
    params(
        ("id" = String, Path, description = "The certificate's id."),
    ),
    responses(
        (status = 200, description = "The certificate.", content((CertView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<CertView>, Error> {
    let c = state.services.certificates.get(&id).await?;
    Ok(Json(view(c.cert, c.now, true)))
}

#[utoipa::path(
    get,
    path = "/certificates/{id}/pem",
    operation_id = "getCertificatePem",
    tag = "Certificates",
    summary = "Download a certificate as PEM",
    description = "Any valid token.",
    params(
        ("id" = String, Path, description = "The certificate's id."),
    ),
    responses(
        (status = 200, description = "The certificate, PEM.", content((String = "application/x-pem-file"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    get,
    path = "/certificates/{id}/der",
    operation_id = "getCertificateDer",
    tag = "Certificates",
    summary = "Download a certificate as DER",
    description = "Any valid token.",
    params(
        ("id" = String, Path, description = "The certificate's id."),
    ),
    responses(
        (status = 200, description = "The certificate, DER.", content(("application/pkix-cert"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_der(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let c = state.services.certificates.get(&id).await?.cert;
    Ok(([(header::CONTENT_TYPE, "application/pkix-cert")], c.der).into_response())
}

#[utoipa::path(
    get,
    path = "/certificates/{id}/chain",
    operation_id = "getCertificateChain",
    tag = "Certificates",
    summary = "Download a certificate with its chain",
    description = "The certificate followed by its issuer chain, nearest first, without the root (the client's trust anchor) when the chain ends in one. Any valid token.",
    params(
        ("id" = String, Path, description = "The certificate's id."),
    ),
    responses(
        (status = 200, description = "The certificate and intermediates, PEM.", content((String = "application/pem-certificate-chain"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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

/// Body of `POST /certificates/{id}/revoke` (and of a managed certificate's revoke).
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RevokeRequest)]
pub(super) struct Revoke {
    #[schema(value_type = Option<RevocationReason>)]
    pub(super) reason: Option<serde_json::Value>,
}

/// A name or code of [`REASONS`]: the names are matched without case or punctuation, so
/// `key_compromise` is `keyCompromise`.
fn reason_key(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// RFC 5280 reason names (camelCase as in the RFC, or snake_case) or numbers.
pub(super) fn parse_reason(v: Option<&serde_json::Value>) -> Result<u8, Error> {
    let bad = |s: &str| {
        let names: Vec<&str> = REASONS.iter().map(|(n, _, _)| *n).collect();
        Error::BadRequest(format!(
            "unknown revocation reason {s} (use {}, or 0-5, 9, 10)",
            names.join(", ")
        ))
    };
    match v {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| bad(&n.to_string())),
        Some(serde_json::Value::String(s)) => REASONS
            .iter()
            .find(|(name, _, _)| reason_key(name) == reason_key(s))
            .map(|(_, _, code)| *code)
            .ok_or_else(|| bad(s)),
        Some(other) => Err(bad(&other.to_string())),
    }
}

/// The schema of a revocation reason as [`parse_reason`] reads it.
struct RevocationReason;

impl PartialSchema for RevocationReason {
    fn schema() -> RefOr<Schema> {
        let rfc = REASONS.iter().map(|(n, _, _)| *n);
        let snake = REASONS
            .iter()
            .filter(|(n, s, _)| n != s)
            .map(|(_, s, _)| *s);
        let strings: Vec<&str> = rfc.chain(snake).collect();
        let codes: Vec<u8> = REASONS.iter().map(|(_, _, c)| *c).collect();
        OneOfBuilder::new()
            .description(Some(
                "An RFC 5280 reason: its name (camelCase as in the RFC or snake_case; case and \
                 punctuation are ignored) or its code. Null or left out: `unspecified`.",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(strings)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .enum_values(Some(codes)),
            )
            .into()
    }
}

impl ToSchema for RevocationReason {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("RevocationReason")
    }
}

#[utoipa::path(
    post,
    path = "/certificates/{id}/revoke",
    operation_id = "revokeCertificate",
    tag = "Certificates",
    summary = "Revoke a certificate",
    description = "Revokes the certificate and regenerates its CA's CRL. A certificate an external issuer signed is revoked upstream first (AWS Private CA `RevokeCertificate`, ACME `revokeCert`); if the upstream refuses, nothing changes here. A JSON body is required; `{}` revokes with reason `unspecified`. An admin token, or an issuer token that lists the certificate's profile.",
    params(
        ("id" = String, Path, description = "The certificate's id."),
    ),
    request_body(content((Revoke = "application/json")), description = "The revocation reason."),
    responses(
        (status = 200, description = "The revoked certificate (without its PEM).", content((CertView = "application/json"))),
        (status = 400, description = "Invalid body, or an unknown or disallowed reason (7 is unassigned, 8 is removeFromCRL).", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token may not use the certificate's profile.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The certificate is already revoked, or its CA is not active so no CRL can be signed.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
        (status = 502, description = "The external issuer that signed it could not be reached or refused the revocation (its message in `detail`); nothing changed.", content((schemas::Problem = "application/problem+json"))),
    )
)]
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
