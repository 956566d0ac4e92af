//! `/api/v1/est/...`: EST labels (which profile a `/.well-known/est/<label>/` path uses) and
//! EST HTTP Basic credentials (password shown once, stored hashed). Admin only.

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
use crate::services::est::NewCredential;
use crate::store::{EstCredential, EstLabel};

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/est/labels", get(list_labels).post(create_label))
        .route("/est/labels/{label}", delete(delete_label))
        .route(
            "/est/credentials",
            get(list_credentials).post(create_credential),
        )
        .route("/est/credentials/{id}", delete(revoke_credential))
}

/// Body of `POST /est/labels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLabel {
    label: String,
    profile: String,
    #[serde(default)]
    require_channel_binding: bool,
}

async fn create_label(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateLabel>,
) -> Result<Response, Error> {
    let rec = state
        .services
        .est
        .create_label(
            body.label,
            &body.profile,
            body.require_channel_binding,
            &auth.actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

async fn list_labels(
    State(state): State<AppState>,
    _a: Admin,
) -> Result<Json<Vec<EstLabel>>, Error> {
    Ok(Json(state.services.est.labels().await?))
}

async fn delete_label(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(label): Path<String>,
) -> Result<StatusCode, Error> {
    state.services.est.delete_label(&label, &auth.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /est/credentials`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCredential {
    username: String,
    /// The label it enrolls under; none for the bare `/.well-known/est/` path.
    label: Option<String>,
    /// A chosen password (at least 12 characters); one is generated when absent.
    password: Option<String>,
    expires_in_days: Option<u32>,
    /// How many enrollments it allows (1 for a one-time bootstrap password).
    max_uses: Option<u32>,
}

/// A new credential: the only time its password is shown.
#[derive(Debug, Serialize)]
struct CreatedCredential {
    #[serde(flatten)]
    record: EstCredential,
    password: String,
}

async fn create_credential(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateCredential>,
) -> Result<Response, Error> {
    let new = NewCredential {
        username: body.username,
        label: body.label,
        password: body.password,
        expires_in_days: body.expires_in_days,
        max_uses: body.max_uses,
    };
    let (record, password) = state
        .services
        .est
        .create_credential(new, &auth.actor)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedCredential { record, password }),
    )
        .into_response())
}

async fn list_credentials(
    State(state): State<AppState>,
    _a: Admin,
) -> Result<Json<Vec<EstCredential>>, Error> {
    Ok(Json(state.services.est.credentials().await?))
}

async fn revoke_credential(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    state
        .services
        .est
        .revoke_credential(&id, &auth.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
