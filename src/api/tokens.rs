//! `/api/v1/tokens`: API tokens, shown once.

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
use crate::services::tokens::NewToken;
use crate::store::{Role, TokenRecord};

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// Body of `POST /tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateTokenRequest)]
struct CreateToken {
    /// Human name, 1 to 100 characters, not blank.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    role: Role,
    /// Names (or ids) of existing profiles the token may use; required for `issuer`, refused for the other roles.
    #[serde(default)]
    #[schema(default = json!([]))]
    profiles: Vec<String>,
    /// Names (or ids) of the managed certificates an `agent` token may fetch (with their keys) and report deployments of: 1 to 100, required for `agent`, refused for the other roles.
    #[serde(default)]
    #[schema(default = json!([]), max_items = 100)]
    managed: Vec<String>,
    /// Lifetime in days (at most 36500); null or left out: never expires.
    #[schema(minimum = 1, maximum = 36500)]
    expires_in_days: Option<u32>,
}

/// A new token: the only time its secret is shown.
#[derive(Debug, Serialize)]
struct Created {
    #[serde(flatten)]
    record: TokenRecord,
    token: String,
}

impl utoipa::PartialSchema for Created {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::openapi::with_secret::<TokenRecord>(
            "token",
            "The secret (`ck_...`), shown only now.",
            "A new token with its secret.",
        )
    }
}

impl utoipa::ToSchema for Created {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("TokenCreated")
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <TokenRecord as utoipa::ToSchema>::schemas(schemas);
    }
}

#[utoipa::path(
    post,
    path = "/tokens",
    operation_id = "createToken",
    tag = "Tokens",
    summary = "Create a token",
    description = "Creates a token; its secret is in the answer and never shown again. Admin token.",
    request_body(content((CreateToken = "application/json")), description = "The new token."),
    responses(
        (status = 201, description = "The token and its secret.", content((Created = "application/json"))),
        (status = 400, description = "Invalid body, a name that is empty or over 100 characters, an issuer token without `profiles`, `profiles` on another role, an agent token without `managed` (or with more than 100), `managed` on another role, an unknown profile or managed certificate, or `expires_in_days` outside 1-36500.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn create(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateToken>,
) -> Result<Response, Error> {
    let new = NewToken {
        name: body.name,
        role: body.role,
        profiles: body.profiles,
        managed: body.managed,
        expires_in_days: body.expires_in_days,
    };
    let (record, token) = state.services.tokens.create(new, &auth.actor).await?;
    Ok((StatusCode::CREATED, Json(Created { record, token })).into_response())
}

#[utoipa::path(
    get,
    path = "/tokens",
    operation_id = "listTokens",
    tag = "Tokens",
    summary = "List tokens",
    description = "Every token, revoked and expired ones included, oldest first; never the secrets. Admin token.",
    responses(
        (status = 200, description = "The tokens.", content((Vec<TokenRecord> = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list(State(state): State<AppState>, _a: Admin) -> Result<Json<Vec<TokenRecord>>, Error> {
    Ok(Json(state.services.tokens.list().await?))
}

#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    operation_id = "revokeToken",
    tag = "Tokens",
    summary = "Revoke a token",
    description = "The token stops working at once; it stays listed with `revoked_at`. Admin token.",
    params(
        ("id" = String, Path, description = "The token's id (not its secret)."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such token, or it is already revoked.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn revoke(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    state.services.tokens.revoke(&id, &auth.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
