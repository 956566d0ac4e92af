//! `/api/v1/profiles`: issuance templates with policy.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certkeeper_ca::Profile;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Reader};
use super::extract::{Json, Path};
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::store::{ProfileRecord, new_id};

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
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

/// Split a body into its `ca` and a validated policy.
fn parse_body(
    mut body: Value,
    name_from_path: Option<&str>,
) -> Result<(Option<String>, Profile), Error> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| Error::BadRequest("the body must be a JSON object".into()))?;
    let ca = match obj.remove("ca") {
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(Error::BadRequest(
                "\"ca\" must be a string (CA id or name)".into(),
            ));
        }
        None => None,
    };
    if let Some(name) = name_from_path {
        match obj.get("name") {
            Some(Value::String(n)) if n != name => {
                return Err(Error::BadRequest(
                    "a profile cannot be renamed: \"name\" differs from the path".into(),
                ));
            }
            _ => {
                obj.insert("name".into(), Value::String(name.to_string()));
            }
        }
    }
    let policy: Profile = serde_json::from_value(body)
        .map_err(|e| Error::BadRequest(format!("invalid profile: {e}")))?;
    policy
        .validate()
        .map_err(|v| Error::BadRequest(format!("invalid profile: {}: {}", v.rule, v.detail)))?;
    Ok((ca, policy))
}

#[utoipa::path(
    get,
    path = "/profiles",
    operation_id = "listProfiles",
    tag = "Profiles",
    summary = "List profiles",
    description = "Every profile, by name. Any valid token.",
    responses(
        (status = 200, description = "The profiles.", content((Vec<schemas::Profile> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list(State(state): State<AppState>, _r: Reader) -> Result<Json<Vec<ProfileView>>, Error> {
    Ok(Json(
        state
            .pki
            .store()
            .list_profiles()
            .await?
            .into_iter()
            .map(view)
            .collect(),
    ))
}

#[utoipa::path(
    get,
    path = "/profiles/{name}",
    operation_id = "getProfile",
    tag = "Profiles",
    summary = "Get a profile",
    description = "Any valid token.",
    params(
        ("name" = String, Path, description = "The profile's name or id."),
    ),
    responses(
        (status = 200, description = "The profile.", content((schemas::Profile = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "No such profile.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    _r: Reader,
    Path(name): Path<String>,
) -> Result<Json<ProfileView>, Error> {
    Ok(Json(view(state.pki.store().get_profile(&name).await?)))
}

async fn resolve_ca(state: &AppState, ca: &str) -> Result<String, Error> {
    match state.pki.store().get_ca(ca).await {
        Ok(c) if c.status == "active" => Ok(c.id),
        Ok(c) => Err(Error::BadRequest(format!(
            "CA {:?} is {}, not active",
            c.name, c.status
        ))),
        Err(crate::store::StoreError::NotFound(_)) => {
            Err(Error::BadRequest(format!("no CA {ca:?}")))
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    post,
    path = "/profiles",
    operation_id = "createProfile",
    tag = "Profiles",
    summary = "Create a profile",
    description = "Creates a profile signed by an active CA. Every policy field has a default. Admin token.",
    request_body(content((schemas::CreateProfileRequest = "application/json")), description = "The profile's CA and policy."),
    responses(
        (status = 201, description = "The new profile.", content((schemas::Profile = "application/json"))),
        (status = 400, description = "Not a JSON object, `ca` missing or not a string, no such CA, the CA is not active, invalid or unknown policy fields, or a policy that contradicts itself (`name`, `max_validity_days`, `default_validity_days`, `allowed_key_types`, `max_names`).", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 409, description = "A profile with this name exists.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn create(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<Value>,
) -> Result<Response, Error> {
    let (ca, policy) = parse_body(body, None)?;
    let ca = ca.ok_or_else(|| {
        Error::BadRequest("\"ca\" (the signing CA's id or name) is required".into())
    })?;
    let ca_id = resolve_ca(&state, &ca).await?;
    // Stored to the second; answer what a later GET will show.
    let now = state
        .pki
        .now()
        .replace_nanosecond(0)
        .unwrap_or(state.pki.now());
    let rec = ProfileRecord {
        id: new_id(),
        ca_id,
        policy,
        created_at: now,
        updated_at: now,
    };
    let ev = auth
        .actor
        .event("profile.create", "profile")
        .object(&rec.id)
        .detail(serde_json::json!({"name": rec.policy.name}));
    state.pki.store().insert_profile(&rec, &ev).await?;
    state.pki.invalidate_profiles();
    Ok((StatusCode::CREATED, Json(view(rec))).into_response())
}

#[utoipa::path(
    put,
    path = "/profiles/{name}",
    operation_id = "updateProfile",
    tag = "Profiles",
    summary = "Replace a profile's policy",
    description = "Replaces the whole policy: fields left out take their defaults again (this is not a merge). The name cannot change; `ca` is kept when left out. Admin token.",
    params(
        ("name" = String, Path, description = "The profile's name or id."),
    ),
    request_body(content((schemas::UpdateProfileRequest = "application/json")), description = "The new policy, and optionally a new CA."),
    responses(
        (status = 200, description = "The updated profile.", content((schemas::Profile = "application/json"))),
        (status = 400, description = "Not a JSON object, `ca` not a string, no such CA, the CA is not active, `name` differs from the profile's name, invalid or unknown policy fields, or a policy that contradicts itself.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such profile.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn update(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<ProfileView>, Error> {
    let existing = state.pki.store().get_profile(&name).await?;
    let (ca, policy) = parse_body(body, Some(&existing.policy.name))?;
    let ca_id = match ca {
        Some(c) => resolve_ca(&state, &c).await?,
        None => existing.ca_id.clone(),
    };
    let rec = ProfileRecord {
        id: existing.id,
        ca_id,
        policy,
        created_at: existing.created_at,
        updated_at: state
            .pki
            .now()
            .replace_nanosecond(0)
            .unwrap_or(state.pki.now()),
    };
    let ev = auth
        .actor
        .event("profile.update", "profile")
        .object(&rec.id)
        .detail(serde_json::json!({"name": rec.policy.name}));
    state.pki.store().update_profile(&rec, &ev).await?;
    state.pki.invalidate_profiles();
    Ok(Json(view(rec)))
}

#[utoipa::path(
    delete,
    path = "/profiles/{name}",
    operation_id = "deleteProfile",
    tag = "Profiles",
    summary = "Delete a profile",
    description = "Certificates issued under it keep its name. Admin token.",
    params(
        ("name" = String, Path, description = "The profile's name or id."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such profile.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn delete(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, Error> {
    let existing = state.pki.store().get_profile(&name).await?;
    let ev = auth
        .actor
        .event("profile.delete", "profile")
        .object(&existing.id)
        .detail(serde_json::json!({"name": existing.policy.name}));
    state
        .pki
        .store()
        .delete_profile(&existing.policy.name, &ev, state.pki.now())
        .await?;
    state.pki.invalidate_profiles();
    Ok(StatusCode::NO_CONTENT)
}
