//! The overview: certificates by state, what expires soon, the CAs, recent failures
//! (renewals, pushes to destinations, alert deliveries) and discovery scans.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{Markup, html};

use super::layout::{WebError, bar_chart, page, when, when_unix};
use super::session::Signed;
use crate::server::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/", get(overview))
}

async fn overview(State(state): State<AppState>, Signed(s): Signed) -> Result<Markup, WebError> {
    let o = state.services.dashboard.overview().await?;
    let c = o.counts;
    let body = html! {
        section.cards {
            a.card href="/certificates?status=valid" { span.n #count-valid { (c.valid) } span { "valid" } }
            a.card href="/certificates?status=expired" { span.n #count-expired { (c.expired) } span { "expired" } }
            a.card href="/certificates?status=revoked" { span.n #count-revoked { (c.revoked) } span { "revoked" } }
        }
        section {
            h2 { "Expiring soon" }
            (bar_chart(&[
                ("7 days", c.expiring_7),
                ("30 days", c.expiring_30),
                ("90 days", c.expiring_90),
            ]))
        }
        section {
            h2 { "Certificate authorities" }
            table {
                thead { tr { th { "Name" } th { "Kind" } th { "Status" } th { "Expires" } } }
                tbody {
                    @for ca in &o.cas {
                        tr {
                            td { a href=(format!("/hierarchy#ca-{}", ca.id)) { (ca.name) } }
                            td { (ca.kind) }
                            td { (ca.status) }
                            td {
                                @match ca.not_after {
                                    Some(t) => {
                                        (when(t))
                                        @if t < o.now { " " span.bad { "expired" } }
                                    }
                                    None => "—",
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Recent failures" }
            @if o.failed_renewals.is_empty() && o.failed_syncs.is_empty() && o.dead_alerts.is_empty() {
                p.muted { "No failed renewals, syncs or alert deliveries." }
            } @else {
                ul.failures {
                    @for m in &o.failed_renewals {
                        li.renewal-failure { "Managed certificate " strong { (m.name) } ": "
                            (m.last_error.as_deref().unwrap_or("")) " (" (m.renewal_failures) " failures)" }
                    }
                    @for f in &o.failed_syncs {
                        li.sync-failure { "Push of " a href=(format!("/managed/{}", f.binding.managed_id)) { strong { (f.managed_name) } }
                            " to destination " strong { (f.destination_name) } " failed: "
                            (f.binding.last_error.as_deref().unwrap_or("")) " (" (f.binding.failures) " in a row, "
                            (when(f.binding.updated_at)) ")" }
                    }
                    @for a in &o.dead_alerts {
                        li.alert-failure { "Alert " (a.event_type) " to channel " (a.channel_id) " gave up after "
                            (a.attempts) " attempts: " (a.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        section {
            h2 { "Discovery scans" }
            p {
                "Last scan: "
                @match &o.last_scan {
                    Some(scan) => { (when_unix(scan.created_at)) ", " (scan.status) " (" (scan.done) "/" (scan.total) " targets)" }
                    None => "none yet",
                }
            }
            p {
                "Next scheduled scan: "
                @match &o.next_scan {
                    Some(sch) => { (when_unix(sch.next_run)) " (" (sch.name) ")" }
                    None => "none scheduled",
                }
            }
        }
    };
    Ok(page(&s, "Overview", "/", body))
}
