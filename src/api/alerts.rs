//! `/api/v1/alerts`: channels (secrets write-only), rules, the outbox, "send test", and an
//! on-demand sweep.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Reader};
use super::extract::{Json, Path, Query};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::services::alerts::Alerts;
use crate::services::alerts::channels::{self, NewChannel};
use crate::services::alerts::events::EventKind;
use crate::services::alerts::rules::{DEFAULT_THRESHOLDS, normalize_thresholds, rfc3339};
use crate::store::{OutboxRecord, RuleRecord, Selector, StoreError, new_id};

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(get_channel, delete_channel))
        .routes(routes!(test_channel))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, delete_rule))
        .routes(routes!(list_outbox))
        .routes(routes!(sweep))
        .routes(routes!(get_tags, set_tags))
}

#[utoipa::path(
    get,
    path = "/alerts/channels",
    operation_id = "listAlertChannels",
    tag = "Alerts",
    summary = "List alert channels",
    description = "Every channel, oldest first; never their secrets (URLs, HMAC keys, header values, SMTP passwords).",
    responses(
        (status = 200, description = "The channels.", content((Vec<schemas::AlertChannel> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_channels(
    State(state): State<AppState>,
    _: Reader,
) -> Result<Json<Vec<Value>>, Error> {
    let list = state.pki.store().list_channels().await?;
    Ok(Json(list.iter().map(channels::public_view).collect()))
}

#[utoipa::path(
    post,
    path = "/alerts/channels",
    operation_id = "createAlertChannel",
    tag = "Alerts",
    summary = "Create an alert channel",
    description = "A generic webhook (CloudEvents 1.0, optional HMAC-SHA256 signature in `X-Certkeeper-Signature: t=<unix>,v1=<hex of HMAC(key, \"<t>.<body>\")>` and custom headers), a Slack, Teams (Workflows) or Discord webhook, or email over SMTP. Secrets are sealed at rest and never shown again. Admin token.",
    request_body(content((schemas::CreateAlertChannelRequest = "application/json")), description = "The channel."),
    responses(
        (status = 201, description = "The channel, without its secrets.", content((schemas::AlertChannel = "application/json"))),
        (status = 400, description = "Invalid body: unknown kind, a missing or non-HTTP URL, fields of another kind, bad header names or values, or incomplete SMTP settings.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A channel with this name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    get,
    path = "/alerts/channels/{id}",
    operation_id = "getAlertChannel",
    tag = "Alerts",
    summary = "Get an alert channel",
    params(
        ("id" = String, Path, description = "The channel's id or name."),
    ),
    responses(
        (status = 200, description = "The channel, without its secrets.", content((schemas::AlertChannel = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such channel.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_channel(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let ch = state.pki.store().get_channel(&id).await?;
    Ok(Json(channels::public_view(&ch)))
}

#[utoipa::path(
    delete,
    path = "/alerts/channels/{id}",
    operation_id = "deleteAlertChannel",
    tag = "Alerts",
    summary = "Delete an alert channel",
    description = "Refused while a rule names the channel. Its outbox rows go with it. Admin token.",
    params(
        ("id" = String, Path, description = "The channel's id or name."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such channel.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A rule still uses the channel.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    post,
    path = "/alerts/channels/{id}/test",
    operation_id = "testAlertChannel",
    tag = "Alerts",
    summary = "Send a test message",
    description = "Sends a test event to the channel at once (not through the outbox) and reports what the receiver answered. Admin token.",
    params(
        ("id" = String, Path, description = "The channel's id or name."),
    ),
    responses(
        (status = 200, description = "The outcome.", content((schemas::AlertSendOutcome = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such channel.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    post,
    path = "/alerts/rules",
    operation_id = "createAlertRule",
    tag = "Alerts",
    summary = "Create an alert rule",
    description = "Which certificates (selector), thresholds in days before expiry (default 30, 14, 7, 1; each fires once per certificate, a renewed certificate starts fresh), optional daily reminder below the last threshold, digest mode, lifecycle events, and the channels to notify. Admin token.",
    request_body(content((schemas::CreateAlertRuleRequest = "application/json")), description = "The rule."),
    responses(
        (status = 201, description = "The rule.", content((schemas::AlertRule = "application/json"))),
        (status = 400, description = "Invalid body, unknown channels, CAs or events, or thresholds out of range.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A rule with this name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    get,
    path = "/alerts/rules",
    operation_id = "listAlertRules",
    tag = "Alerts",
    summary = "List alert rules",
    responses(
        (status = 200, description = "The rules, oldest first.", content((Vec<schemas::AlertRule> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_rules(State(state): State<AppState>, _: Reader) -> Result<Json<Vec<Value>>, Error> {
    let rules = state.pki.store().list_rules().await?;
    Ok(Json(rules.iter().map(rule_view).collect()))
}

#[utoipa::path(
    get,
    path = "/alerts/rules/{id}",
    operation_id = "getAlertRule",
    tag = "Alerts",
    summary = "Get an alert rule",
    params(
        ("id" = String, Path, description = "The rule's id or name."),
    ),
    responses(
        (status = 200, description = "The rule.", content((schemas::AlertRule = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such rule.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_rule(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(rule_view(&state.pki.store().get_rule(&id).await?)))
}

#[utoipa::path(
    delete,
    path = "/alerts/rules/{id}",
    operation_id = "deleteAlertRule",
    tag = "Alerts",
    summary = "Delete an alert rule",
    description = "With its record of thresholds already fired. Admin token.",
    params(
        ("id" = String, Path, description = "The rule's id or name."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such rule.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    get,
    path = "/alerts/outbox",
    operation_id = "listAlertOutbox",
    tag = "Alerts",
    summary = "List notifications",
    description = "The durable outbox, newest first: pending (with the next attempt), delivered, or dead (failed `alerts.max_attempts` times).",
    params(
        ("status" = Option<String>, Query, description = "Only rows in this state. One of: `pending`, `delivered`, `dead`."),
        ("limit" = Option<i64>, Query, description = "Page size (default 100).", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "The rows.", content((Vec<schemas::AlertOutboxEntry> = "application/json"))),
        (status = 400, description = "Unknown status or limit out of range.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    post,
    path = "/alerts/sweep",
    operation_id = "sweepAlerts",
    tag = "Alerts",
    summary = "Evaluate alert rules now",
    description = "Runs the expiry sweep (as the scheduled job does) and then one pass over the outbox. Admin token.",
    responses(
        (status = 200, description = "What was done.", content((schemas::AlertSweepResult = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn sweep(State(state): State<AppState>, _: Admin) -> Result<Json<Value>, Error> {
    let alerts = Alerts::new(state.pki.clone());
    let sweep = alerts.sweep().await?;
    let delivery = alerts.deliver_due().await?;
    Ok(Json(json!({"sweep": sweep, "delivery": delivery})))
}

/// Body of `PUT /alerts/tags/{fingerprint}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SetCertificateTagsRequest)]
struct Tags {
    /// At most 32 tags, each 1 to 64 characters.
    #[schema(max_items = 32)]
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

#[utoipa::path(
    get,
    path = "/alerts/tags/{fingerprint}",
    operation_id = "getCertificateTags",
    tag = "Alerts",
    summary = "A certificate's tags",
    description = "The tags that alert rules with a `tags` selector match. Any valid token.",
    params(
        ("fingerprint" = String, Path, description = "The certificate's SHA-256 fingerprint, 64 hex digits (ours or discovered)."),
    ),
    responses(
        (status = 200, description = "The tags.", content((schemas::CertificateTags = "application/json"))),
        (status = 400, description = "The fingerprint is not 64 hex digits.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
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
#[utoipa::path(
    put,
    path = "/alerts/tags/{fingerprint}",
    operation_id = "setCertificateTags",
    tag = "Alerts",
    summary = "Replace a certificate's tags",
    description = "Replaces the tags of a certificate, ours or one discovery found; alert rules with a `tags` selector match them. Admin token.",
    params(
        ("fingerprint" = String, Path, description = "The certificate's SHA-256 fingerprint, 64 hex digits (ours or discovered)."),
    ),
    request_body(content((Tags = "application/json")), description = "The new tags."),
    responses(
        (status = 200, description = "The tags now.", content((schemas::CertificateTags = "application/json"))),
        (status = 400, description = "The fingerprint is not 64 hex digits, more than 32 tags, or a tag outside 1 to 64 letters, digits or - _ . : /.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
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
