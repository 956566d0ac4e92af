//! `/api/v1/discovery`: network scans for TLS certificates, their results, the inventory,
//! and saved scans on a cron schedule.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Reader};
use super::extract::{Json, Path, Query};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::services::discovery::{self, ScanSpec};
use crate::store::{InventoryCertificate, InventoryEndpoint, ScanRecord, ScheduleRecord};

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_scans, start_scan))
        .routes(routes!(get_scan))
        .routes(routes!(cancel_scan))
        .routes(routes!(results))
        .routes(routes!(certificates))
        .routes(routes!(endpoints))
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(delete_schedule))
}

/// A list of items.
#[derive(Debug, Serialize, ToSchema)]
struct Items<T> {
    items: Vec<T>,
}

#[utoipa::path(
    post,
    path = "/discovery/scans",
    operation_id = "startScan",
    tag = "Discovery",
    summary = "Start a scan",
    description = "Resolves host names, checks every target against the `discovery.allow` networks, records the scan and runs it in the background; poll the scan for progress. When it finishes, the inventory is updated and the scan's `changes` say what changed at the endpoints it covered. Admin token.",
    request_body(content((ScanSpec = "application/json")), description = "What to scan."),
    responses(
        (status = 202, description = "The scan, running.", content((ScanRecord = "application/json"))),
        (status = 400, description = "Invalid body, no targets, a malformed target, port list or STARTTLS override, a host name that does not resolve, or more endpoints (targets × ports × names) than `discovery.max_endpoints` allows (the problem's detail names the limit).", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token, or a target lies outside the `discovery.allow` networks.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn start_scan(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(spec): Json<ScanSpec>,
) -> Result<Response, Error> {
    let rec = state
        .services
        .discovery
        .start_scan(&spec, &auth.actor)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(rec)).into_response())
}

