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
use crate::services::discovery::{ScanSpec, create_scan, execute, next_run, parse_cron, plan_for};
use crate::store::{
    InventoryCertificate, InventoryEndpoint, ScanRecord, ScheduleRecord, StoreError, new_id,
};

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
    let plan = plan_for(&state.pki, &spec).await?;
    let rec = create_scan(&state.pki, &spec, &plan, &auth.actor, None).await?;
    tokio::spawn(execute(state.pki.clone(), rec.id.clone(), plan));
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
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
    }
    Ok(Json(Items {
        items: state.pki.store().list_scans(limit).await?,
    }))
}

async fn get_scan(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<ScanRecord>, Error> {
    Ok(Json(state.pki.store().scan(&id).await?))
}

async fn results(
    State(state): State<AppState>,
    _r: Reader,
    Path(id): Path<String>,
) -> Result<Json<Items<serde_json::Value>>, Error> {
    let store = state.pki.store();
    store.scan(&id).await?;
    Ok(Json(Items {
        items: store.scan_results(&id).await?,
    }))
}

async fn certificates(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<Items<InventoryCertificate>>, Error> {
    Ok(Json(Items {
        items: state.pki.store().inventory_certificates().await?,
    }))
}

async fn endpoints(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<Items<InventoryEndpoint>>, Error> {
    Ok(Json(Items {
        items: state.pki.store().inventory_endpoints().await?,
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
    if body.name.trim().is_empty() || body.name.len() > 100 {
        return Err(Error::BadRequest("name must be 1 to 100 characters".into()));
    }
    let cron = parse_cron(&body.cron)?;
    // Checked now so a schedule that could never run is refused at once.
    plan_for(&state.pki, &body.scan).await?;
    let now = state.pki.now().unix_timestamp();
    let rec = ScheduleRecord {
        id: new_id(),
        name: body.name,
        spec: serde_json::to_value(&body.scan).map_err(|e| Error::Internal(e.to_string()))?,
        cron: body.cron,
        enabled: body.enabled,
        next_run: next_run(&cron, now)?,
        last_scan_id: None,
        created_at: now,
        created_by: auth.actor.name.clone(),
    };
    let ev = auth
        .actor
        .event("discovery_schedule.create", "discovery_schedule")
        .object(&rec.id)
        .detail(serde_json::json!({"name": rec.name, "cron": rec.cron, "spec": rec.spec}));
    state
        .pki
        .store()
        .insert_schedule(&rec, &ev)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                Error::Conflict("a schedule with this name already exists".into())
            }
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

async fn list_schedules(
    State(state): State<AppState>,
    _r: Reader,
) -> Result<Json<Items<ScheduleRecord>>, Error> {
    Ok(Json(Items {
        items: state.pki.store().list_schedules().await?,
    }))
}

async fn delete_schedule(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let ev = auth
        .actor
        .event("discovery_schedule.delete", "discovery_schedule")
        .object(&id);
    state
        .pki
        .store()
        .delete_schedule(&id, &ev, state.pki.now().unix_timestamp())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
