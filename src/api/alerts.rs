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
use crate::services::alerts::Alerts;
use crate::services::alerts::channels::{self, NewChannel};
use crate::services::alerts::events::EventKind;
use crate::services::alerts::rules::{DEFAULT_THRESHOLDS, normalize_thresholds, rfc3339};
use crate::store::{OutboxRecord, RuleRecord, Selector, StoreError, new_id};

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
    let list = state.pki.store().list_channels().await?;
    Ok(Json(list.iter().map(channels::public_view).collect()))
}

async fn create_channel(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<NewChannel>,
) -> Result<Response, Error> {
    let id = new_id();
    let now = state.pki.now().unix_timestamp();
    let rec = channels::prepare(&state.pki, &id, body, now)?;
    let ev = auth
        .actor
        .event("alert_channel.create", "alert_channel")
        .object(&id)
        .detail(json!({"name": rec.name, "kind": rec.kind}));
    match state.pki.store().insert_channel(&rec, &ev, now).await {
        Err(StoreError::Conflict(_)) => Err(Error::Conflict(format!(
            "an alert channel named {:?} already exists",
            rec.name
        ))),
        other => other.map_err(Error::from),
    }?;
    Ok((StatusCode::CREATED, Json(channels::public_view(&rec))).into_response())
}

async fn get_channel(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let ch = state.pki.store().get_channel(&id).await?;
    Ok(Json(channels::public_view(&ch)))
}

