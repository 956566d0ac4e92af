//! `/api/v1/agent` (host agents, with an `agent` token: fetch the current version of a
//! managed certificate the token was given, with its key, and report its deployment) and
//! `/api/v1/managed/{id}/deployments` (where every version lives, and what is stale).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Agent, Reader};
use super::extract::{Json, Path, Query};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::services::managed::{DeploymentReport, Deployments, Place};
use crate::store::AgentReport;

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(fetch))
        .routes(routes!(report))
        .routes(routes!(deployments))
}

fn pem_of(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec())).replace("\r\n", "\n")
}

/// The current version of a managed certificate, for the agent deploying it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AgentCertificate)]
struct AgentCertificateView {
    /// The managed certificate's id.
    id: String,
    /// Its name.
    name: String,
    /// The version (1, 2, ...).
    version: i64,
    /// SHA-256 fingerprint of the certificate (hex).
    fingerprint: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    /// The certificate, PEM.
    certificate: String,
    /// The issuing CAs up to (not including) the root, PEM; empty when the issuer is the
    /// root.
    chain: String,
    /// The certificate followed by the chain, PEM.
    full_chain: String,
    /// The private key, PKCS#8 PEM.
    private_key: String,
    /// What the host named by `?host=` last reported (null without `host`, or before its
    /// first report).
    #[schema(required = true)]
    reported: Option<ReportView>,
}

/// Query of `GET /agent/certificates/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct FetchQuery {
    /// The agent's host: its last report comes with the answer.
    host: Option<String>,
}

