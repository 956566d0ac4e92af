//! The audit log (admins only), newest first, filtered by action, actor, object and time.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use time::PrimitiveDateTime;
use time::format_description::well_known::Iso8601;

use super::layout::{WebError, page, when};
use super::session::Signed;
use crate::error::Error;
use crate::server::AppState;
use crate::services::audit::AuditSearch;

/// Rows per page.
const PAGE_SIZE: i64 = 100;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Filters {
    action: String,
    actor: String,
    object: String,
    /// `datetime-local` input: `YYYY-MM-DDTHH:MM`, UTC.
    since: String,
    until: String,
    before: String,
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A `datetime-local` value (taken as UTC), as Unix seconds.
fn instant(field: &str, s: &str) -> Result<Option<i64>, Error> {
    let Some(text) = opt(s) else { return Ok(None) };
    let text = if text.len() == 16 {
        format!("{text}:00")
    } else {
        text
    };
    PrimitiveDateTime::parse(&text, &Iso8601::DEFAULT)
        .map(|t| Some(t.assume_utc().unix_timestamp()))
        .map_err(|_| {
            Error::BadRequest(format!(
                "{field} must be a date and time like 2026-01-31T12:00"
            ))
        })
}

async fn list(
    State(state): State<AppState>,
    Signed(s): Signed,
    Query(f): Query<Filters>,
) -> Result<Markup, WebError> {
    s.caller.require_admin()?;
    let search = AuditSearch {
        action: opt(&f.action),
        actor: opt(&f.actor),
        object: opt(&f.object),
        since: instant("since", &f.since)?,
        until: instant("until", &f.until)?,
        before: opt(&f.before)
            .map(|b| b.parse::<i64>())
            .transpose()
            .map_err(|_| Error::BadRequest("before must be an entry number".into()))?,
        limit: Some(PAGE_SIZE),
    };
    let p = state.services.audit.search(search).await?;
    let next = p.next_before.map(|b| {
        let mut u = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("action", &f.action),
            ("actor", &f.actor),
            ("object", &f.object),
            ("since", &f.since),
            ("until", &f.until),
        ] {
            if !v.is_empty() {
                u.append_pair(k, v);
            }
        }
        u.append_pair("before", &b.to_string());
        format!("/audit?{}", u.finish())
    });
    let body = html! {
        form.search method="get" action="/audit" #audit-filter {
            input name="action" value=(f.action) placeholder="action (certificate.revoke)";
            input name="actor" value=(f.actor) placeholder="actor contains";
            input name="object" value=(f.object) placeholder="object id or kind";
            label { "since " input type="datetime-local" name="since" value=(f.since); }
            label { "until " input type="datetime-local" name="until" value=(f.until); }
            button type="submit" { "Filter" }
        }
        table #audit {
            thead { tr { th { "#" } th { "When" } th { "Actor" } th { "Action" } th { "Object" } th { "Source" } th { "Detail" } } }
            tbody {
                @for e in &p.items {
                    tr {
                        td { (e.id) }
                        td { (when(e.at)) }
                        td { (e.actor) }
                        td { (e.action) }
                        td { (e.object_type) " " span.mono { (e.object_id.as_deref().unwrap_or("")) } }
                        td { (e.source.as_deref().unwrap_or("")) }
                        td.mono.small { (e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default()) }
                    }
                }
            }
        }
        @if p.items.is_empty() { p.muted { "No entry matches." } }
        @if let Some(n) = next { p { a href=(n) rel="next" { "Older entries" } } }
        p.muted.small { "Times are UTC." }
    };
    Ok(page(&s, "Audit log", "/audit", body))
}
