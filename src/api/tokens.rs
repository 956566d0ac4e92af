//! `/api/v1/tokens`: API tokens, shown once.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use time::Duration;

use super::auth::{Admin, new_token};
use super::extract::{Json, Path};
use crate::error::Error;
use crate::server::AppState;
use crate::store::{Role, TokenRecord, new_id};

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
    if body.name.trim().is_empty() || body.name.len() > 100 {
        return Err(Error::BadRequest("name must be 1 to 100 characters".into()));
    }
    match (body.role, body.profiles.is_empty()) {
        (Role::Issuer, true) => {
            return Err(Error::BadRequest(
                "an issuer token needs \"profiles\": the profiles it may use".into(),
            ));
        }
        (Role::Admin | Role::Viewer, false) => {
            return Err(Error::BadRequest(
                "\"profiles\" applies to issuer tokens only".into(),
            ));
        }
        _ => {}
    }
    for p in &body.profiles {
        state
            .pki
            .store()
            .get_profile(p)
            .await
            .map_err(|_| Error::BadRequest(format!("no profile {p:?}")))?;
    }
    if body.expires_in_days == Some(0) {
        return Err(Error::BadRequest(
            "expires_in_days must be at least 1".into(),
        ));
    }
    let now = state.pki.now();
    let (token, hash) = new_token()?;
    let rec = TokenRecord::new(
        new_id(),
        body.name,
        body.role,
        body.profiles,
        hash,
        now,
        body.expires_in_days.map(|d| now + Duration::days(d.into())),
        auth.actor.name.clone(),
    );
    let ev = auth
        .actor
        .event("token.create", "token")
        .object(&rec.id)
        .detail(serde_json::json!({"name": rec.name, "role": rec.role, "profiles": rec.profiles}));
    state.pki.store().insert_token(&rec, &ev).await?;
    Ok((StatusCode::CREATED, Json(Created { record: rec, token })).into_response())
}

async fn list(State(state): State<AppState>, _a: Admin) -> Result<Json<Vec<TokenRecord>>, Error> {
    Ok(Json(state.pki.store().list_tokens().await?))
}

async fn revoke(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let ev = auth.actor.event("token.revoke", "token").object(&id);
    state
        .pki
        .store()
        .revoke_token(&id, &ev, state.pki.now())
        .await?;
    state.pki.invalidate_tokens();
    Ok(StatusCode::NO_CONTENT)
}
