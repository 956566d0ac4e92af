//! `/api/v1/est/...`: EST labels (which profile a `/.well-known/est/<label>/` path uses) and
//! EST HTTP Basic credentials (password shown once, stored hashed). Admin only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::extract::{Json, Path};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::est::auth::{hash_password, new_password};
use crate::server::AppState;
use crate::store::{EstCredential, EstLabel, StoreError, new_id};

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_labels, create_label))
        .routes(routes!(delete_label))
        .routes(routes!(list_credentials, create_credential))
        .routes(routes!(revoke_credential))
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateEstLabelRequest)]
struct CreateLabel {
    /// The path segment; not an EST operation name.
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")]
    label: String,
    /// Name or id of an existing profile.
    profile: String,
    /// Refuse enrollments whose CSR lacks the connection's tls-exporter channel binding (RFC 9266) in challengePassword.
    #[serde(default)]
    #[schema(default = false)]
    require_channel_binding: bool,
}

async fn profile_exists(state: &AppState, name: &str) -> Result<String, Error> {
    match state.pki.store().get_profile(name).await {
        Ok(p) => Ok(p.policy.name),
        Err(StoreError::NotFound(_)) => Err(Error::BadRequest(format!("no profile {name:?}"))),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    post,
    path = "/est/labels",
    operation_id = "createEstLabel",
    tag = "EST",
    summary = "Create an EST label",
    description = "`/.well-known/est/<label>/` then enrolls under the label's profile (and so its CA). Admin token.",
    request_body(content((CreateLabel = "application/json")), description = "The new label."),
    responses(
        (status = 201, description = "The label.", content((EstLabel = "application/json"))),
        (status = 400, description = "Invalid body, a malformed label, a label named like an EST operation, or an unknown profile.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "The label exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    get,
    path = "/est/labels",
    operation_id = "listEstLabels",
    tag = "EST",
    summary = "List EST labels",
    description = "Every label, by name. Admin token.",
    responses(
        (status = 200, description = "The labels.", content((Vec<EstLabel> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_labels(
    State(state): State<AppState>,
    _a: Admin,
) -> Result<Json<Vec<EstLabel>>, Error> {
    Ok(Json(state.pki.store().list_est_labels().await?))
}

#[utoipa::path(
    delete,
    path = "/est/labels/{label}",
    operation_id = "deleteEstLabel",
    tag = "EST",
    summary = "Delete an EST label",
    description = "The label's path stops working and its credentials are revoked. Admin token.",
    params(
        ("label" = String, Path, description = "The label."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such label.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateEstCredentialRequest)]
struct CreateCredential {
    /// Unique user name, without `:`.
    #[schema(min_length = 1, max_length = 100)]
    username: String,
    /// The label it enrolls under; none for the bare `/.well-known/est/` path.
    label: Option<String>,
    /// A chosen password (at least 12 characters); one is generated when absent.
    #[schema(min_length = 12)]
    password: Option<String>,
    /// Lifetime in days; null or left out: never expires.
    #[schema(minimum = 1)]
    expires_in_days: Option<u32>,
    /// How many enrollments it allows (1 for a one-time bootstrap password).
    #[schema(minimum = 1)]
    max_uses: Option<u32>,
}

/// A new credential: the only time its password is shown.
#[derive(Debug, Serialize)]
struct CreatedCredential {
    #[serde(flatten)]
    record: EstCredential,
    password: String,
}

#[utoipa::path(
    post,
    path = "/est/credentials",
    operation_id = "createEstCredential",
    tag = "EST",
    summary = "Create an EST credential",
    description = "HTTP Basic credentials for EST enrollment under one label (or the bare path). The password is in the answer and never shown again; it is stored as a PBKDF2 hash. `max_uses: 1` makes a one-time bootstrap password. Admin token.",
    request_body(content((CreateCredential = "application/json")), description = "The new credential."),
    responses(
        (status = 201, description = "The credential and its password.", content((schemas::EstCredentialCreated = "application/json"))),
        (status = 400, description = "Invalid body, a malformed user name, an unknown label, a password under 12 characters, or `expires_in_days` or `max_uses` 0.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A credential with this user name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
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

#[utoipa::path(
    get,
    path = "/est/credentials",
    operation_id = "listEstCredentials",
    tag = "EST",
    summary = "List EST credentials",
    description = "Every EST credential, revoked and used-up ones included, oldest first; never the passwords. Admin token.",
    responses(
        (status = 200, description = "The credentials.", content((Vec<EstCredential> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_credentials(
    State(state): State<AppState>,
    _a: Admin,
) -> Result<Json<Vec<EstCredential>>, Error> {
    Ok(Json(state.pki.store().list_est_credentials().await?))
}

#[utoipa::path(
    delete,
    path = "/est/credentials/{id}",
    operation_id = "revokeEstCredential",
    tag = "EST",
    summary = "Revoke an EST credential",
    description = "The credential stops working at once; it stays listed with `revoked_at`. Admin token.",
    params(
        ("id" = String, Path, description = "The credential's id."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such credential, or it is already revoked.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
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
