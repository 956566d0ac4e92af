//! `/api/v1/alerts`: channels (secrets write-only), rules, the outbox, "send test", and an
//! on-demand sweep.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Reader};
use super::extract::{Json, Path, Query};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::services::alerts::channels::{self, NewChannel};
use crate::services::alerts::events::SUBSCRIBABLE;
use crate::services::alerts::rules::rfc3339;
use crate::services::alerts::{NewRule, Outcome, SweepReport};
use crate::store::{ChannelRecord, OutboxRecord, RuleRecord, Selector};

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(get_channel, delete_channel))
        .routes(routes!(test_channel))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, delete_rule))
        .routes(routes!(list_outbox))
        .routes(routes!(retry_outbox_row))
        .routes(routes!(retry_dead_outbox))
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
        (status = 200, description = "The channels.", content((Vec<ChannelView> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_channels(
    State(state): State<AppState>,
    _: Reader,
) -> Result<Json<Vec<ChannelView>>, Error> {
    let list = state.services.alerts.list_channels().await?;
    Ok(Json(list.iter().map(ChannelView::from).collect()))
}

/// A channel as the API shows it: never its secrets.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertChannel)]
struct ChannelView {
    id: String,
    name: String,
    #[schema(value_type = channels::KindName, inline)]
    kind: String,
    /// Settings that are not secret: the URL's host, whether requests are signed, custom
    /// header names, SMTP settings.
    #[schema(value_type = Object)]
    config: Value,
    /// When it was created.
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&ChannelRecord> for ChannelView {
    fn from(ch: &ChannelRecord) -> ChannelView {
        ChannelView {
            id: ch.id.clone(),
            name: ch.name.clone(),
            kind: ch.kind.clone(),
            config: ch.config.clone(),
            created_at: rfc3339(ch.created_at),
        }
    }
}

#[utoipa::path(
    post,
    path = "/alerts/channels",
    operation_id = "createAlertChannel",
    tag = "Alerts",
    summary = "Create an alert channel",
    description = "A generic webhook (CloudEvents 1.0, optional HMAC-SHA256 signature in `X-Certkeeper-Signature: t=<unix>,v1=<hex of HMAC(key, \"<t>.<body>\")>` and custom headers), a Slack, Teams (Workflows) or Discord webhook, or email over SMTP. Secrets are sealed at rest and never shown again. Admin token.",
    request_body(content((NewChannel = "application/json")), description = "The channel."),
    responses(
        (status = 201, description = "The channel, without its secrets.", content((ChannelView = "application/json"))),
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
    let rec = state
        .services
        .alerts
        .create_channel(body, &auth.actor)
        .await?;
    Ok((StatusCode::CREATED, Json(ChannelView::from(&rec))).into_response())
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
        (status = 200, description = "The channel, without its secrets.", content((ChannelView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such channel.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_channel(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<ChannelView>, Error> {
    let ch = state.services.alerts.channel(&id).await?;
    Ok(Json(ChannelView::from(&ch)))
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
    state
        .services
        .alerts
        .delete_channel(&id, &auth.actor)
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
        (status = 200, description = "The outcome.", content((Outcome = "application/json"))),
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
    let outcome = state.services.alerts.test_channel(&id, &auth.actor).await?;
    // Through a JSON value, as before: its keys are written in order.
    Ok(Json(serde_json::to_value(outcome).unwrap_or(Value::Null)))
}

/// Body of `POST /alerts/rules`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CreateAlertRuleRequest)]
#[serde(deny_unknown_fields)]
struct CreateRule {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Channel ids or names.
    channels: Vec<String>,
    #[serde(default)]
    selector: Selector,
    /// Days before expiry (1 to 3650 each); default [30, 14, 7, 1].
    thresholds: Option<Vec<u32>>,
    /// Lifecycle events to forward.
    #[serde(default)]
    #[schema(value_type = Vec<EventName>)]
    events: Vec<String>,
    /// Below the last threshold, remind once a day until expiry.
    #[serde(default)]
    daily_reminder: bool,
    /// One message per sweep listing every crossing.
    #[serde(default)]
    digest: bool,
    #[serde(default = "yes")]
    #[schema(default = true)]
    enabled: bool,
}

/// The name of a lifecycle event a rule may forward (a plain string in the rule).
struct EventName;

impl PartialSchema for EventName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(SUBSCRIBABLE.iter().map(|k| k.short())))
            .into()
    }
}

impl ToSchema for EventName {}

/// A rule as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertRule)]
struct RuleView {
    id: String,
    name: String,
    selector: Selector,
    /// Days before expiry, largest first.
    thresholds: Vec<u32>,
    /// Channel ids.
    channels: Vec<String>,
    /// Lifecycle events forwarded.
    #[schema(value_type = Vec<EventName>)]
    events: Vec<String>,
    /// Below the last threshold, remind once a day until expiry.
    daily_reminder: bool,
    /// One message per sweep listing every crossing.
    digest: bool,
    enabled: bool,
    /// When it was created.
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&RuleRecord> for RuleView {
    fn from(r: &RuleRecord) -> RuleView {
        RuleView {
            id: r.id.clone(),
            name: r.name.clone(),
            selector: r.selector.clone(),
            thresholds: r.thresholds.clone(),
            channels: r.channels.clone(),
            events: r.events.clone(),
            daily_reminder: r.daily_reminder,
            digest: r.digest,
            enabled: r.enabled,
            created_at: rfc3339(r.created_at),
        }
    }
}

fn yes() -> bool {
    true
}

#[utoipa::path(
    post,
    path = "/alerts/rules",
    operation_id = "createAlertRule",
    tag = "Alerts",
    summary = "Create an alert rule",
    description = "Which certificates (selector), thresholds in days before expiry (default 30, 14, 7, 1; each fires once per certificate, a renewed certificate starts fresh), optional daily reminder below the last threshold, digest mode, lifecycle events, and the channels to notify. Admin token.",
    request_body(content((CreateRule = "application/json")), description = "The rule."),
    responses(
        (status = 201, description = "The rule.", content((RuleView = "application/json"))),
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
    Ok((StatusCode::CREATED, Json(RuleView::from(&rec))).into_response())
}

#[utoipa::path(
    get,
    path = "/alerts/rules",
    operation_id = "listAlertRules",
    tag = "Alerts",
    summary = "List alert rules",
    responses(
        (status = 200, description = "The rules, oldest first.", content((Vec<RuleView> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_rules(
    State(state): State<AppState>,
    _: Reader,
) -> Result<Json<Vec<RuleView>>, Error> {
    let rules = state.services.alerts.list_rules().await?;
    Ok(Json(rules.iter().map(RuleView::from).collect()))
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
        (status = 200, description = "The rule.", content((RuleView = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such rule.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_rule(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<RuleView>, Error> {
    Ok(Json(RuleView::from(
        &state.services.alerts.rule(&id).await?,
    )))
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

/// An outbox row as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertOutboxEntry)]
struct OutboxView {
    id: String,
    /// The CloudEvents id (the same on every retry).
    event_id: String,
    event_type: String,
    channel_id: String,
    #[schema(value_type = schemas::OutboxStatus, inline)]
    status: String,
    #[schema(minimum = 0)]
    attempts: i64,
    /// Next attempt, while pending.
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    /// The last failure.
    last_error: Option<String>,
    /// The last HTTP status or SMTP reply code.
    last_status: Option<i64>,
    /// When it was queued.
    #[schema(format = DateTime)]
    created_at: String,
    /// When it was delivered.
    #[schema(format = DateTime)]
    delivered_at: Option<String>,
}

impl From<&OutboxRecord> for OutboxView {
    fn from(o: &OutboxRecord) -> OutboxView {
        OutboxView {
            id: o.id.clone(),
            event_id: o.event_id.clone(),
            event_type: o.event_type.clone(),
            channel_id: o.channel_id.clone(),
            status: o.status.clone(),
            attempts: o.attempts,
            next_attempt_at: (o.status == "pending").then(|| rfc3339(o.next_attempt_at)),
            last_error: o.last_error.clone(),
            last_status: o.last_status,
            created_at: rfc3339(o.created_at),
            delivered_at: o.delivered_at.map(rfc3339),
        }
    }
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
        (status = 200, description = "The rows.", content((Vec<OutboxView> = "application/json"))),
        (status = 400, description = "Unknown status or limit out of range.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_outbox(
    State(state): State<AppState>,
    _: Reader,
    Query(q): Query<OutboxQuery>,
) -> Result<Json<Vec<OutboxView>>, Error> {
    let rows = state
        .services
        .alerts
        .outbox(q.status.as_deref(), None, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(rows.iter().map(OutboxView::from).collect()))
}

/// How many dead notifications went back to the outbox.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertOutboxRetried)]
struct Retried {
    /// Rows put back to pending; the delivery job sends them in the background.
    #[schema(minimum = 0)]
    retried: u64,
}

#[utoipa::path(
    post,
    path = "/alerts/outbox/{id}/retry",
    operation_id = "retryAlertOutboxRow",
    tag = "Alerts",
    summary = "Retry a dead notification",
    description = "Puts a dead outbox row back to pending, due now, with its attempts counted afresh, and wakes the delivery job, which sends it in the background (watch `GET /alerts/outbox`). Audited. Admin token.",
    params(
        ("id" = String, Path, description = "The outbox row's id."),
    ),
    responses(
        (status = 202, description = "Queued again.", content((Retried = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such outbox row.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The row is not dead (pending or delivered).", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn retry_outbox_row(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let retried = state
        .services
        .alerts
        .retry_dead(Some(&id), &auth.actor)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Retried { retried })).into_response())
}

#[utoipa::path(
    post,
    path = "/alerts/outbox/retry",
    operation_id = "retryDeadAlertOutbox",
    tag = "Alerts",
    summary = "Retry every dead notification",
    description = "Puts every dead outbox row back to pending, due now, with its attempts counted afresh, and wakes the delivery job. `retried` is 0 when none was dead. Audited. Admin token.",
    responses(
        (status = 202, description = "Queued again.", content((Retried = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn retry_dead_outbox(
    State(state): State<AppState>,
    Admin(auth): Admin,
) -> Result<Response, Error> {
    let retried = state.services.alerts.retry_dead(None, &auth.actor).await?;
    Ok((StatusCode::ACCEPTED, Json(Retried { retried })).into_response())
}

/// What `POST /alerts/sweep` did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertSweepResult)]
struct SweepResult {
    /// The expiry sweep; what fired is in the outbox, on its way.
    sweep: SweepReport,
}

#[utoipa::path(
    post,
    path = "/alerts/sweep",
    operation_id = "sweepAlerts",
    tag = "Alerts",
    summary = "Evaluate alert rules now",
    description = "Runs the expiry sweep (as the scheduled job does), queues what fired in the outbox and wakes the delivery job, which sends it (and anything else due) in the background: the answer never waits on a receiver. Watch `GET /alerts/outbox` for the outcome. Admin token.",
    responses(
        (status = 202, description = "Swept; what fired is queued for delivery.", content((SweepResult = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn sweep(State(state): State<AppState>, _: Admin) -> Result<Response, Error> {
    let sweep = state.services.alerts.sweep_and_queue().await?;
    Ok((StatusCode::ACCEPTED, Json(SweepResult { sweep })).into_response())
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

/// A certificate's tags.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CertificateTags)]
struct CertificateTags {
    /// The certificate's SHA-256 fingerprint, lower-case hex.
    fingerprint: String,
    /// Its tags.
    tags: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/alerts/tags/{fingerprint}",
    operation_id = "getCertificateTags",
    tag = "Alerts",
    summary = "A certificate's tags",
    description = "The tags that alert rules with a `tags` selector match. Any valid token.",
    params(
        ("fingerprint" = String, Path, description = "The certificate's SHA-256 fingerprint, 64 hex digits (ours or discovered).", pattern = "^[0-9A-Fa-f]{64}$"),
    ),
    responses(
        (status = 200, description = "The tags.", content((CertificateTags = "application/json"))),
        (status = 400, description = "The fingerprint is not 64 hex digits.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_tags(
    State(state): State<AppState>,
    _: Reader,
    Path(fingerprint): Path<String>,
) -> Result<Json<CertificateTags>, Error> {
    let (fingerprint, tags) = state.services.alerts.tags(&fingerprint).await?;
    Ok(Json(CertificateTags { fingerprint, tags }))
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
        ("fingerprint" = String, Path, description = "The certificate's SHA-256 fingerprint, 64 hex digits (ours or discovered).", pattern = "^[0-9A-Fa-f]{64}$"),
    ),
    request_body(content((Tags = "application/json")), description = "The new tags."),
    responses(
        (status = 200, description = "The tags now.", content((CertificateTags = "application/json"))),
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
) -> Result<Json<CertificateTags>, Error> {
    let (fingerprint, tags) = state
        .services
        .alerts
        .set_tags(&fingerprint, &body.tags, &auth.actor)
        .await?;
    Ok(Json(CertificateTags { fingerprint, tags }))
}