async fn delete_channel(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let ch = state.pki.store().get_channel(&id).await?;
    let ev = auth
        .actor
        .event("alert_channel.delete", "alert_channel")
        .object(&ch.id)
        .detail(json!({"name": ch.name}));
    state
        .pki
        .store()
        .delete_channel(&ch.id, &ev, state.pki.now().unix_timestamp())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_channel(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let ch = state.pki.store().get_channel(&id).await?;
    let outcome = Alerts::new(state.pki.clone()).send_test(&ch).await?;
    let ev = auth
        .actor
        .event("alert_channel.test", "alert_channel")
        .object(&ch.id);
    state
        .pki
        .store()
        .audit(&ev, state.pki.now().unix_timestamp())
        .await?;
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
    let store = state.pki.store();
    let name = body.name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(Error::BadRequest("name must be 1 to 100 characters".into()));
    }
    if body.channels.is_empty() {
        return Err(Error::BadRequest(
            "channels must name at least one channel".into(),
        ));
    }
    let mut channel_ids = Vec::new();
    for c in &body.channels {
        match store.get_channel(c).await {
            Ok(ch) => channel_ids.push(ch.id),
            Err(StoreError::NotFound(_)) => {
                return Err(Error::BadRequest(format!("no alert channel {c:?}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    channel_ids.sort();
    channel_ids.dedup();
    let thresholds = match body.thresholds {
        None => DEFAULT_THRESHOLDS.to_vec(),
        Some(t) => {
            if t.len() > 10 || t.iter().any(|d| *d == 0 || *d > 3650) {
                return Err(Error::BadRequest(
                    "thresholds are at most 10 numbers of days between 1 and 3650".into(),
                ));
            }
            normalize_thresholds(&t)
        }
    };
    for e in &body.events {
        if EventKind::subscribable(e).is_none() {
            let known: Vec<&str> = crate::services::alerts::events::SUBSCRIBABLE
                .iter()
                .map(|k| k.short())
                .collect();
            return Err(Error::BadRequest(format!(
                "unknown event {e:?}; known: {}",
                known.join(", ")
            )));
        }
    }
    if thresholds.is_empty() && body.events.is_empty() {
        return Err(Error::BadRequest(
            "a rule needs thresholds or events".into(),
        ));
    }
    let mut selector = body.selector;
    if let Some(ca) = &selector.ca_id {
        match store.get_ca(ca).await {
            Ok(c) => selector.ca_id = Some(c.id),
            Err(StoreError::NotFound(_)) => {
                return Err(Error::BadRequest(format!("no CA {ca:?}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(san) = &selector.san
        && (san.trim().is_empty() || san.len() > 253)
    {
        return Err(Error::BadRequest(
            "selector.san must be 1 to 253 characters".into(),
        ));
    }
    if selector.tags.iter().any(|t| t.is_empty() || t.len() > 100) {
        return Err(Error::BadRequest("tags must be 1 to 100 characters".into()));
    }
    let now = state.pki.now().unix_timestamp();
    let rec = RuleRecord {
        id: new_id(),
        name,
        selector,
        thresholds,
        channels: channel_ids,
        events: body.events,
        daily_reminder: body.daily_reminder,
        digest: body.digest,
        enabled: body.enabled,
        created_at: now,
    };
    let ev = auth
        .actor
        .event("alert_rule.create", "alert_rule")
        .object(&rec.id)
        .detail(json!({"name": rec.name}));
    match store.insert_rule(&rec, &ev, now).await {
        Err(StoreError::Conflict(_)) => Err(Error::Conflict(format!(
            "an alert rule named {:?} already exists",
            rec.name
        ))),
        other => other.map_err(Error::from),
    }?;
    state.pki.invalidate_alert_rules();
    Ok((StatusCode::CREATED, Json(rule_view(&rec))).into_response())
}

async fn list_rules(State(state): State<AppState>, _: Reader) -> Result<Json<Vec<Value>>, Error> {
    let rules = state.pki.store().list_rules().await?;
    Ok(Json(rules.iter().map(rule_view).collect()))
}

async fn get_rule(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(rule_view(&state.pki.store().get_rule(&id).await?)))
}

async fn delete_rule(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let r = state.pki.store().get_rule(&id).await?;
    let ev = auth
        .actor
        .event("alert_rule.delete", "alert_rule")
        .object(&r.id)
        .detail(json!({"name": r.name}));
    state
        .pki
        .store()
        .delete_rule(&r.id, &ev, state.pki.now().unix_timestamp())
        .await?;
    state.pki.invalidate_alert_rules();
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
    if let Some(s) = &q.status
        && !matches!(s.as_str(), "pending" | "delivered" | "dead")
    {
        return Err(Error::BadRequest(
            "status must be pending, delivered or dead".into(),
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
    }
    let rows = state
        .pki
        .store()
        .list_outbox(q.status.as_deref(), limit)
        .await?;
    Ok(Json(rows.iter().map(outbox_view).collect()))
}

async fn sweep(State(state): State<AppState>, _: Admin) -> Result<Json<Value>, Error> {
    let alerts = Alerts::new(state.pki.clone());
    let sweep = alerts.sweep().await?;
    let delivery = alerts.deliver_due().await?;
    Ok(Json(json!({"sweep": sweep, "delivery": delivery})))
}

/// Body of `PUT /alerts/tags/{fingerprint}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tags {
    tags: Vec<String>,
}

fn check_fingerprint(fp: &str) -> Result<String, Error> {
    let fp = fp.to_ascii_lowercase();
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::BadRequest(
            "the fingerprint must be the certificate's SHA-256 in 64 hex digits".into(),
        ));
    }
    Ok(fp)
}

async fn get_tags(
    State(state): State<AppState>,
    _: Reader,
    Path(fingerprint): Path<String>,
) -> Result<Json<Value>, Error> {
    let fp = check_fingerprint(&fingerprint)?;
    let tags = state.pki.store().tags_of(&fp).await?;
    Ok(Json(json!({"fingerprint": fp, "tags": tags})))
}

/// Replace a certificate's tags (the `tags` selector of alert rules matches them).
async fn set_tags(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(fingerprint): Path<String>,
    Json(body): Json<Tags>,
) -> Result<Json<Value>, Error> {
    let fp = check_fingerprint(&fingerprint)?;
    if body.tags.len() > 32 {
        return Err(Error::BadRequest("at most 32 tags".into()));
    }
    let mut tags: Vec<String> = Vec::new();
    for t in &body.tags {
        let ok = !t.is_empty()
            && t.len() <= 64
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
        if !ok {
            return Err(Error::BadRequest(format!(
                "tag {t:?} must be 1 to 64 letters, digits or - _ . : /"
            )));
        }
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    tags.sort();
    let ev = auth
        .actor
        .event("certificate.tag", "certificate")
        .object(&fp)
        .detail(json!({"tags": tags}));
    state
        .pki
        .store()
        .set_tags(&fp, &tags, &ev, state.pki.now().unix_timestamp())
        .await?;
    Ok(Json(json!({"fingerprint": fp, "tags": tags})))
}
