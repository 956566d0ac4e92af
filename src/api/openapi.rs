//! `/api/v1/openapi.json` (being written).

use axum::Router;
use axum::routing::get;

use crate::server::AppState;

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(|| async { axum::Json(serde_json::json!({"openapi": "3.1.0"})) }),
    )
}
