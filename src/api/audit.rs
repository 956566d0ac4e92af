//! `/api/v1/audit`: the audit log, for admins.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::extract::{Json, Query};
use crate::error::Error;
use crate::server::AppState;
use crate::store::AuditRecord;

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

/// Query of `GET /audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    action: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

/// A page of audit entries, newest first.
#[derive(Debug, Serialize)]
struct Page {
    items: Vec<AuditRecord>,
    next_before: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    _a: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Page>, Error> {
    let page = state
        .services
        .audit
        .list(q.action, q.before, q.limit)
        .await?;
    Ok(Json(Page {
        items: page.items,
        next_before: page.next_before,
    }))
}
