//! `/api/v1/cas`: the CA hierarchy.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use certkeeper_ca::{KeyAlgorithm, NameConstraintSpec};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Reader};
use super::extract::{Json, Path, Query};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::services::cas::{CaDetails, CaKind, NewCa};
use crate::services::pki::{KeyStorage, Rollover};
use crate::store::{CaRecord, CrossCertRecord};

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(import))
        .routes(routes!(get_one))
        .routes(routes!(csr))
        .routes(routes!(install))
        .routes(routes!(crl))
        .routes(routes!(rollover))
        .routes(routes!(cross_certificates))
}

/// A CA as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Ca, description = "A CA. `certificate` and `chain` are present (in single-CA answers) when the CA has a certificate, `csr` while it is pending.")]
pub(super) struct CaView {
    /// Id (UUID).
    id: String,
    /// Unique name.
    name: String,
    // How the CA came to be (the `type` it was created with, or `imported`).
    #[schema(value_type = schemas::CaKind, inline)]
    kind: String,
    // `pending`: an `external` CA waiting for its certificate. Only `active` CAs sign.
    #[schema(value_type = schemas::CaStatus, inline)]
    status: String,
    /// The issuing CA when it is one of ours.
    #[schema(required = true)]
    parent_id: Option<String>,
    /// Subject DN.
    subject: String,
    /// Key type (`ecdsa-p256`, ...).
    key_algorithm: String,
    key_storage: KeyStorageKind,
    /// Serial number, lower-case hex; null while pending.
    #[schema(required = true)]
    serial: Option<String>,
    /// SHA-256 of the DER certificate, lower-case hex; null while pending.
    #[schema(required = true)]
    fingerprint_sha256: Option<String>,
    /// Start of validity; null while pending.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    not_before: Option<OffsetDateTime>,
    /// End of validity; null while pending.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    not_after: Option<OffsetDateTime>,
    /// pathLenConstraint.
    #[schema(required = true)]
    path_len: Option<i64>,
    /// When created.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// The CA that issues in this one's place from `successor_from` (a rollover); this CA
    /// keeps signing its CRL and OCSP answers.
    #[schema(required = true)]
    successor_id: Option<String>,
    /// When the successor takes over issuance.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    successor_from: Option<OffsetDateTime>,
    /// Public URL of the CA certificate (AIA), for active CAs.
    #[schema(required = true)]
    certificate_url: Option<String>,
    /// Public URL of the CRL, for active CAs.
    #[schema(required = true)]
    crl_url: Option<String>,
    /// The CA certificate, PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    /// The CA certificate and the certificates above it, nearest first, PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<String>,
    /// The CSR of a pending CA, PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    csr: Option<String>,
}

fn view(state: &AppState, ca: &CaRecord) -> CaView {
    let active = ca.status == "active";
    let links = state.services.cas.links(&ca.id);
    CaView {
        id: ca.id.clone(),
        name: ca.name.clone(),
        kind: ca.kind.clone(),
        status: ca.status.clone(),
        parent_id: ca.parent_id.clone(),
        subject: ca.subject.clone(),
        key_algorithm: ca.key_algorithm.clone(),
        key_storage: if ca.key_ref.is_some() {
            KeyStorageKind::Pkcs11
        } else {
            KeyStorageKind::Sealed
        },
        serial: ca.serial.clone(),
        fingerprint_sha256: ca.fingerprint.clone(),
        not_before: ca.not_before,
        not_after: ca.not_after,
        path_len: ca.path_len,
        created_at: ca.created_at,
        successor_id: ca.successor_id.clone(),
        successor_from: ca.successor_from,
        certificate_url: active.then(|| links.ca_issuers_url.clone()).flatten(),
        crl_url: active.then(|| links.crl_url.clone()).flatten(),
        certificate: None,
        chain: None,
        csr: None,
    }
}

fn csr_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der.to_vec())).replace("\r\n", "\n")
}

