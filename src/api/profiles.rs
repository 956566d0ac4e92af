//! `/api/v1/profiles`: issuance templates with policy.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certkeeper_ca::Profile;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use time::OffsetDateTime;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Reader};
use super::extract::{Json, Path};
use super::openapi::{extend_object, responses, schemas, string_property};
use crate::error::Error;
use crate::server::AppState;
use crate::store::ProfileRecord;

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
}

/// A profile as the API shows it: the policy fields plus `ca`.
#[derive(Debug, Serialize)]
struct ProfileView {
    id: String,
    ca: String,
    #[serde(flatten)]
    policy: Profile,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// The `Profile` component: the policy's schema with the id, the CA and the times.
impl PartialSchema for ProfileView {
    fn schema() -> RefOr<Schema> {
        let mut object = extend_object::<Profile>(
            [
                ("id", string_property("Id (UUID).", false), true),
                ("ca", string_property("The signing CA's id.", false), true),
                ("created_at", string_property("When created.", true), true),
                (
                    "updated_at",
                    string_property("When last changed.", true),
                    true,
                ),
            ],
            "A profile: its id, signing CA and policy.",
        );
        // An answer has every field, and no more than the policy refuses in requests.
        object.required = object.properties.keys().cloned().collect();
        object.additional_properties = None;
        RefOr::T(Schema::Object(object))
    }
}

impl ToSchema for ProfileView {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Profile")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <Profile as ToSchema>::schemas(schemas);
    }
}

/// The body of `POST /profiles`, read by `ProfileService::create` (the `ca` and the policy).
struct CreateProfileRequest;

impl PartialSchema for CreateProfileRequest {
    fn schema() -> RefOr<Schema> {
        let ca = string_property("The signing CA's id or name; it must be active.", false);
        RefOr::T(Schema::Object(extend_object::<Profile>(
            [("ca", ca, true)],
            "A profile's signing CA and policy. Every policy field but `name` has a default.",
        )))
    }
}

impl ToSchema for CreateProfileRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <Profile as ToSchema>::schemas(schemas);
    }
}

/// The body of `PUT /profiles/{name}`, read by `ProfileService::update`: the whole new
/// policy, the name optional (it cannot change), and optionally a new CA.
struct UpdateProfileRequest;

impl PartialSchema for UpdateProfileRequest {
    fn schema() -> RefOr<Schema> {
        let ca = string_property(
            "A new signing CA's id or name (it must be active); the current CA is kept when \
             left out.",
            false,
        );
        let mut object = extend_object::<Profile>(
            [("ca", ca, false)],
            "The complete new policy: fields left out take their defaults.",
        );
        object.required.clear();
        if let Some(RefOr::T(Schema::Object(name))) = object.properties.get_mut("name") {
            name.description =
                Some("May be left out; if given it must be the profile's current name.".into());
        }
        RefOr::T(Schema::Object(object))
    }
}

impl ToSchema for UpdateProfileRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <Profile as ToSchema>::schemas(schemas);
    }
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

#[utoipa::path(
    get,
    path = "/profiles",
    operation_id = "listProfiles",
    tag = "Profiles",
    summary = "List profiles",
    description = "Every profile, by name. Any valid token.",
    responses(
        (status = 200, description = "The profiles.", content((Vec<ProfileView> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 500, response = responses::InternalError),
    )
)]
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
        (status = 200, description = "The profile.", content((ProfileView = "application/json"))),
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
    Ok(Json(view(state.services.profiles.get(&name).await?)))
}

#[utoipa::path(
    post,
    path = "/profiles",
    operation_id = "createProfile",
    tag = "Profiles",
    summary = "Create a profile",
    description = "Creates a profile signed by an active CA. Every policy field has a default. Admin token.",
    request_body(content((CreateProfileRequest = "application/json")), description = "The profile's CA and policy."),
    responses(
        (status = 201, description = "The new profile.", content((ProfileView = "application/json"))),
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
    let rec = state.services.profiles.create(body, &auth.actor).await?;
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
    request_body(content((UpdateProfileRequest = "application/json")), description = "The new policy, and optionally a new CA."),
    responses(
        (status = 200, description = "The updated profile.", content((ProfileView = "application/json"))),
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
    let rec = state
        .services
        .profiles
        .update(&name, body, &auth.actor)
        .await?;
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
    state.services.profiles.delete(&name, &auth.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
