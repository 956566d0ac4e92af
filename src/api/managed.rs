//! `/api/v1/managed` (managed certificates: create, list, get with versions, next renewal
//! and sync status, renew now, revoke, delete, bind to destinations) and
//! `/api/v1/destinations` (cloud destinations; their credentials are never shown).

use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certkeeper_ca::KeyAlgorithm;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Auth, Reader};
use super::extract::{Json, Path, Query};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::services::managed::{ConnectionTest, ManagedDetail, NewDestination, NewManaged};
use crate::store::{BindingRecord, DestinationRecord, ManagedRecord, ManagedRequest};

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, remove))
        .routes(routes!(renew))
        .routes(routes!(revoke))
        .routes(routes!(sync_now))
        .routes(routes!(bind))
        .routes(routes!(unbind))
        .routes(routes!(list_destinations, create_destination))
        .routes(routes!(get_destination, delete_destination))
        .routes(routes!(test_destination))
}

/// A version as shown.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ManagedVersion)]
struct VersionView {
    /// 1, 2, ...
    version: i64,
    /// The certificate (see /certificates/{id}).
    certificate_id: String,
    /// Serial number, hex.
    serial: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    #[schema(value_type = schemas::ManagedVersionStatus, inline)]
    status: String,
    /// When issued.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// A binding's sync status as shown.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Binding)]
struct BindingView {
    destination_id: String,
    /// The destination's name.
    destination: String,
    #[schema(value_type = schemas::BindingKind, inline)]
    kind: String,
    /// The newest version the destination holds.
    #[schema(required = true)]
    pushed_version: Option<i64>,
    /// Whether the destination holds the current version.
    in_sync: bool,
    /// The ACM certificate ARN, or the Key Vault certificate URL.
    #[schema(required = true)]
    remote_id: Option<String>,
    /// The Key Vault version id, or for ACM the serial (hex) of the certificate under the ARN.
    #[schema(required = true)]
    remote_version: Option<String>,
    /// The last push error.
    #[schema(required = true)]
    last_error: Option<String>,
    /// Push failures in a row.
    failures: i64,
    /// When the next push is tried (null when in sync).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    next_attempt_at: Option<OffsetDateTime>,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// A lifecycle event as shown.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ManagedEvent)]
struct EventView {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    #[schema(value_type = schemas::ManagedEventKind, inline)]
    kind: String,
    /// Facts (any JSON value).
    detail: serde_json::Value,
}

/// A managed certificate as shown.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ManagedCertificate, description = "A managed certificate.")]
struct ManagedView {
    /// Id (UUID).
    id: String,
    /// Unique name.
    name: String,
    /// The issuing profile.
    profile: String,
    // `revoked`: no more renewals or pushes.
    #[schema(value_type = schemas::ManagedCertificateStatus, inline)]
    status: String,
    /// DNS names of every version.
    dns_names: Vec<String>,
    /// IP addresses of every version.
    #[schema(value_type = Vec<String>)]
    ip_addresses: Vec<IpAddr>,
    /// Subject common name.
    #[schema(required = true)]
    common_name: Option<String>,
    #[schema(value_type = certkeeper_ca::schema::GeneratableKey)]
    key_algorithm: KeyAlgorithm,
    /// Validity of each version; null: the profile's maximum.
    #[schema(required = true)]
    validity_days: Option<u32>,
    /// Renewal point in percent of each version's life; null: two thirds.
    #[schema(required = true)]
    renew_at_percent: Option<i64>,
    /// The newest version.
    current_version: i64,
    /// When the next renewal (or retry after a failure) is due; null once revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    next_renewal_at: Option<OffsetDateTime>,
    /// Renewal failures in a row.
    renewal_failures: i64,
    /// The last renewal error.
    #[schema(required = true)]
    last_error: Option<String>,
    /// The upstream CA's problem document (RFC 7807) of the last failure, when an external
    /// issuer refused; null otherwise.
    #[schema(required = true, value_type = Option<Object>)]
    last_problem: Option<serde_json::Value>,
    /// When created.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Who created it.
    created_by: String,
    /// The renewal window the upstream ACME CA suggests for the current version (RFC
    /// 9773), when it offers renewal information; null otherwise. The renewal follows it.
    #[schema(required = true)]
    upstream_renewal_window: Option<UpstreamWindowView>,
    /// Every version, newest first (single-object answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<VersionView>>,
    /// Sync status per destination (single-object answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    bindings: Option<Vec<BindingView>>,
    /// The 50 newest lifecycle events (single-object answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<EventView>>,
}

/// A renewal window suggested by an upstream ACME CA.
#[derive(Debug, Serialize, ToSchema)]
struct UpstreamWindowView {
    /// Start of the window.
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    /// End of the window.
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
    /// The upstream's page explaining the window.
    #[schema(required = true)]
    explanation_url: Option<String>,
    /// When certkeeper asks the upstream again.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    next_check: Option<OffsetDateTime>,
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
        last_problem: m.last_problem,
        created_at: m.created_at,
        created_by: m.created_by,
        upstream_renewal_window: m.upstream_window.map(|w| UpstreamWindowView {
            start: w.start,
            end: w.end,
            explanation_url: w.explanation_url,
            next_check: w.next_check,
        }),
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateManagedRequest)]
struct CreateManaged {
    /// Unique name: letters, digits, `-`, `_`, `.`.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    /// The issuing profile (name or id).
    profile: String,
    #[serde(default)]
    #[schema(default = json!([]))]
    dns_names: Vec<String>,
    #[serde(default)]
    #[schema(default = json!([]), value_type = Vec<String>)]
    ip_addresses: Vec<IpAddr>,
    common_name: Option<String>,
    /// Key type of every version; default ecdsa-p256.
    #[schema(value_type = Option<certkeeper_ca::schema::GeneratableKey>)]
    key_algorithm: Option<KeyAlgorithm>,
    /// Validity of each version; default: the profile's maximum.
    #[schema(minimum = 1)]
    validity_days: Option<u32>,
    /// Renew when this percentage of a version's life has passed; default: two thirds.
    #[schema(minimum = 1, maximum = 99)]
    renew_at_percent: Option<i64>,
    /// Destinations (ids or names) to bind at once; admin token.
    #[serde(default)]
    #[schema(default = json!([]))]
    destinations: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/managed",
    operation_id = "createManaged",
    tag = "Managed certificates",
    summary = "Create a managed certificate",
    description = "Issues version 1 with a key generated and kept (sealed) by the server, and schedules renewals. Binding `destinations` at once needs an admin token; otherwise an issuer token for the profile.",
    request_body(content((CreateManaged = "application/json")), description = "The managed certificate."),
    responses(
        (status = 201, description = "The managed certificate with version 1.", content((ManagedView = "application/json"))),
        (status = 400, description = "Invalid body, name, profile, key type, validity or renewal point, or an unknown destination.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token may not use the managed certificate's profile, or profile policy refused the request.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A managed certificate with this name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
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
#[derive(Debug, Serialize, ToSchema)]
struct ManagedList {
    #[schema(value_type = Vec<ManagedView>)]
    items: Vec<ManagedView>,
}

#[utoipa::path(
    get,
    path = "/managed",
    operation_id = "listManaged",
    tag = "Managed certificates",
    summary = "List managed certificates",
    description = "Every managed certificate, by name, without versions, bindings or events. Any token.",
    responses(
        (status = 200, description = "The managed certificates.", content((ManagedList = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    get,
    path = "/managed/{id}",
    operation_id = "getManaged",
    tag = "Managed certificates",
    summary = "Get a managed certificate",
    description = "With its versions (newest first), next renewal, sync status per destination and recent lifecycle events. Any token.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
    ),
    responses(
        (status = 200, description = "The managed certificate.", content((ManagedView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such managed certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<ManagedView>, Error> {
    let m = state.services.managed.get(&id).await?;
    Ok(Json(detailed(&state, m).await?))
}

#[utoipa::path(
    post,
    path = "/managed/{id}/renew",
    operation_id = "renewManaged",
    tag = "Managed certificates",
    summary = "Renew now",
    description = "Issues a new version with a fresh key at once; destinations receive it on the next sync. Issuer token for the profile.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
    ),
    responses(
        (status = 200, description = "The managed certificate with its new version.", content((ManagedView = "application/json"))),
        (status = 400, description = "The stored request is no longer valid for the profile.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token may not use the managed certificate's profile, or profile policy refused the request.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such managed certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The certificate is revoked, or another renewal is under way.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    post,
    path = "/managed/{id}/sync",
    operation_id = "syncManaged",
    tag = "Managed certificates",
    summary = "Push to destinations now",
    description = "Pushes the current version to every bound destination that is behind, whatever the retry schedule says. Failures are recorded on the bindings (see `bindings[].last_error`), not returned as errors. Issuer token for the profile.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
    ),
    responses(
        (status = 200, description = "The managed certificate with its sync status.", content((ManagedView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token may not use the managed certificate's profile, or profile policy refused the request.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such managed certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    post,
    path = "/managed/{id}/revoke",
    operation_id = "revokeManaged",
    tag = "Managed certificates",
    summary = "Revoke and stop renewing",
    description = "Revokes every valid version (upstream first when an external issuer signed it) and stops renewals and pushes. Issuer token for the profile.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
    ),
    request_body(content((super::certs::Revoke = "application/json")), description = "The revocation reason."),
    responses(
        (status = 200, description = "The revoked managed certificate.", content((ManagedView = "application/json"))),
        (status = 400, description = "Invalid body or reason.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token may not use the managed certificate's profile, or profile policy refused the request.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such managed certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "Already revoked.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
        (status = 502, description = "The external issuer could not be reached or refused to revoke a version: that version and the managed certificate stay as they were (versions revoked before it stay revoked).", content((schemas::Problem = "application/problem+json"))),
    )
)]
async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<super::certs::Revoke>,
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

#[utoipa::path(
    delete,
    path = "/managed/{id}",
    operation_id = "deleteManaged",
    tag = "Managed certificates",
    summary = "Stop managing a certificate",
    description = "Forgets the managed certificate, its bindings and events. Issued versions stay on record as certificates. What was pushed to destinations with `remove_on_unbind` is removed first (if that fails: 409, nothing changes); copies at other destinations are left alone. Issuer token for the profile.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token may not use the managed certificate's profile, or profile policy refused the request.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such managed certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A destination with `remove_on_unbind` refused or failed the removal; nothing changed.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BindRequest)]
struct Bind {
    /// The destination's id or name.
    destination: String,
}

#[utoipa::path(
    post,
    path = "/managed/{id}/bindings",
    operation_id = "bindManaged",
    tag = "Managed certificates",
    summary = "Bind to a destination",
    description = "The current version is pushed to the destination by the next sync, and every later version after it. Admin token.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
    ),
    request_body(content((Bind = "application/json")), description = "The destination."),
    responses(
        (status = 201, description = "The managed certificate with its bindings.", content((ManagedView = "application/json"))),
        (status = 400, description = "Invalid body or unknown destination.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such managed certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "Already bound to this destination.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
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
    delete_remote: Option<bool>,
}

#[utoipa::path(
    delete,
    path = "/managed/{id}/bindings/{destination}",
    operation_id = "unbindManaged",
    tag = "Managed certificates",
    summary = "Remove a binding",
    description = "No more versions are pushed there. What certkeeper put at the destination is removed first when `delete_remote` is true, or when it is absent and the destination has `remove_on_unbind`; otherwise it is left alone. Admin token.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
        ("destination" = String, Path, description = "The destination's id or name."),
        ("delete_remote" = Option<bool>, Query, description = "Remove what certkeeper put at the destination first: the ACM certificate; the Secrets Manager secret (recoverable for `recovery_window_days`); the certificate on the load balancer listener (taken off the listener, then deleted from ACM; a listener's default certificate is refused); the Key Vault certificate with all its versions; the Cloudflare custom certificate. Default: the destination's `remove_on_unbind`."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "A malformed or unknown query parameter.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such managed certificate, destination or binding.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The destination refused or failed the delete; the binding is kept.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Destination)]
struct DestinationView {
    id: String,
    name: String,
    #[schema(value_type = schemas::DestinationKind, inline)]
    kind: String,
    /// The configuration (no secrets).
    config: serde_json::Value,
    /// Whether credentials are stored (they are never shown).
    has_credentials: bool,
    /// Whether what certkeeper put there is removed when a binding to it is deleted.
    remove_on_unbind: bool,
    /// When created.
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
        remove_on_unbind: d.remove_on_unbind,
        created_at: d.created_at,
        created_by: d.created_by,
    }
}

/// Body of `POST /destinations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateDestinationRequest)]
struct CreateDestination {
    /// Unique name: letters, digits, `-`, `_`, `.`.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    #[schema(value_type = schemas::CreateDestinationRequestKind, inline)]
    kind: String,
    /// aws_acm: `region`, `endpoint_url`, `tags` (all optional; region and credentials otherwise from the standard AWS chain). aws_secrets_manager: `secret_name`, and optionally `format` (`json`, default, or `pem`), `region`, `endpoint_url`, `kms_key_id`, `tags`, `recovery_window_days` (7-30, default 30). aws_elb: `listener_arn`, and optionally `slot` (`default`, the default, or `sni`), `region` (must be the listener's), `endpoint_url`, `tags`. azure_key_vault: `vault_url`, `certificate_name` (1-127 letters, digits, `-`), `credential` (`client_secret`, the default, `managed_identity` or `workload_identity`), `tenant_id` and `client_id` (required for `client_secret`; a user-assigned identity for `managed_identity`; from the environment when absent for `workload_identity`), and optionally `authority` (default https://login.microsoftonline.com), `federated_token_file`, `tags`, `ca_certificate` (an extra PEM trust anchor for private endpoints), `verify_challenge_resource` (default true). cloudflare: `zone_id`, and optionally `bundle_method` (`ubiquitous`, default, `optimal`, `force`), `geo_restrictions` (`us`, `eu`, `highest_security`), `type` (`legacy_custom`, default, or `sni_custom`), `api_url`, `ca_certificate`.
    config: serde_json::Value,
    /// AWS kinds: `access_key_id`, `secret_access_key`, `session_token`? (optional). azure_key_vault: `client_secret` (only and required for the `client_secret` credential). cloudflare: `api_token` (required). Sealed at rest, never shown again.
    credentials: Option<serde_json::Value>,
    /// Remove what certkeeper put there when a binding to this destination is deleted (default `false`).
    #[serde(default)]
    remove_on_unbind: bool,
}

#[utoipa::path(
    post,
    path = "/destinations",
    operation_id = "createDestination",
    tag = "Destinations",
    summary = "Create a destination",
    description = "An AWS Certificate Manager account and region, an AWS Secrets Manager secret, an AWS load balancer listener, an Azure Key Vault certificate, or a Cloudflare zone. The configuration is checked; credentials are sealed with the master key and never shown again. Admin token.",
    request_body(content((CreateDestination = "application/json")), description = "The destination."),
    responses(
        (status = 201, description = "The destination (without credentials).", content((DestinationView = "application/json"))),
        (status = 400, description = "Invalid body, kind, configuration or credentials.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A destination with this name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
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
                remove_on_unbind: body.remove_on_unbind,
            },
            &auth.actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(destination_view(rec))).into_response())
}

/// A list of destinations.
#[derive(Debug, Serialize, ToSchema)]
struct DestinationList {
    #[schema(value_type = Vec<DestinationView>)]
    items: Vec<DestinationView>,
}

#[utoipa::path(
    get,
    path = "/destinations",
    operation_id = "listDestinations",
    tag = "Destinations",
    summary = "List destinations",
    description = "Every cloud destination, by name; never their credentials. Any token.",
    responses(
        (status = 200, description = "The destinations.", content((DestinationList = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    get,
    path = "/destinations/{id}",
    operation_id = "getDestination",
    tag = "Destinations",
    summary = "Get a destination",
    description = "Never its credentials. Any token.",
    params(
        ("id" = String, Path, description = "The destination's id or name."),
    ),
    responses(
        (status = 200, description = "The destination.", content((DestinationView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such destination.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_destination(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<DestinationView>, Error> {
    let d = state.services.managed.get_destination(&id).await?;
    Ok(Json(destination_view(d)))
}

#[utoipa::path(
    delete,
    path = "/destinations/{id}",
    operation_id = "deleteDestination",
    tag = "Destinations",
    summary = "Delete a destination",
    description = "Only when no managed certificate is bound to it. Admin token.",
    params(
        ("id" = String, Path, description = "The destination's id or name."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such destination.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "Managed certificates are still bound to it.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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

/// The outcome of a connection test.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DestinationTest)]
struct ConnectionTestView {
    #[schema(value_type = schemas::DestinationKind, inline)]
    kind: String,
    /// Whether every check passed.
    ok: bool,
    /// What was checked and passed, in order.
    checks: Vec<String>,
    /// Why the test failed: the missing permission, the wrong region or zone, refused
    /// credentials, or an unreachable endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl From<ConnectionTest> for ConnectionTestView {
    fn from(t: ConnectionTest) -> Self {
        ConnectionTestView {
            kind: t.kind,
            ok: t.error.is_none(),
            checks: t.checks,
            error: t.error,
        }
    }
}

#[utoipa::path(
    post,
    path = "/destinations/{id}/test",
    operation_id = "testDestination",
    tag = "Destinations",
    summary = "Test a destination's connection",
    description = "Checks the credentials, the permissions and the configured place (region, secret, listener, vault, zone) with read-only calls; nothing is changed. A failed test is answered 200 with `ok: false` and the reason. Admin token.",
    params(
        ("id" = String, Path, description = "The destination's id or name."),
    ),
    responses(
        (status = 200, description = "The outcome.", content((ConnectionTestView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such destination.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn test_destination(
    State(state): State<AppState>,
    Admin(_auth): Admin,
    Path(id): Path<String>,
) -> Result<Json<ConnectionTestView>, Error> {
    let t = state.services.managed.test_destination(&id).await?;
    Ok(Json(t.into()))
}