#[utoipa::path(
    get,
    path = "/cas",
    operation_id = "listCas",
    tag = "CAs",
    summary = "List CAs",
    description = "Every CA, oldest first, without certificates, chains or CSRs. Any valid token.",
    responses(
        (status = 200, description = "The CAs.", content((Vec<CaView> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list(State(state): State<AppState>, _r: Reader) -> Result<Json<Vec<CaView>>, Error> {
    let cas = state.services.cas.list().await?;
    Ok(Json(cas.iter().map(|c| view(&state, c)).collect()))
}

fn full_view(state: &AppState, d: &CaDetails) -> CaView {
    let mut v = view(state, &d.ca);
    if let Some(der) = &d.ca.cert_der {
        v.certificate = Some(certkeeper_ca::pem_encode_certs([der.as_slice()]));
    }
    if let Some(chain) = &d.chain {
        v.chain = Some(certkeeper_ca::pem_encode_certs(
            chain.iter().map(Vec::as_slice),
        ));
    }
    v.csr = d.ca.csr_der.as_deref().map(csr_pem);
    v
}

#[utoipa::path(
    get,
    path = "/cas/{id}",
    operation_id = "getCa",
    tag = "CAs",
    summary = "Get a CA",
    description = "One CA with its certificate and chain (when it has a certificate) and its CSR (while pending). Any valid token.",
    params(
        ("id" = String, Path, description = "The CA's id or its name."),
    ),
    responses(
        (status = 200, description = "The CA.", content((CaView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such CA.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<CaView>, Error> {
    let d = state.services.cas.get(&id).await?;
    Ok(Json(full_view(&state, &d)))
}

/// Kinds of CA that can be created: `root`: self-signed; `intermediate`: signed by `parent`;
/// `external`: pending, to be signed elsewhere.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
enum CaType {
    Root,
    Intermediate,
    External,
}

/// Where a CA's private key is kept: `sealed`: in the database, sealed under the master key;
/// `pkcs11`: generated in the PKCS#11 token of the `[hsm]` settings, never leaving it (roots
/// and intermediates only).
#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
enum KeyStorageKind {
    #[default]
    Sealed,
    Pkcs11,
}

/// Body of `POST /cas`.
// The defaults of `key_algorithm` and `validity_days` come from the settings: the document
// fills them in when it is served.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateCaRequest)]
struct CreateCa {
    /// Unique name: 1 to 64 letters, digits, `-`, `_` or `.`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    name: String,
    #[serde(rename = "type")]
    kind: CaType,
    /// The signing CA's id or name; required for `intermediate`, refused for the other types.
    parent: Option<String>,
    /// Subject CN (not blank).
    #[schema(min_length = 1)]
    common_name: String,
    /// Subject O.
    organization: Option<String>,
    /// Subject C (two letters).
    country: Option<String>,
    /// Key type of the CA key.
    #[schema(value_type = Option<certkeeper_ca::schema::GeneratableKey>)]
    key_algorithm: Option<KeyAlgorithm>,
    /// Lifetime in days (an intermediate's is clamped to its parent's).
    #[schema(minimum = 1, maximum = 36500)]
    validity_days: Option<u32>,
    /// pathLenConstraint: how many CA levels may follow below. Unlimited when left out, or one less than the parent's limit for an intermediate.
    #[schema(minimum = 0, maximum = 255)]
    path_len: Option<u8>,
    name_constraints: Option<NameConstraintSpec>,
    #[serde(default)]
    key_storage: KeyStorageKind,
}

#[utoipa::path(
    post,
    path = "/cas",
    operation_id = "createCa",
    tag = "CAs",
    summary = "Create a CA",
    description = "Creates a self-signed root (`type: root`, no `parent`), an intermediate signed by one of our active CAs (`type: intermediate` with `parent`), or a pending CA whose certificate will be signed elsewhere (`type: external`, no `parent`; the answer has `status: pending` and a `csr`). Admin token.",
    request_body(content((CreateCa = "application/json")), description = "The new CA."),
    responses(
        (status = 201, description = "The new CA, with its certificate and chain (or, for `external`, its CSR).", content((CaView = "application/json"))),
        (status = 400, description = "Invalid body: missing or unknown fields, empty `common_name`, a bad `name`, `parent` missing for an intermediate or given for another type, a key type that cannot be generated (in the token: ecdsa-p256, ecdsa-p384 and rsa-2048/3072/4096), `validity_days` outside 1-36500, a `path_len` the parent forbids, or `key_storage: pkcs11` for an `external` CA or without a configured PKCS#11 token.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "The `parent` CA does not exist.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A CA with this name exists, or the `parent` CA is not active.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn create(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateCa>,
) -> Result<Response, Error> {
    let new = NewCa {
        name: body.name,
        kind: match body.kind {
            CaType::Root => CaKind::Root,
            CaType::Intermediate => CaKind::Intermediate,
            CaType::External => CaKind::External,
        },
        parent: body.parent,
        common_name: body.common_name,
        organization: body.organization,
        country: body.country,
        key_algorithm: body.key_algorithm,
        validity_days: body.validity_days,
        path_len: body.path_len,
        name_constraints: body.name_constraints,
        key_storage: match body.key_storage {
            KeyStorageKind::Sealed => KeyStorage::Sealed,
            KeyStorageKind::Pkcs11 => KeyStorage::Pkcs11,
        },
    };
    let d = state.services.cas.create(new, &auth.actor).await?;
    Ok((StatusCode::CREATED, Json(full_view(&state, &d))).into_response())
}

/// Body of `POST /cas/import`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImportCaRequest)]
struct ImportCa {
    /// Unique name: 1 to 64 letters, digits, `-`, `_` or `.`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    name: String,
    /// The CA certificate, PEM, optionally followed by the certificates above it.
    certificate: String,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    private_key: String,
}

#[utoipa::path(
    post,
    path = "/cas/import",
    operation_id = "importCa",
    tag = "CAs",
    summary = "Import a CA",
    description = "Imports an existing CA certificate (optionally followed by its chain) and its private key; the CA gets `kind: imported`. Admin token.",
    request_body(content((ImportCa = "application/json")), description = "The CA certificate and key."),
    responses(
        (status = 201, description = "The imported CA.", content((CaView = "application/json"))),
        (status = 400, description = "Invalid body or name, an unparseable certificate or key, a key that does not match the certificate, or a certificate that is not a usable CA.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A CA with this name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn import(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<ImportCa>,
) -> Result<Response, Error> {
    let d = state
        .services
        .cas
        .import(
            &body.name,
            body.certificate.as_bytes(),
            body.private_key.as_bytes(),
            &auth.actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(full_view(&state, &d))).into_response())
}

#[utoipa::path(
    get,
    path = "/cas/{id}/csr",
    operation_id = "getCaCsr",
    tag = "CAs",
    summary = "Get a pending CA's CSR",
    description = "The certificate signing request of a pending (`external`) CA, to be signed by another CA. Any valid token.",
    params(
        ("id" = String, Path, description = "The CA's id or its name."),
    ),
    responses(
        (status = 200, description = "The CSR, PEM (`-----BEGIN CERTIFICATE REQUEST-----`).", content((String = "application/x-pem-file"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such CA.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The CA is not pending, so it has no CSR.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn csr(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let der = state.services.cas.csr(&id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        csr_pem(&der),
    )
        .into_response())
}

/// Body of `POST /cas/{id}/certificate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InstallCaCertificateRequest)]
struct Install {
    /// The signed CA certificate, PEM, optionally followed by the certificates above it.
    certificate: String,
}

#[utoipa::path(
    post,
    path = "/cas/{id}/certificate",
    operation_id = "installCaCertificate",
    tag = "CAs",
    summary = "Install a pending CA's certificate",
    description = "Installs the externally signed certificate of a pending CA, which becomes active. Admin token.",
    params(
        ("id" = String, Path, description = "The CA's id or its name."),
    ),
    request_body(content((Install = "application/json")), description = "The signed certificate."),
    responses(
        (status = 200, description = "The CA, now active.", content((CaView = "application/json"))),
        (status = 400, description = "Invalid body, an unparseable certificate, a certificate that does not match the CA's key, or one that is not a usable CA.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such CA.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The CA is not pending a certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn install(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
    Json(body): Json<Install>,
) -> Result<Json<CaView>, Error> {
    let d = state
        .services
        .cas
        .install(&id, body.certificate.as_bytes(), &auth.actor)
        .await?;
    Ok(Json(full_view(&state, &d)))
}

/// `?format=pem|der`.
#[derive(Debug, Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

#[utoipa::path(
    get,
    path = "/cas/{id}/crl",
    operation_id = "getCaCrl",
    tag = "CAs",
    summary = "Get a CA's CRL",
    description = "The CA's current CRL, regenerated first when it is missing or past half its life. Any valid token. The same CRL is public at `/crl/{id}.crl`.",
    params(
        ("id" = String, Path, description = "The CA's id or its name."),
        ("format" = Option<String>, Query, description = "`der` (default) or `pem`. One of: `der`, `pem`."),
    ),
    responses(
        (status = 200, description = "The CRL: DER for `format=der`, PEM (`-----BEGIN X509 CRL-----`) for `format=pem`.", content(("application/pkix-crl"), (String = "application/x-pem-file"))),
        (status = 400, description = "`format` is not `der` or `pem`.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such CA.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The CA is not active (a pending CA has no CRL).", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn crl(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
    Query(q): Query<FormatQuery>,
) -> Result<Response, Error> {
    if !matches!(q.format.as_deref(), None | Some("der") | Some("pem")) {
        return Err(Error::BadRequest(format!(
            "format {:?} is not one of der, pem",
            q.format.unwrap_or_default()
        )));
    }
    let der = state.services.cas.crl(&id).await?;
    match q.format.as_deref() {
        None | Some("der") => {
            Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
        }
        Some("pem") => {
            let pem = pem::encode(&pem::Pem::new("X509 CRL", der)).replace("\r\n", "\n");
            Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
        }
        Some(other) => Err(Error::BadRequest(format!(
            "format {other:?} is not one of der, pem"
        ))),
    }
}

/// Body of `POST /cas/{id}/rollover`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RolloverRequest)]
struct RolloverBody {
    /// Name of the successor CA to make: 1 to 64 letters, digits, `-`, `_` or `.`. Leave
    /// out with `successor`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    name: Option<String>,
    /// Roll over onto this existing active CA (id or name) instead of making one: for a CA
    /// signed outside certkeeper, whose successor is created as `external` and installed
    /// first.
    successor: Option<String>,
    /// The successor's subject CN; the current CN's next generation (`X` becomes `X G2`)
    /// when left out. It must differ from the current CN.
    #[schema(min_length = 1)]
    common_name: Option<String>,
    /// The successor's key type; the current CA's when left out.
    #[schema(value_type = Option<certkeeper_ca::schema::GeneratableKey>)]
    key_algorithm: Option<KeyAlgorithm>,
    /// The successor's lifetime in days; the current CA's lifetime when left out (an
    /// intermediate's is clamped to its parent's).
    #[schema(minimum = 1, maximum = 36500)]
    validity_days: Option<u32>,
    /// When the successor starts issuing (RFC 3339); now when left out. Other replicas see
    /// a rollover within five minutes, so schedule a cluster-wide switch at least that far
    /// ahead.
    #[serde(default, with = "time::serde::rfc3339::option")]
    from: Option<OffsetDateTime>,
    /// For an intermediate: the CA that signs its successor (id or name). By default the CA
    /// that issues in its parent's place now, so after a root rollover the intermediate's
    /// successor lands under the new root.
    parent: Option<String>,
}

/// A cross certificate between two of our CAs.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CrossCertificate)]
struct CrossCertificateView {
    /// Id (UUID).
    id: String,
    /// The CA whose subject and key the certificate carries.
    subject_ca_id: String,
    /// The CA that signed it.
    issuer_ca_id: String,
    /// Serial number, lower-case hex.
    serial: String,
    /// SHA-256 of the DER certificate, lower-case hex.
    fingerprint_sha256: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    /// End of validity: the earlier of the two CAs' ends.
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    /// The certificate, PEM.
    certificate: String,
}

fn cross_view(c: &CrossCertRecord) -> CrossCertificateView {
    CrossCertificateView {
        id: c.id.clone(),
        subject_ca_id: c.subject_ca_id.clone(),
        issuer_ca_id: c.issuer_ca_id.clone(),
        serial: c.serial.clone(),
        fingerprint_sha256: c.fingerprint.clone(),
        not_before: c.not_before,
        not_after: c.not_after,
        certificate: certkeeper_ca::pem_encode_certs([c.cert_der.as_slice()]),
    }
}

/// Answer of `POST /cas/{id}/rollover`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Rollover)]
struct RolloverView {
    /// The successor, with its certificate and chain.
    successor: CaView,
    /// Cross certificates made with a root's successor: the new root signed by the old one
    /// (what chains of the new hierarchy end with while the old root is trusted), then the
    /// old root signed by the new one. Empty for intermediates.
    cross_certificates: Vec<CrossCertificateView>,
}

#[utoipa::path(
    post,
    path = "/cas/{id}/rollover",
    operation_id = "rollOverCa",
    tag = "CAs",
    summary = "Roll a CA over to a successor",
    description = "Makes a successor with a new key and the same policy (organisation, country, path length, name constraints), or links an existing CA with `successor`. From `from` on, every profile, ACME directory and EST label that names this CA issues from the successor, while this CA keeps signing its CRL and OCSP answers for what it issued. An intermediate's successor is signed by the CA issuing in its parent's place; a root's successor is a new root, cross-signed both ways (see `GET /cas/{id}/cross-certificates`), and chains under it end with the new root signed by the old one while that one is valid. To have ACME clients renew early onto the successor, move this CA's renewal window (`POST /acme/renewal-windows`). Admin token.",
    params(
        ("id" = String, Path, description = "The CA's id or its name."),
    ),
    request_body(content((RolloverBody = "application/json")), description = "The successor."),
    responses(
        (status = 201, description = "The successor and the cross certificates made.", content((RolloverView = "application/json"))),
        (status = 400, description = "Invalid body or name, a common name equal to the current one, `name` missing, `successor` together with fields of a new CA, `parent` for a root, or a CA signed outside certkeeper without `successor`.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such CA (or `successor`, or `parent`).", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The CA is not active or already has a successor, or a CA with the successor's name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn rollover(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
    Json(body): Json<RolloverBody>,
) -> Result<Response, Error> {
    let req = Rollover {
        name: body.name,
        successor: body.successor,
        common_name: body.common_name,
        key_algorithm: body.key_algorithm,
        validity_days: body.validity_days,
        from: body.from,
        parent: body.parent,
    };
    let (d, cross) = state.services.cas.roll_over(&id, req, &auth.actor).await?;
    let answer = RolloverView {
        successor: full_view(&state, &d),
        cross_certificates: cross.iter().map(cross_view).collect(),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[utoipa::path(
    get,
    path = "/cas/{id}/cross-certificates",
    operation_id = "listCaCrossCertificates",
    tag = "CAs",
    summary = "List a CA's cross certificates",
    description = "The cross certificates the CA is the subject or the issuer of, oldest first. Serve the old root signed by the new one beside certificates of the old hierarchy for clients that trust only the new root. Any valid token.",
    params(
        ("id" = String, Path, description = "The CA's id or its name."),
    ),
    responses(
        (status = 200, description = "The cross certificates.", content((Vec<CrossCertificateView> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such CA.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn cross_certificates(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<Vec<CrossCertificateView>>, Error> {
    let list = state.services.cas.cross_certificates(&id).await?;
    Ok(Json(list.iter().map(cross_view).collect()))
}
