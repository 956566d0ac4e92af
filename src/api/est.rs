//! `/api/v1/est/...`: EST labels (which profile a `/.well-known/est/<label>/` path uses) and
//! EST HTTP Basic credentials (password shown once, stored hashed). Admin only.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use time::Duration;

use super::auth::Admin;
use super::extract::{Json, Path};
use crate::error::Error;
use crate::est::auth::{hash_password, new_password};
use crate::server::AppState;
use crate::store::{EstCredential, EstLabel, StoreError, new_id};

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

/// EST operation names, which a label may not shadow.
const OPERATIONS: [&str; 5] = [
    "cacerts",
    "csrattrs",
    "simpleenroll",
    "simplereenroll",
    "serverkeygen",
];

/// Body of `POST /est/labels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLabel {
    label: String,
    profile: String,
    #[serde(default)]
    require_channel_binding: bool,
}

async fn profile_exists(state: &AppState, name: &str) -> Result<String, Error> {
    match state.pki.store().get_profile(name).await {
        Ok(p) => Ok(p.policy.name),
        Err(StoreError::NotFound(_)) => Err(Error::BadRequest(format!("no profile {name:?}"))),
        Err(e) => Err(e.into()),
    }
}

async fn create_label(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateLabel>,
) -> Result<Response, Error> {
    let l = &body.label;
    if l.is_empty()
        || l.len() > 64
        || !l
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || l.starts_with('.')
    {
        return Err(Error::BadRequest(
            "label must be 1 to 64 letters, digits, '-', '_' or '.' (not starting with '.')".into(),
        ));
    }
    if OPERATIONS.contains(&l.as_str()) {
        return Err(Error::BadRequest(format!(
            "label {l:?} is the name of an EST operation"
        )));
    }
    let profile = profile_exists(&state, &body.profile).await?;
    let rec = EstLabel {
        label: body.label,
        profile,
        require_channel_binding: body.require_channel_binding,
        created_at: state.pki.now(),
        created_by: auth.actor.name.clone(),
    };
    let ev = auth
        .actor
        .event("est_label.create", "est_label")
        .object(&rec.label)
        .detail(serde_json::json!({"profile": rec.profile, "require_channel_binding": rec.require_channel_binding}));
    state.pki.store().insert_est_label(&rec, &ev).await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

async fn list_labels(
    State(state): State<AppState>,
    _a: Admin,
) -> Result<Json<Vec<EstLabel>>, Error> {
    Ok(Json(state.pki.store().list_est_labels().await?))
}

async fn delete_label(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(label): Path<String>,
) -> Result<StatusCode, Error> {
    let ev = auth
        .actor
        .event("est_label.delete", "est_label")
        .object(&label);
    state
        .pki
        .store()
        .delete_est_label(&label, &ev, state.pki.now())
        .await?;
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
    let u = &body.username;
    if u.is_empty() || u.len() > 100 || u.contains(':') || u.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "username must be 1 to 100 characters, without ':' or control characters".into(),
        ));
    }
    let label = body.label.unwrap_or_default();
    if !label.is_empty() {
        match state.pki.store().get_est_label(&label).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                return Err(Error::BadRequest(format!("no EST label {label:?}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let password = match body.password {
        Some(p) if p.chars().count() >= 12 => p,
        Some(_) => {
            return Err(Error::BadRequest(
                "password must be at least 12 characters (or leave it out to have one generated)"
                    .into(),
            ));
        }
        None => new_password()?,
    };
    if body.expires_in_days == Some(0) {
        return Err(Error::BadRequest(
            "expires_in_days must be at least 1".into(),
        ));
    }
    if body.max_uses == Some(0) {
        return Err(Error::BadRequest("max_uses must be at least 1".into()));
    }
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let now = state.pki.now();
    let rec = EstCredential::new(
        new_id(),
        body.username,
        label,
        hash,
        body.expires_in_days.map(|d| now + Duration::days(d.into())),
        body.max_uses.map(i64::from),
        now,
        auth.actor.name.clone(),
    );
    let ev = auth
        .actor
        .event("est_credential.create", "est_credential")
        .object(&rec.id)
        .detail(serde_json::json!({"username": rec.username, "label": rec.label, "max_uses": rec.uses_left}));
    state.pki.store().insert_est_credential(&rec, &ev).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedCredential {
            record: rec,
            password,
        }),
    )
        .into_response())
}

async fn list_credentials(
    State(state): State<AppState>,
    _a: Admin,
) -> Result<Json<Vec<EstCredential>>, Error> {
    Ok(Json(state.pki.store().list_est_credentials().await?))
}

async fn revoke_credential(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let ev = auth
        .actor
        .event("est_credential.revoke", "est_credential")
        .object(&id);
    state
        .pki
        .store()
        .revoke_est_credential(&id, &ev, state.pki.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
