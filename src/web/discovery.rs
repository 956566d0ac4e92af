//! Discovery: scans (start one, watch its progress, its results and what changed),
//! schedules, and the inventory of endpoints with filters.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use certkeeper_discovery::ScanSpec;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{WebError, check_csrf, csrf_field, is_admin, page, when_unix};
use super::session::Signed;
use crate::error::Error;
use crate::server::AppState;

/// Scans listed on the discovery page.
const RECENT_SCANS: i64 = 50;
/// Endpoints per page of the inventory.
const PAGE_SIZE: usize = 100;
/// The findings the inventory filters by, as discovery names them.
const FINDINGS: [&str; 11] = [
    "expired",
    "expiring",
    "not_yet_valid",
    "self_signed",
    "hostname_mismatch",
    "weak_key",
    "weak_signature",
    "incomplete_chain",
    "untrusted_chain",
    "chain_truncated",
    "not_issued_by_us",
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/discovery", get(overview).post(scan_now))
        .route("/discovery/scans/{id}", get(scan))
        .route("/discovery/endpoints", get(endpoints))
}

async fn overview(State(state): State<AppState>, Signed(s): Signed) -> Result<Markup, WebError> {
    let scans = state.services.discovery.list_scans(RECENT_SCANS).await?;
    let body = html! {
        p { a href="/discovery/endpoints" { "Inventory of endpoints" } }
        @if is_admin(&s) {
            section #scan-now {
                h2 { "Scan now" }
                form method="post" action="/discovery" {
                    (csrf_field(&s))
                    label { "Targets (addresses, CIDR blocks, ranges, host names, host:port; one per line)"
                        textarea name="targets" rows="3" required {} }
                    label { "Ports (443,8443 or 9000-9010; empty for the common TLS ports)" input name="ports"; }
                    button type="submit" #scan-submit { "Scan" }
                }
            }
        }
        h2 { "Scans" }
        table #scans {
            thead { tr { th { "Started" } th { "Status" } th { "Progress" } th { "Handshakes" } th { "Schedule" } } }
            tbody {
                @for sc in &scans {
                    tr {
                        td { a href=(format!("/discovery/scans/{}", sc.id)) { (when_unix(sc.created_at)) } }
                        td { (sc.status) @if let Some(e) = &sc.error { " " span.bad { (e) } } }
                        td { (sc.done) " / " (sc.total) }
                        td { (sc.handshakes) }
                        td { (sc.schedule_id.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        @if scans.is_empty() { p.muted { "No scan yet." } }
    };
    Ok(page(&s, "Discovery", "/discovery", body))
}

#[derive(Deserialize)]
struct ScanForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    targets: String,
    #[serde(default)]
    ports: String,
}

async fn scan_now(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<ScanForm>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let spec = ScanSpec {
        targets: f
            .targets
            .split(['\n', ',', ' ', '\r'])
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        ports: Some(f.ports.trim().to_string()).filter(|p| !p.is_empty()),
        ..ScanSpec::default()
    };
    let rec = state
        .services
        .discovery
        .start_scan(&spec, &s.caller.actor)
        .await?;
    Ok(Redirect::to(&format!("/discovery/scans/{}", rec.id)).into_response())
}

async fn scan(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let (sc, results) = state.services.dashboard.scan(&id).await?;
    let running = matches!(sc.status.as_str(), "running" | "pending" | "queued");
    let body = html! {
        dl.facts {
            dt { "Status" } dd #scan-status { (sc.status) }
            dt { "Progress" } dd #scan-progress { (sc.done) " / " (sc.total) " targets, " (sc.handshakes) " handshakes" }
            dt { "Started" } dd { (when_unix(sc.created_at)) }
            @if let Some(e) = &sc.error { dt { "Error" } dd.bad { (e) } }
            dt { "Specification" } dd.mono.small { (sc.spec.to_string()) }
        }
        @if running { p.muted { "Running: this page reloads every two seconds." } }
        h2 { "What changed since the previous scan" }
        @match sc.changes.as_ref().and_then(|c| c.as_object()) {
            Some(c) => {
                dl.facts #scan-changes {
                    @for (kind, items) in c {
                        dt { (kind.replace('_', " ")) }
                        dd id=(format!("changes-{kind}")) {
                            @match items.as_array() {
                                Some(list) if list.is_empty() => span.muted { "none" }
                                Some(list) => ul { @for item in list {
                                    li.small { (describe(item)) }
                                } }
                                None => span.mono.small { (items.to_string()) }
                            }
                        }
                    }
                }
            }
            None => p.muted { "Nothing yet." }
        }
        h2 { "Results" }
        table #scan-results {
            thead { tr { th { "Endpoint" } th { "Server name" } th { "Certificate" } th { "Findings" } th { "TLS" } th { "Error" } } }
            tbody {
                @for r in &results {
                    @let chain = &r["chain"];
                    tr {
                        td.mono { (r["address"].as_str().unwrap_or("")) ":" (r["port"]) }
                        td { (r["sni"].as_str().unwrap_or("")) }
                        td { (chain["certificates"][0]["subject"].as_str().unwrap_or("")) }
                        td { (join(&chain["findings"])) }
                        td { (r["tls_version"].as_str().unwrap_or("")) }
                        td.bad { (r["error"].as_str().unwrap_or("")) }
                    }
                }
            }
        }
    };
    let mut resp = page(&s, "Scan", "/discovery", body).into_response();
    if running {
        resp.headers_mut()
            .insert("refresh", axum::http::HeaderValue::from_static("2"));
    }
    Ok(resp)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EndpointQuery {
    finding: String,
    q: String,
    page: usize,
}

async fn endpoints(
    State(state): State<AppState>,
    Signed(s): Signed,
    Query(q): Query<EndpointQuery>,
) -> Result<Markup, WebError> {
    if !q.finding.is_empty() && !FINDINGS.contains(&q.finding.as_str()) {
        return Err(Error::BadRequest(format!("unknown finding {:?}", q.finding)).into());
    }
    let filter = crate::store::EndpointFilter {
        finding: (!q.finding.is_empty()).then(|| q.finding.clone()),
        text: Some(q.q.clone()),
    };
    let offset = i64::try_from(q.page.saturating_mul(PAGE_SIZE)).unwrap_or(i64::MAX);
    let (total, shown) = state
        .services
        .dashboard
        .endpoints(&filter, offset, PAGE_SIZE as i64)
        .await?;
    let total = usize::try_from(total).unwrap_or(0);
    let more = (q.page + 1) * PAGE_SIZE < total;
    let link = |page: usize| {
        let mut u = url::form_urlencoded::Serializer::new(String::new());
        u.append_pair("finding", &q.finding);
        u.append_pair("q", &q.q);
        u.append_pair("page", &page.to_string());
        format!("/discovery/endpoints?{}", u.finish())
    };
    let body = html! {
        form.search method="get" action="/discovery/endpoints" {
            input type="search" name="q" value=(q.q) placeholder="address, server name or certificate name";
            select name="finding" {
                option value="" { "any finding" }
                @for f in FINDINGS {
                    option value=(f) selected[q.finding == f] { (f.replace('_', " ")) }
                }
            }
            button type="submit" { "Filter" }
        }
        p.muted { (total) " endpoints" }
        table #endpoints {
            thead { tr { th { "Endpoint" } th { "Server name" } th { "Certificate" } th { "Expires" } th { "Findings" } th { "TLS" } th { "Last seen" } } }
            tbody {
                @for (e, c) in &shown {
                    tr {
                        td.mono { (e.address) ":" (e.port) }
                        td { (e.sni) }
                        td { (c.subject) }
                        td { (when_unix(c.not_after)) }
                        td { (e.findings.join(", ")) }
                        td { (e.tls_version) }
                        td { (when_unix(e.last_seen)) }
                    }
                }
            }
        }
        p {
            @if q.page > 0 { a href=(link(q.page - 1)) rel="prev" { "Previous page" } " " }
            @if more { a href=(link(q.page + 1)) rel="next" { "Next page" } }
        }
    };
    Ok(page(&s, "Discovered endpoints", "/discovery", body))
}

/// A JSON array of strings as a comma-separated list.
fn join(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// One change of a scan as text: `key: value` pairs of an object, or the value.
fn describe(item: &serde_json::Value) -> String {
    match item {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}: {}",
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(" · "),
        other => other.to_string(),
    }
}
