//! Alerts (admins only): channels with "send test", rules, and the outbox of
//! notifications by status, a page at a time, where a dead notification (or every dead
//! one) can be sent again.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    CsrfOnly, WebError, check_csrf, csrf_field, cursor_of, next_page, page, paged, when_unix,
};
use super::session::Signed;
use crate::server::AppState;
use crate::services::alerts::Outcome;

/// Outbox rows a page.
const OUTBOX_ROWS: usize = 50;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(alerts))
        .route("/alerts/channels/{id}/test", post(test_channel))
        .route("/alerts/outbox/retry", post(retry_all))
        .route("/alerts/outbox/{id}/retry", post(retry_one))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OutboxQuery {
    status: String,
    cursor: String,
}

async fn alerts(
    State(state): State<AppState>,
    Signed(s): Signed,
    Query(q): Query<OutboxQuery>,
) -> Result<Markup, WebError> {
    s.caller.require_admin()?;
    let status = match q.status.as_str() {
        "" => None,
        st => Some(st),
    };
    let a = state
        .services
        .dashboard
        .alerts(status, cursor_of(&q.cursor)?, OUTBOX_ROWS as i64 + 1)
        .await?;
    let (outbox, cursor) = paged(a.outbox, OUTBOX_ROWS, |o| (o.created_at, o.id.as_str()));
    let body = html! {
        h2 { "Channels" }
        table #channels {
            thead { tr { th { "Name" } th { "Kind" } th { "Created" } th {} } }
            tbody {
                @for c in &a.channels {
                    tr {
                        td { (c.name) }
                        td { (c.kind) }
                        td { (when_unix(c.created_at)) }
                        td {
                            form method="post" action=(format!("/alerts/channels/{}/test", c.id)) {
                                (csrf_field(&s))
                                button type="submit" { "Send test" }
                            }
                        }
                    }
                }
            }
        }
        @if a.channels.is_empty() { p.muted { "No channel yet (create them through the API or the CLI)." } }
        h2 { "Rules" }
        table #rules {
            thead { tr { th { "Name" } th { "Selects" } th { "Days before expiry" } th { "Events" } th { "Channels" } th { "Enabled" } } }
            tbody {
                @for r in &a.rules {
                    tr {
                        td { (r.name) }
                        td.mono.small { (serde_json::to_string(&r.selector).unwrap_or_default()) }
                        td { (r.thresholds.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")) }
                        td { (r.events.join(", ")) }
                        td { (r.channels.iter().map(|id| a.channels.iter().find(|c| &c.id == id).map(|c| c.name.as_str()).unwrap_or(id.as_str())).collect::<Vec<_>>().join(", ")) }
                        td { (if r.enabled { "yes" } else { "no" }) }
                    }
                }
            }
        }
        h2 { "Outbox" }
        form.search method="get" action="/alerts" {
            select name="status" {
                option value="" { "every status" }
                @for st in ["pending", "delivered", "dead"] {
                    option value=(st) selected[q.status == st] { (st) }
                }
            }
            button type="submit" { "Show" }
        }
        @if q.status == "dead" && !outbox.is_empty() {
            form method="post" action="/alerts/outbox/retry" #retry-all data-confirm="Send every dead notification again?" {
                (csrf_field(&s))
                button type="submit" #retry-all-submit { "Retry all dead" }
            }
        }
        table #outbox {
            thead { tr { th { "Created" } th { "Event" } th { "Channel" } th { "Status" } th { "Attempts" } th { "Last error" } th {} } }
            tbody {
                @for o in &outbox {
                    tr id=(format!("outbox-{}", o.id)) {
                        td { (when_unix(o.created_at)) }
                        td { (o.event_type) }
                        td { (a.channels.iter().find(|c| c.id == o.channel_id).map(|c| c.name.as_str()).unwrap_or(o.channel_id.as_str())) }
                        td.status { (o.status) }
                        td { (o.attempts) }
                        td.bad { (o.last_error.as_deref().unwrap_or("")) }
                        td {
                            @if o.status == "dead" {
                                form method="post" action=(format!("/alerts/outbox/{}/retry", o.id)) {
                                    (csrf_field(&s))
                                    button type="submit" .retry { "Retry" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (next_page("/alerts", &[("status", &q.status)], cursor.as_deref()))
    };
    Ok(page(&s, "Alerts", "/alerts", body))
}

async fn test_channel(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Markup, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let outcome = state
        .services
        .alerts
        .test_channel(&id, &s.caller.actor)
        .await?;
    let (ok, text) = match outcome {
        Outcome::Delivered { status } => (
            true,
            match status {
                Some(st) => format!("delivered (HTTP {st})"),
                None => "delivered".to_string(),
            },
        ),
        Outcome::Failed { error, .. } => (false, format!("not delivered: {error}")),
    };
    let body = html! {
        p #test-outcome class=(if ok { "ok" } else { "error" }) { "Test notification " (text) "." }
        p { a href="/alerts" { "Back to the alerts" } }
    };
    Ok(page(&s, "Send test", "/alerts", body))
}

async fn retry_one(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Markup, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let n = state
        .services
        .alerts
        .retry_dead(Some(&id), &s.caller.actor)
        .await?;
    Ok(retried(&s, n))
}

async fn retry_all(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<CsrfOnly>,
) -> Result<Markup, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let n = state
        .services
        .alerts
        .retry_dead(None, &s.caller.actor)
        .await?;
    Ok(retried(&s, n))
}

/// The page that answers a retry.
fn retried(s: &crate::services::sessions::Session, n: u64) -> Markup {
    let body = html! {
        p #retry-outcome {
            @match n {
                0 => "No notification was dead.",
                1 => "1 notification is queued again for delivery.",
                n => { (n) " notifications are queued again for delivery." }
            }
        }
        p { a href="/alerts" { "Back to the alerts" } }
    };
    page(s, "Retry notifications", "/alerts", body)
}
