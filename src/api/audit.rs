//! `/api/v1/audit`: the audit log, for admins.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::extract::{Json, Query};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::store::AuditRecord;

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditPage)]
struct Page {
    #[schema(value_type = Vec<schemas::AuditEntry>)]
    items: Vec<AuditRecord>,
    /// Pass as `before` for the next page; null when this page is not full.
    #[schema(required = true)]
    next_before: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/audit",
    operation_id = "listAudit",
    tag = "Audit",
    summary = "Read the audit log",
    description = "Audit entries, newest first, a page at a time. Unknown query parameters are refused. Admin token.",
    params(
        ("action" = Option<String>, Query, description = "Only this action (`ca.create`, `certificate.issue`, `certificate.revoke`, `profile.update`, `token.create`, ...)."),
        ("before" = Option<i64>, Query, description = "Only entries with an id below this (the previous page's `next_before`)."),
        ("limit" = Option<i64>, Query, description = "Page size. Default: `100`.", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "A page of audit entries.", content((Page = "application/json"))),
        (status = 400, description = "A malformed or unknown query parameter, or `limit` outside 1-1000.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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
