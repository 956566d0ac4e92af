//! `/api/v1/managed` (managed certificates: create, list, get with versions, next renewal
//! and sync status, renew now, revoke, delete, bind to destinations) and
//! `/api/v1/destinations` (cloud destinations; their credentials are never shown).

use std::net::IpAddr;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use certkeeper_ca::KeyAlgorithm;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::{Admin, Auth, Reader};
use super::extract::{Json, Path, Query};
use crate::error::Error;
use crate::server::AppState;
use crate::services::managed::{ManagedDetail, NewDestination, NewManaged};
use crate::store::{BindingRecord, DestinationRecord, ManagedRecord, ManagedRequest};

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/managed", get(list).post(create))
        .route("/managed/{id}", get(get_one).delete(remove))
        .route("/managed/{id}/renew", post(renew))
        .route("/managed/{id}/revoke", post(revoke))
        .route("/managed/{id}/sync", post(sync_now))
        .route("/managed/{id}/bindings", post(bind))
        .route("/managed/{id}/bindings/{destination}", delete(unbind))
        .route(
            "/destinations",
            get(list_destinations).post(create_destination),
        )
        .route(
            "/destinations/{id}",
            get(get_destination).delete(delete_destination),
        )
}

/// A version as shown.
#[derive(Debug, Serialize)]
struct VersionView {
    version: i64,
    certificate_id: String,
    serial: String,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    status: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// A binding's sync status as shown.
#[derive(Debug, Serialize)]
struct BindingView {
    destination_id: String,
    destination: String,
    kind: String,
    pushed_version: Option<i64>,
    in_sync: bool,
    remote_id: Option<String>,
    remote_version: Option<String>,
    last_error: Option<String>,
    failures: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// A lifecycle event as shown.
#[derive(Debug, Serialize)]
struct EventView {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    kind: String,
    detail: serde_json::Value,
}

/// A managed certificate as shown.
#[derive(Debug, Serialize)]
struct ManagedView {
    id: String,
    name: String,
    profile: String,
    status: String,
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    common_name: Option<String>,
    key_algorithm: KeyAlgorithm,
    validity_days: Option<u32>,
    renew_at_percent: Option<i64>,
    current_version: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    next_renewal_at: Option<OffsetDateTime>,
    renewal_failures: i64,
    last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<VersionView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bindings: Option<Vec<BindingView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<EventView>>,
}

fn managed_view(m: ManagedRecord) -> ManagedView {
    ManagedView {
        id: m.id,
        name: m.name,
        profile: m.profile_name,
        status: m.status,
        dns_names: m.request.dns_names,
        ip_addresses: m.request.ip_addresses,
        common_name: m.request.common_name,
        key_algorithm: m.request.key_algorithm,
        validity_days: m.request.validity_days,
        renew_at_percent: m.renew_at_percent,
        current_version: m.current_version,
        next_renewal_at: m.next_renewal_at,
        renewal_failures: m.renewal_failures,
        last_error: m.last_error,
        created_at: m.created_at,
        created_by: m.created_by,
        versions: None,
        bindings: None,
        events: None,
    }
}

fn binding_view(b: BindingRecord, d: Option<&DestinationRecord>, current: i64) -> BindingView {
    let in_sync = b.pushed_version == Some(current);
    BindingView {
        destination: d.map(|d| d.name.clone()).unwrap_or_default(),
        kind: d.map(|d| d.kind.clone()).unwrap_or_default(),
        destination_id: b.destination_id,
        pushed_version: b.pushed_version,
        in_sync,
        remote_id: b.remote_id,
        remote_version: b.remote_version,
        last_error: b.last_error,
        failures: b.failures,
        next_attempt_at: (!in_sync).then_some(b.next_attempt_at),
        updated_at: b.updated_at,
    }
}

/// The full view: versions, bindings with sync status, recent events.
async fn detailed(state: &AppState, m: ManagedRecord) -> Result<ManagedView, Error> {
    let ManagedDetail {
        record,
        versions,
        bindings,
        events,
    } = state.services.managed.detail(m).await?;
    let current = record.current_version;
    let mut view = managed_view(record);
    view.versions = Some(
        versions
            .into_iter()
            .map(|v| VersionView {
                version: v.version.version,
                certificate_id: v.version.certificate_id,
                serial: v.certificate.serial,
                not_before: v.certificate.not_before,
                not_after: v.certificate.not_after,
                status: v.status,
                created_at: v.version.created_at,
            })
            .collect(),
    );
    view.bindings = Some(
        bindings
            .into_iter()
            .map(|b| binding_view(b.binding, b.destination.as_ref(), current))
            .collect(),
    );
    view.events = Some(
        events
            .into_iter()
            .map(|e| EventView {
                at: e.at,
                kind: e.kind,
                detail: e.detail,
            })
            .collect(),
    );
    Ok(view)
}

/// Body of `POST /managed`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateManaged {
    name: String,
    profile: String,
    #[serde(default)]
    dns_names: Vec<String>,
    #[serde(default)]
    ip_addresses: Vec<IpAddr>,
    common_name: Option<String>,
    key_algorithm: Option<KeyAlgorithm>,
    validity_days: Option<u32>,
    renew_at_percent: Option<i64>,
    #[serde(default)]
    destinations: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<CreateManaged>,
) -> Result<Response, Error> {
    auth.require_issuer_for(&body.profile)?;
    if !body.destinations.is_empty() {
        auth.require_admin()?;
    }
    let rec = state
        .services
        .managed
        .create_bound(
            NewManaged {
                name: body.name,
                profile: body.profile,
                request: ManagedRequest {
                    dns_names: body.dns_names,
                    ip_addresses: body.ip_addresses,
                    common_name: body.common_name,
                    key_algorithm: body.key_algorithm.unwrap_or(KeyAlgorithm::EcdsaP256),
                    validity_days: body.validity_days,
                },
                renew_at_percent: body.renew_at_percent,
            },
            &body.destinations,
            &auth.actor,
        )
        .await?;
    let view = detailed(&state, rec).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// A list of managed certificates.
#[derive(Debug, Serialize)]
struct ManagedList {
    items: Vec<ManagedView>,
}

async fn list(State(state): State<AppState>, _r: Reader) -> Result<Json<ManagedList>, Error> {
    let items = state
        .services
        .managed
        .list()
        .await?
        .into_iter()
        .map(managed_view)
        .collect();
    Ok(Json(ManagedList { items }))
}

async fn get_one(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<ManagedView>, Error> {
    let m = state.services.managed.get(&id).await?;
    Ok(Json(detailed(&state, m).await?))
}

async fn renew(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<ManagedView>, Error> {
    let m = state.services.managed.get(&id).await?;
    auth.require_issuer_for(&m.profile_name)?;
    let m = state.services.managed.renew_now(&m.id, &auth.actor).await?;
    Ok(Json(detailed(&state, m).await?))
}

async fn sync_now(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<ManagedView>, Error> {
    let m = state.services.managed.get(&id).await?;
    auth.require_issuer_for(&m.profile_name)?;
    state.services.managed.sync_now(&m.id).await?;
    let m = state.services.managed.get(&m.id).await?;
    Ok(Json(detailed(&state, m).await?))
}

/// Body of `POST /managed/{id}/revoke`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Revoke {
    reason: Option<serde_json::Value>,
}

async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<Revoke>,
) -> Result<Json<ManagedView>, Error> {
    let reason = super::certs::parse_reason(body.reason.as_ref())?;
    let m = state.services.managed.get(&id).await?;
    auth.require_issuer_for(&m.profile_name)?;
    let m = state
        .services
        .managed
        .revoke(&m.id, reason, &auth.actor)
        .await?;
    Ok(Json(detailed(&state, m).await?))
}

async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let m = state.services.managed.get(&id).await?;
    auth.require_issuer_for(&m.profile_name)?;
    state.services.managed.delete(&m.id, &auth.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /managed/{id}/bindings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bind {
    destination: String,
}

async fn bind(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
    Json(body): Json<Bind>,
) -> Result<Response, Error> {
    state
        .services
        .managed
        .bind(&id, &body.destination, &auth.actor)
        .await?;
    let m = state.services.managed.get(&id).await?;
    Ok((StatusCode::CREATED, Json(detailed(&state, m).await?)).into_response())
}

/// Query of `DELETE /managed/{id}/bindings/{destination}`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UnbindQuery {
    #[serde(default)]
    delete_remote: bool,
}

async fn unbind(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path((id, destination)): Path<(String, String)>,
    Query(q): Query<UnbindQuery>,
) -> Result<StatusCode, Error> {
    state
        .services
        .managed
        .unbind(&id, &destination, q.delete_remote, &auth.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A destination as shown: never its credentials.
#[derive(Debug, Serialize)]
struct DestinationView {
    id: String,
    name: String,
    kind: String,
    config: serde_json::Value,
    has_credentials: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    created_by: String,
}

fn destination_view(d: DestinationRecord) -> DestinationView {
    DestinationView {
        id: d.id,
        name: d.name,
        kind: d.kind,
        config: d.config,
        has_credentials: d.secret_sealed.is_some(),
        created_at: d.created_at,
        created_by: d.created_by,
    }
}

/// Body of `POST /destinations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateDestination {
    name: String,
    kind: String,
    config: serde_json::Value,
    credentials: Option<serde_json::Value>,
}

async fn create_destination(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateDestination>,
) -> Result<Response, Error> {
    let rec = state
        .services
        .managed
        .create_destination(
            NewDestination {
                name: body.name,
                kind: body.kind,
                config: body.config,
                credentials: body.credentials,
            },
            &auth.actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(destination_view(rec))).into_response())
}

/// A list of destinations.
#[derive(Debug, Serialize)]
struct DestinationList {
    items: Vec<DestinationView>,
}

async fn list_destinations(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<DestinationList>, Error> {
    let items = state
        .services
        .managed
        .list_destinations()
        .await?
        .into_iter()
        .map(destination_view)
        .collect();
    Ok(Json(DestinationList { items }))
}

async fn get_destination(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<DestinationView>, Error> {
    let d = state.services.managed.get_destination(&id).await?;
    Ok(Json(destination_view(d)))
}

async fn delete_destination(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    state
        .services
        .managed
        .delete_destination(&id, &auth.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
