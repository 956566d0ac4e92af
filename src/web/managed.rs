//! Managed certificates: versions, next renewal, sync state per destination; renew and
//! push ("retry") now, for tokens that may use the certificate's profile.

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use super::layout::{CsrfOnly, WebError, check_csrf, csrf_field, may_issue, page, when};
use super::session::Signed;
use crate::server::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/managed", get(list))
        .route("/managed/{id}", get(detail))
        .route("/managed/{id}/renew", post(renew))
        .route("/managed/{id}/sync", post(sync))
}

async fn list(State(state): State<AppState>, Signed(s): Signed) -> Result<Markup, WebError> {
    let all = state.services.managed.list().await?;
    let body = html! {
        table #managed {
            thead { tr { th { "Name" } th { "Profile" } th { "Status" } th { "Version" } th { "Next renewal" } th { "Failures" } th { "Last error" } } }
            tbody {
                @for m in &all {
                    tr {
                        td { a href=(format!("/managed/{}", m.id)) { (m.name) } }
                        td { (m.profile_name) }
                        td { (m.status) }
                        td { (m.current_version) }
                        td { (m.next_renewal_at.map(when).unwrap_or_default()) }
                        td { (m.renewal_failures) }
                        td.bad { (m.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        @if all.is_empty() { p.muted { "No managed certificate yet (create them through the API or the CLI)." } }
    };
    Ok(page(&s, "Managed certificates", "/managed", body))
}

async fn detail(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let (d, deployed) = state.services.dashboard.managed(&id).await?;
    let m = &d.record;
    let body = html! {
        dl.facts {
            dt { "Profile" } dd { (m.profile_name) }
            dt { "Status" } dd #managed-status { (m.status) }
            dt { "Current version" } dd { (m.current_version) }
            dt { "Next renewal" } dd { (m.next_renewal_at.map(when).unwrap_or_default()) }
            dt { "Renewal failures" } dd { (m.renewal_failures) }
            @if let Some(e) = &m.last_error { dt { "Last error" } dd.bad { (e) } }
        }
        @if may_issue(&s, &m.profile_name) && m.status != "revoked" {
            div.actions {
                form method="post" action=(format!("/managed/{}/renew", m.id)) {
                    (csrf_field(&s)) button type="submit" #renew-now { "Renew now" }
                }
                form method="post" action=(format!("/managed/{}/sync", m.id)) {
                    (csrf_field(&s)) button type="submit" #sync-now { "Push to destinations now" }
                }
            }
        }
        h2 { "Versions" }
        table #versions {
            thead { tr { th { "Version" } th { "Certificate" } th { "Expires" } th { "Status" } } }
            tbody {
                @for v in d.versions.iter().rev() {
                    tr {
                        td { (v.version.version) }
                        td { a href=(format!("/certificates/{}", v.certificate.id)) { (v.certificate.serial) } }
                        td { (when(v.certificate.not_after)) }
                        td { (v.status) }
                    }
                }
            }
        }
        h2 { "Destinations" }
        table #bindings {
            thead { tr { th { "Destination" } th { "Kind" } th { "Pushed version" } th { "Failures" } th { "Next attempt" } th { "Last error" } } }
            tbody {
                @for b in &d.bindings {
                    tr {
                        td { (b.destination.as_ref().map(|x| x.name.as_str()).unwrap_or("(removed)")) }
                        td { (b.destination.as_ref().map(|x| x.kind.as_str()).unwrap_or("")) }
                        td { (b.binding.pushed_version.map(|v| v.to_string()).unwrap_or_else(|| "none".into())) }
                        td { (b.binding.failures) }
                        td { (when(b.binding.next_attempt_at)) }
                        td.bad { (b.binding.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        h2 { "Deployments" }
        p.muted { "Where each version lives: destinations (sync state), hosts (agents' reports) and endpoints (discovery scans that saw its fingerprint)." }
        @let stale: Vec<_> = deployed.places.iter().filter(|p| p.stale_since.is_some()).collect();
        @if !stale.is_empty() {
            div.bad #stale-deployments {
                p { strong { "Still serving an old version:" } }
                ul {
                    @for p in &stale {
                        li { (p.kind.as_str()) " " strong { (p.name) } " serves version " (p.version) " since " (p.stale_since.map(when).unwrap_or_default()) }
                    }
                }
            }
        }
        table #deployments {
            thead { tr { th { "Version" } th { "Kind" } th { "Where" } th { "Since" } th { "Last seen" } th { "State" } th { "Detail" } } }
            tbody {
                @for p in &deployed.places {
                    tr {
                        td { (p.version) @if p.version == m.current_version { " (current)" } }
                        td { (p.kind.as_str()) }
                        td { (p.name) }
                        td { (when(p.since)) }
                        td { (when(p.last_seen)) }
                        td {
                            @if let Some(at) = p.stale_since { span.bad { "stale since " (when(at)) } }
                            @else if p.ok { "ok" } @else { span.bad { "failed" } }
                        }
                        td.mono.small { (p.detail.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        @if deployed.places.is_empty() { p.muted { "Not known to be deployed anywhere yet." } }
        h2 { "Recent events" }
        table #events {
            thead { tr { th { "When" } th { "Event" } th { "Detail" } } }
            tbody {
                @for e in &d.events {
                    tr { td { (when(e.at)) } td { (e.kind) } td.mono.small { (e.detail.to_string()) } }
                }
            }
        }
    };
    Ok(page(
        &s,
        &format!("Managed certificate {}", m.name),
        "/managed",
        body,
    ))
}

async fn renew(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    let caller = &s.caller;
    let m = state
        .services
        .dashboard
        .renew_managed(&id, |p| caller.require_issuer_for(p), &caller.actor)
        .await?;
    Ok(Redirect::to(&format!("/managed/{}", m.id)).into_response())
}

async fn sync(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    let caller = &s.caller;
    let m = state
        .services
        .dashboard
        .sync_managed(&id, |p| caller.require_issuer_for(p))
        .await?;
    Ok(Redirect::to(&format!("/managed/{}", m.id)).into_response())
}