#[utoipa::path(
    get,
    path = "/agent/certificates/{id}",
    operation_id = "agentFetchCertificate",
    tag = "Agents",
    summary = "Fetch a managed certificate's current version (agent)",
    description = "The current version of a managed certificate with its chain and private key. Only an `agent` token given this managed certificate; every other token is refused.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
        FetchQuery,
    ),
    responses(
        (status = 200, description = "The current version, with its key.", content((AgentCertificateView = "application/json"))),
        (status = 400, description = "An unknown query parameter.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "Not an agent token, or the token was not given this managed certificate (also when it does not exist).", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The managed certificate is revoked.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn fetch(
    State(state): State<AppState>,
    Agent(auth): Agent,
    Path(id): Path<String>,
    Query(q): Query<FetchQuery>,
) -> Result<Json<AgentCertificateView>, Error> {
    let (rec, v, reported) = state
        .services
        .managed
        .agent_fetch(&auth, &id, q.host.as_deref())
        .await?;
    let info = certkeeper_ca::inspect_certificate(&v.certificate_der)
        .map_err(|e| Error::Internal(format!("stored certificate unreadable: {e}")))?;
    let certificate = pem_of("CERTIFICATE", &v.certificate_der);
    let chain: String = v
        .chain_der
        .iter()
        .map(|c| pem_of("CERTIFICATE", c))
        .collect();
    Ok(Json(AgentCertificateView {
        id: rec.id,
        name: rec.name,
        version: v.version,
        fingerprint: info.fingerprint_sha256,
        not_before: info.not_before,
        not_after: info.not_after,
        full_chain: format!("{certificate}{chain}"),
        certificate,
        chain,
        private_key: pem_of("PRIVATE KEY", &v.key_pkcs8_der),
        reported: reported.map(report_view),
    }))
}

/// Body of `POST /agent/certificates/{id}/deployments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeploymentReportRequest)]
struct ReportBody {
    /// The host the agent runs on: printable ASCII without spaces.
    #[schema(min_length = 1, max_length = 253)]
    host: String,
    /// The version written to the host's files.
    #[schema(minimum = 1)]
    version: i64,
    /// Whether the reload command succeeded.
    reload_ok: bool,
    /// The reload command's output when it failed (the server keeps the first 4096 characters).
    output: Option<String>,
}

/// A host's deployment as recorded.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AgentDeployment)]
struct ReportView {
    /// The managed certificate's id.
    managed_id: String,
    /// The host.
    host: String,
    /// The version it holds.
    version: i64,
    /// Whether its last reload succeeded.
    reload_ok: bool,
    /// The failed reload's output (bounded).
    #[schema(required = true)]
    output: Option<String>,
    /// When the host first reported this version.
    #[serde(with = "time::serde::rfc3339")]
    since: OffsetDateTime,
    /// When it last reported.
    #[serde(with = "time::serde::rfc3339")]
    reported_at: OffsetDateTime,
}

#[utoipa::path(
    post,
    path = "/agent/certificates/{id}/deployments",
    operation_id = "agentReportDeployment",
    tag = "Agents",
    summary = "Report a deployment (agent)",
    description = "Records which version the agent wrote on its host and whether the reload succeeded. A failed reload raises a `deployment.failed` alert event; an old version makes the host stale (`deployment.stale`). Only an `agent` token given this managed certificate.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
    ),
    request_body(content((ReportBody = "application/json")), description = "What was deployed."),
    responses(
        (status = 200, description = "The deployment as recorded.", content((ReportView = "application/json"))),
        (status = 400, description = "Invalid body, a bad host name, or a version that does not exist.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The managed certificate already has reports from 1000 hosts (a new host is refused).", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "Not an agent token, or the token was not given this managed certificate (also when it does not exist).", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn report(
    State(state): State<AppState>,
    Agent(auth): Agent,
    Path(id): Path<String>,
    Json(body): Json<ReportBody>,
) -> Result<Json<ReportView>, Error> {
    let r = state
        .services
        .managed
        .agent_report(
            &auth,
            &id,
            DeploymentReport {
                host: body.host,
                version: body.version,
                reload_ok: body.reload_ok,
                output: body.output,
            },
        )
        .await?;
    Ok(Json(report_view(r)))
}

fn report_view(r: AgentReport) -> ReportView {
    ReportView {
        managed_id: r.managed_id,
        host: r.host,
        version: r.version,
        reload_ok: r.reload_ok,
        output: r.output,
        since: crate::store::from_ts(r.since),
        reported_at: crate::store::from_ts(r.reported_at),
    }
}

/// One place holding a version.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeploymentPlace)]
struct PlaceView {
    /// `destination` (sync state), `host` (agent reports) or `endpoint` (discovery).
    #[schema(value_type = schemas::DeploymentPlaceKind, inline)]
    kind: &'static str,
    /// The destination's name, the host, or the endpoint (`address:port`, with `(sni)`).
    name: String,
    /// The version it holds or serves.
    version: i64,
    /// Since when (a destination: its last change).
    #[serde(with = "time::serde::rfc3339")]
    since: OffsetDateTime,
    /// When last known: the agent's last report, discovery's last sight, the binding's last change.
    #[serde(with = "time::serde::rfc3339")]
    last_seen: OffsetDateTime,
    /// A host's last reload, or a destination's last push, succeeded.
    ok: bool,
    /// A failed reload's output, or the last push error.
    #[schema(required = true)]
    detail: Option<String>,
    /// Whether it still serves an old version after a newer one was issued.
    stale: bool,
    /// Since when it has been stale.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    stale_since: Option<OffsetDateTime>,
}

fn place_view(p: &Place) -> PlaceView {
    PlaceView {
        kind: p.kind.as_str(),
        name: p.name.clone(),
        version: p.version,
        since: p.since,
        last_seen: p.last_seen,
        ok: p.ok,
        detail: p.detail.clone(),
        stale: p.stale_since.is_some(),
        stale_since: p.stale_since,
    }
}

/// One version and the places holding it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeployedVersion)]
struct VersionPlaces {
    /// 1, 2, ...
    version: i64,
    /// When issued.
    #[serde(with = "time::serde::rfc3339")]
    issued_at: OffsetDateTime,
    /// Whether it is the current version.
    current: bool,
    /// Every place holding it.
    places: Vec<PlaceView>,
}

/// Where every version of a managed certificate lives.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ManagedDeployments)]
struct DeploymentsView {
    /// The managed certificate's id.
    id: String,
    /// Its name.
    name: String,
    /// The current version.
    current_version: i64,
    /// Every version, newest first, with its places.
    versions: Vec<VersionPlaces>,
    /// The places still serving an old version after a newer one was issued.
    stale: Vec<PlaceView>,
}

fn deployments_view(d: Deployments) -> DeploymentsView {
    let current = d.record.current_version;
    let versions = d
        .versions
        .iter()
        .map(|(v, issued_at)| VersionPlaces {
            version: *v,
            issued_at: *issued_at,
            current: *v == current,
            places: d
                .places
                .iter()
                .filter(|p| p.version == *v)
                .map(place_view)
                .collect(),
        })
        .collect();
    DeploymentsView {
        id: d.record.id,
        name: d.record.name,
        current_version: current,
        versions,
        stale: d
            .places
            .iter()
            .filter(|p| p.stale_since.is_some())
            .map(place_view)
            .collect(),
    }
}

#[utoipa::path(
    get,
    path = "/managed/{id}/deployments",
    operation_id = "getManagedDeployments",
    tag = "Managed certificates",
    summary = "Where a managed certificate is deployed",
    description = "Every version with the places holding it: destinations (sync state), hosts (agents' reports) and endpoints (discovery scans that saw its fingerprint), and the places still serving an old version after a newer one was issued (`stale`), with the version and since when. Any token but an agent token.",
    params(
        ("id" = String, Path, description = "The managed certificate's id or name."),
    ),
    responses(
        (status = 200, description = "Where each version lives.", content((DeploymentsView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "An agent token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such managed certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn deployments(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<DeploymentsView>, Error> {
    let m = state.services.managed.get(&id).await?;
    let d = state.services.managed.deployments(m).await?;
    Ok(Json(deployments_view(d)))
}
