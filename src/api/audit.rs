//! `/api/v1/audit`: the audit log, for admins.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::extract::{Json, Query};
use crate::error::Error;
use crate::server::AppState;
use crate::store::{AuditFilter, AuditRecord};

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
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
    }
    let items = state
        .pki
        .store()
        .list_audit(&AuditFilter {
            action: q.action,
            before_id: q.before,
            limit: limit + 1,
        })
        .await?;
    let mut items = items;
    let next_before = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(Page { items, next_before }))
}
