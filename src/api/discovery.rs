//! `/api/v1/discovery`: network scans for TLS certificates, their results, the inventory,
//! and saved scans on a cron schedule.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};

use super::auth::{Admin, Reader};
use super::extract::{Json, Path, Query};
use crate::error::Error;
use crate::server::AppState;
use crate::services::discovery::{self, ScanSpec};
use crate::store::{InventoryCertificate, InventoryEndpoint, ScanRecord, ScheduleRecord};

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/discovery/scans", get(list_scans).post(start_scan))
        .route("/discovery/scans/{id}", get(get_scan))
        .route("/discovery/scans/{id}/results", get(results))
        .route("/discovery/certificates", get(certificates))
        .route("/discovery/endpoints", get(endpoints))
        .route(
            "/discovery/schedules",
            get(list_schedules).post(create_schedule),
        )
        .route("/discovery/schedules/{id}", delete(delete_schedule))
}

/// A list of items.
#[derive(Debug, Serialize)]
struct Items<T> {
    items: Vec<T>,
}

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

async fn get_scan(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<ScanRecord>, Error> {
    Ok(Json(state.services.discovery.scan(&id).await?))
}

async fn results(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<Items<serde_json::Value>>, Error> {
    Ok(Json(Items {
        items: state.services.discovery.scan_results(&id).await?,
    }))
}

async fn certificates(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<Items<InventoryCertificate>>, Error> {
    Ok(Json(Items {
        items: state.services.discovery.certificates().await?,
    }))
}

async fn endpoints(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<Items<InventoryEndpoint>>, Error> {
    Ok(Json(Items {
        items: state.services.discovery.endpoints().await?,
    }))
}

/// Body of `POST /discovery/schedules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSchedule {
    name: String,
    cron: String,
    #[serde(default = "yes")]
    enabled: bool,
    scan: ScanSpec,
}

fn yes() -> bool {
    true
}

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

async fn list_schedules(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<Items<ScheduleRecord>>, Error> {
    Ok(Json(Items {
        items: state.services.discovery.list_schedules().await?,
    }))
}

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
