//! `/api/v1/tokens`: API tokens, shown once.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::extract::{Json, Path};
use crate::error::Error;
use crate::server::AppState;
use crate::services::tokens::NewToken;
use crate::store::{Role, TokenRecord};

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
}

/// Body of `POST /tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    role: Role,
    #[serde(default)]
    profiles: Vec<String>,
    expires_in_days: Option<u32>,
}

/// A new token: the only time its secret is shown.
#[derive(Debug, Serialize)]
struct Created {
    #[serde(flatten)]
    record: TokenRecord,
    token: String,
}

async fn create(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateToken>,
) -> Result<Response, Error> {
    let new = NewToken {
        name: body.name,
        role: body.role,
        profiles: body.profiles,
        expires_in_days: body.expires_in_days,
    };
    let (record, token) = state.services.tokens.create(new, &auth.actor).await?;
    Ok((StatusCode::CREATED, Json(Created { record, token })).into_response())
}

async fn list(State(state): State<AppState>, _a: Admin) -> Result<Json<Vec<TokenRecord>>, Error> {
    Ok(Json(state.services.tokens.list().await?))
}

async fn revoke(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    state.services.tokens.revoke(&id, &auth.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
