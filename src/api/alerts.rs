//! `/api/v1/alerts`: channels (secrets write-only), rules, the outbox, "send test", and an
//! on-demand sweep.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Admin, Reader};
use super::extract::{Json, Path, Query};
use crate::error::Error;
use crate::server::AppState;
use crate::services::alerts::NewRule;
use crate::services::alerts::channels::{self, NewChannel};
use crate::services::alerts::rules::rfc3339;
use crate::store::{OutboxRecord, RuleRecord, Selector};

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts/channels", get(list_channels).post(create_channel))
        .route(
            "/alerts/channels/{id}",
            get(get_channel).delete(delete_channel),
        )
        .route("/alerts/channels/{id}/test", post(test_channel))
        .route("/alerts/rules", get(list_rules).post(create_rule))
        .route("/alerts/rules/{id}", get(get_rule).delete(delete_rule))
        .route("/alerts/outbox", get(list_outbox))
        .route("/alerts/sweep", post(sweep))
        .route("/alerts/tags/{fingerprint}", get(get_tags).put(set_tags))
}

async fn list_channels(
    State(state): State<AppState>,
    _: Reader,
) -> Result<Json<Vec<Value>>, Error> {
    let list = state.services.alerts.list_channels().await?;
    Ok(Json(list.iter().map(channels::public_view).collect()))
}

async fn create_channel(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<NewChannel>,
) -> Result<Response, Error> {
    let rec = state
        .services
        .alerts
        .create_channel(body, &auth.actor)
        .await?;
    Ok((StatusCode::CREATED, Json(channels::public_view(&rec))).into_response())
}

async fn get_channel(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let ch = state.services.alerts.channel(&id).await?;
    Ok(Json(channels::public_view(&ch)))
}

async fn delete_channel(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    state
        .services
        .alerts
        .delete_channel(&id, &auth.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_channel(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let outcome = state.services.alerts.test_channel(&id, &auth.actor).await?;
    Ok(Json(serde_json::to_value(outcome).unwrap_or(Value::Null)))
}

/// Body of `POST /alerts/rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRule {
    name: String,
    channels: Vec<String>,
    #[serde(default)]
    selector: Selector,
    thresholds: Option<Vec<u32>>,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    daily_reminder: bool,
    #[serde(default)]
    digest: bool,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

fn rule_view(r: &RuleRecord) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    v["created_at"] = json!(rfc3339(r.created_at));
    v
}

async fn create_rule(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateRule>,
) -> Result<Response, Error> {
    let rec = state
        .services
        .alerts
        .create_rule(
            NewRule {
                name: body.name,
                channels: body.channels,
                selector: body.selector,
                thresholds: body.thresholds,
                events: body.events,
                daily_reminder: body.daily_reminder,
                digest: body.digest,
                enabled: body.enabled,
            },
            &auth.actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rule_view(&rec))).into_response())
}

async fn list_rules(State(state): State<AppState>, _: Reader) -> Result<Json<Vec<Value>>, Error> {
    let rules = state.services.alerts.list_rules().await?;
    Ok(Json(rules.iter().map(rule_view).collect()))
}

async fn get_rule(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(rule_view(&state.services.alerts.rule(&id).await?)))
}

async fn delete_rule(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    state.services.alerts.delete_rule(&id, &auth.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /alerts/outbox`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    status: Option<String>,
    limit: Option<i64>,
}

fn outbox_view(o: &OutboxRecord) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    v["created_at"] = json!(rfc3339(o.created_at));
    v["next_attempt_at"] = if o.status == "pending" {
        json!(rfc3339(o.next_attempt_at))
    } else {
        Value::Null
    };
    v["delivered_at"] = json!(o.delivered_at.map(rfc3339));
    v
}

async fn list_outbox(
    State(state): State<AppState>,
    _: Reader,
    Query(q): Query<OutboxQuery>,
) -> Result<Json<Vec<Value>>, Error> {
    let rows = state
        .services
        .alerts
        .outbox(q.status.as_deref(), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(rows.iter().map(outbox_view).collect()))
}

async fn sweep(State(state): State<AppState>, _: Admin) -> Result<Json<Value>, Error> {
    let (sweep, delivery) = state.services.alerts.sweep_now().await?;
    Ok(Json(json!({"sweep": sweep, "delivery": delivery})))
}

/// Body of `PUT /alerts/tags/{fingerprint}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tags {
    tags: Vec<String>,
}

async fn get_tags(
    State(state): State<AppState>,
    _: Reader,
    Path(fingerprint): Path<String>,
) -> Result<Json<Value>, Error> {
    let (fp, tags) = state.services.alerts.tags(&fingerprint).await?;
    Ok(Json(json!({"fingerprint": fp, "tags": tags})))
}

/// Replace a certificate's tags (the `tags` selector of alert rules matches them).
async fn set_tags(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(fingerprint): Path<String>,
    Json(body): Json<Tags>,
) -> Result<Json<Value>, Error> {
    let (fp, tags) = state
        .services
        .alerts
        .set_tags(&fingerprint, &body.tags, &auth.actor)
        .await?;
    Ok(Json(json!({"fingerprint": fp, "tags": tags})))
}
