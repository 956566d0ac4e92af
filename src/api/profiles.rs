//! `/api/v1/profiles`: issuance templates with policy.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use certkeeper_ca::Profile;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::auth::{Admin, Reader};
use super::extract::{Json, Path};
use crate::error::Error;
use crate::server::AppState;
use crate::store::ProfileRecord;

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/profiles", get(list).post(create))
        .route("/profiles/{name}", get(get_one).put(update).delete(delete))
}

/// A profile as the API shows it: the policy fields plus `ca`.
#[derive(Debug, Serialize)]
pub(super) struct ProfileView {
    id: String,
    ca: String,
    #[serde(flatten)]
    policy: Profile,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

fn view(r: ProfileRecord) -> ProfileView {
    ProfileView {
        id: r.id,
        ca: r.ca_id,
        policy: r.policy,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

async fn list(State(state): State<AppState>, _r: Reader) -> Result<Json<Vec<ProfileView>>, Error> {
    Ok(Json(
        state
            .services
            .profiles
            .list()
            .await?
            .into_iter()
            .map(view)
            .collect(),
    ))
}

async fn get_one(
    State(state): State<AppState>,
    _r: Reader,
    Path(name): Path<String>,
) -> Result<Json<ProfileView>, Error> {
    Ok(Json(view(state.services.profiles.get(&name).await?)))
}

async fn create(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<Value>,
) -> Result<Response, Error> {
    let rec = state.services.profiles.create(body, &auth.actor).await?;
    Ok((StatusCode::CREATED, Json(view(rec))).into_response())
}

async fn update(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<ProfileView>, Error> {
    let rec = state
        .services
        .profiles
        .update(&name, body, &auth.actor)
        .await?;
    Ok(Json(view(rec)))
}

async fn delete(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, Error> {
    state.services.profiles.delete(&name, &auth.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
