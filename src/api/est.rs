//! `/api/v1/est/...`: EST labels (which profile a `/.well-known/est/<label>/` path uses) and
//! EST HTTP Basic credentials (password shown once, stored hashed). Admin only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::extract::{Json, Path};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::services::est::NewCredential;
use crate::store::{EstCredential, EstLabel};

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_labels, create_label))
        .routes(routes!(delete_label))
        .routes(routes!(list_credentials, create_credential))
        .routes(routes!(revoke_credential))
}

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
    Ok(Json(state.services.est.labels().await?))
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
    state.services.est.delete_label(&label, &auth.actor).await?;
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
    /// Lifetime in days (at most 36500); null or left out: never expires.
    #[schema(minimum = 1, maximum = 36500)]
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

impl utoipa::PartialSchema for CreatedCredential {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::openapi::with_secret::<EstCredential>(
            "password",
            "The password, shown only now.",
            "A new EST credential with its password.",
        )
    }
}

impl utoipa::ToSchema for CreatedCredential {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("EstCredentialCreated")
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <EstCredential as utoipa::ToSchema>::schemas(schemas);
    }
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
        (status = 201, description = "The credential and its password.", content((CreatedCredential = "application/json"))),
        (status = 400, description = "Invalid body, a malformed user name, an unknown label, a password under 12 characters, `expires_in_days` outside 1-36500, or `max_uses` 0.", content((schemas::Problem = "application/problem+json"))),
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
    Ok(Json(state.services.est.credentials().await?))
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
    state
        .services
        .est
        .revoke_credential(&id, &auth.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
