//! `/api/v1/cas`: the CA hierarchy.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use certkeeper_ca::{KeyAlgorithm, NameConstraintSpec};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::{Admin, Reader};
use super::extract::{Json, Path, Query};
use crate::error::Error;
use crate::server::AppState;
use crate::services::cas::{CaDetails, CaKind, NewCa};
use crate::store::CaRecord;

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/cas", get(list).post(create))
        .route("/cas/import", post(import))
        .route("/cas/{id}", get(get_one))
        .route("/cas/{id}/csr", get(csr))
        .route("/cas/{id}/certificate", post(install))
        .route("/cas/{id}/crl", get(crl))
}

/// A CA as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct CaView {
    id: String,
    name: String,
    kind: String,
    status: String,
    parent_id: Option<String>,
    subject: String,
    key_algorithm: String,
    serial: Option<String>,
    fingerprint_sha256: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    not_after: Option<OffsetDateTime>,
    path_len: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    certificate_url: Option<String>,
    crl_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<String>,
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
        serial: ca.serial.clone(),
        fingerprint_sha256: ca.fingerprint.clone(),
        not_before: ca.not_before,
        not_after: ca.not_after,
        path_len: ca.path_len,
        created_at: ca.created_at,
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

async fn get_one(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<CaView>, Error> {
    let d = state.services.cas.get(&id).await?;
    Ok(Json(full_view(&state, &d)))
}

/// Kinds of CA that can be created.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum CaType {
    Root,
    Intermediate,
    External,
}

/// Body of `POST /cas`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCa {
    name: String,
    #[serde(rename = "type")]
    kind: CaType,
    parent: Option<String>,
    common_name: String,
    organization: Option<String>,
    country: Option<String>,
    key_algorithm: Option<KeyAlgorithm>,
    validity_days: Option<u32>,
    path_len: Option<u8>,
    name_constraints: Option<NameConstraintSpec>,
}

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
    };
    let d = state.services.cas.create(new, &auth.actor).await?;
    Ok((StatusCode::CREATED, Json(full_view(&state, &d))).into_response())
}

/// Body of `POST /cas/import`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportCa {
    name: String,
    certificate: String,
    private_key: String,
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Install {
    certificate: String,
}

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