/// Query of `GET /discovery/scans`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/discovery/scans",
    operation_id = "listScans",
    tag = "Discovery",
    summary = "List scans",
    description = "Scans, newest first. Any token.",
    params(
        ("limit" = Option<i64>, Query, description = "How many. Default: `100`.", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "The scans.", content((inline(Items<ScanRecord>) = "application/json"))),
        (status = 400, description = "A malformed or unknown query parameter, or `limit` outside 1-1000.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_scans(
    State(state): State<AppState>,
    _r: Reader,
    Query(q): Query<ListQuery>,
) -> Result<Json<Items<ScanRecord>>, Error> {
    Ok(Json(Items {
        items: state
            .services
            .discovery
            .list_scans(q.limit.unwrap_or(100))
            .await?,
    }))
}

#[utoipa::path(
    get,
    path = "/discovery/scans/{id}",
    operation_id = "getScan",
    tag = "Discovery",
    summary = "Get a scan",
    description = "Status, progress, and (when finished) the changes. Any token.",
    params(
        ("id" = String, Path, description = "The scan's id."),
    ),
    responses(
        (status = 200, description = "The scan.", content((ScanRecord = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such scan.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_scan(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<ScanRecord>, Error> {
    Ok(Json(state.services.discovery.scan(&id).await?))
}

#[utoipa::path(
    post,
    path = "/discovery/scans/{id}/cancel",
    operation_id = "cancelScan",
    tag = "Discovery",
    summary = "Cancel a running scan",
    description = "Marks the scan `cancelled`; the server running it stops probing within about a second. Results recorded so far stay, and no endpoint is marked gone. Admin token.",
    params(
        ("id" = String, Path, description = "The scan's id."),
    ),
    responses(
        (status = 200, description = "The scan, cancelled.", content((ScanRecord = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such scan.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The scan is not running (it finished, failed or was cancelled).", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn cancel_scan(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<Json<ScanRecord>, Error> {
    Ok(Json(
        state
            .services
            .discovery
            .cancel_scan(&id, &auth.actor)
            .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/discovery/scans/{id}/results",
    operation_id = "getScanResults",
    tag = "Discovery",
    summary = "Get a scan's results",
    description = "What the scan saw at every endpoint that answered (refused and timed-out ones are not kept), in the order they were recorded; recorded in batches while the scan runs. Any token.",
    params(
        ("id" = String, Path, description = "The scan's id."),
    ),
    responses(
        (status = 200, description = "The results.", content((inline(Items<certkeeper_discovery::Observation>) = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such scan.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn results(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<Items<serde_json::Value>>, Error> {
    Ok(Json(Items {
        items: state.services.discovery.scan_results(&id).await?,
    }))
}

#[utoipa::path(
    get,
    path = "/discovery/certificates",
    operation_id = "listDiscoveredCertificates",
    tag = "Discovery",
    summary = "List discovered certificates",
    description = "Every certificate any scan has found, once per fingerprint, soonest expiry first. Any token.",
    responses(
        (status = 200, description = "The certificates.", content((inline(Items<InventoryCertificate>) = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn certificates(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<Items<InventoryCertificate>>, Error> {
    Ok(Json(Items {
        items: state.services.discovery.certificates().await?,
    }))
}

#[utoipa::path(
    get,
    path = "/discovery/endpoints",
    operation_id = "listDiscoveredEndpoints",
    tag = "Discovery",
    summary = "List discovered endpoints",
    description = "Every address, port and server name where a scan found a certificate, with the certificate it served when last seen. Any token.",
    responses(
        (status = 200, description = "The endpoints.", content((inline(Items<InventoryEndpoint>) = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn endpoints(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<Items<InventoryEndpoint>>, Error> {
    Ok(Json(Items {
        items: state.services.discovery.endpoints().await?,
    }))
}

/// Body of `POST /discovery/schedules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ScanScheduleRequest)]
struct NewSchedule {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Cron expression, 5 fields or 6 with seconds, UTC (`0 3 * * *`).
    cron: String,
    #[serde(default = "yes")]
    #[schema(default = true)]
    enabled: bool,
    scan: ScanSpec,
}

fn yes() -> bool {
    true
}

#[utoipa::path(
    post,
    path = "/discovery/schedules",
    operation_id = "createScanSchedule",
    tag = "Discovery",
    summary = "Save a scan with a cron schedule",
    description = "The server runs it at each time the cron expression (UTC) names; with several replicas, one of them runs each occurrence (a lease on the schedule's row). Admin token.",
    request_body(content((NewSchedule = "application/json")), description = "The schedule."),
    responses(
        (status = 201, description = "The schedule.", content((ScheduleRecord = "application/json"))),
        (status = 400, description = "Invalid body, an empty or over-long name, a malformed cron expression, or an invalid scan.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token, or a target lies outside the `discovery.allow` networks.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A schedule with this name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn create_schedule(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<NewSchedule>,
) -> Result<Response, Error> {
    let rec = state
        .services
        .discovery
        .create_schedule(
            discovery::NewSchedule {
                name: body.name,
                cron: body.cron,
                enabled: body.enabled,
                scan: body.scan,
            },
            &auth.actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

#[utoipa::path(
    get,
    path = "/discovery/schedules",
    operation_id = "listScanSchedules",
    tag = "Discovery",
    summary = "List scheduled scans",
    description = "By name. Any token.",
    responses(
        (status = 200, description = "The schedules.", content((inline(Items<ScheduleRecord>) = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_schedules(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<Items<ScheduleRecord>>, Error> {
    Ok(Json(Items {
        items: state.services.discovery.list_schedules().await?,
    }))
}

#[utoipa::path(
    delete,
    path = "/discovery/schedules/{id}",
    operation_id = "deleteScanSchedule",
    tag = "Discovery",
    summary = "Delete a scheduled scan",
    description = "Its past scans stay. Admin token.",
    params(
        ("id" = String, Path, description = "The schedule's id."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such schedule.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn delete_schedule(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    state
        .services
        .discovery
        .delete_schedule(&id, &auth.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
