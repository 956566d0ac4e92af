//! `/api/v1/acme/...`: administration of the ACME server.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::extract::Json;
use super::openapi::{responses, schemas};
use crate::error::Error;
use crate::server::AppState;
use crate::store::AcmeEabKey;

/// Routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(move_window))
        .routes(routes!(list_eab, create_eab))
}

/// Body of `POST /acme/eab-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateEabKeyRequest)]
struct CreateEab {
    /// A profile with an ACME directory.
    profile: String,
    /// A label.
    #[serde(default)]
    #[schema(default = "", max_length = 100)]
    name: String,
}

/// A new EAB key: the only time its MAC key is shown.
#[derive(Debug, Serialize)]
struct CreatedEab {
    #[serde(flatten)]
    key: AcmeEabKey,
    /// base64url HMAC key, for the client's `--eab-hmac-key`.
    hmac_key: String,
}

/// Create an external account binding key for a profile's ACME directory.
#[utoipa::path(
    post,
    path = "/acme/eab-keys",
    operation_id = "createAcmeEabKey",
    tag = "ACME",
    summary = "Create an external account binding key",
    description = "An HS256 key that registers one ACME account in the directory of `profile` (RFC 8555 §7.3.4). The MAC key is returned once and stored sealed. Directories listed in the `acme.eab_required` setting accept only accounts registered with such a key. Admin token.",
    request_body(content((CreateEab = "application/json")), description = "The profile the key is for."),
    responses(
        (status = 201, description = "The key, with its MAC key (shown once).", content((schemas::CreatedEabKey = "application/json"))),
        (status = 400, description = "The profile has no ACME directory, or the name is too long.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such profile.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn create_eab(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<CreateEab>,
) -> Result<(StatusCode, Json<CreatedEab>), Error> {
    let (key, secret) = state
        .services
        .acme
        .create_eab_key(body.profile, body.name, &auth.actor)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEab {
            key,
            hmac_key: certkeeper_acme::b64(&secret),
        }),
    ))
}

/// The EAB keys, without their secrets.
#[derive(Debug, Serialize, ToSchema)]
struct EabList {
    items: Vec<AcmeEabKey>,
}

#[utoipa::path(
    get,
    path = "/acme/eab-keys",
    operation_id = "listAcmeEabKeys",
    tag = "ACME",
    summary = "List external account binding keys",
    description = "Every EAB key, newest first, without its MAC key. Admin token.",
    responses(
        (status = 200, description = "The keys.", content((inline(EabList) = "application/json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 500, response = responses::InternalError),
    )
)]
async fn list_eab(State(state): State<AppState>, _a: Admin) -> Result<Json<EabList>, Error> {
    Ok(Json(EabList {
        items: state.services.acme.eab_keys().await?,
    }))
}

/// Body of `POST /acme/renewal-windows`: exactly one of `ca` and `certificate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RenewalWindowRequest)]
struct WindowRequest {
    /// A CA id or name: every certificate it issued. Give this or `certificate`.
    ca: Option<String>,
    /// One certificate id. Give this or `ca`.
    certificate: Option<String>,
    /// Start of the suggested renewal window.
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    /// End of the suggested renewal window (after `start`).
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
}

/// A recorded renewal window.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RenewalWindow)]
struct Window {
    id: String,
    /// The CA id, for a CA-wide window.
    #[schema(required = true)]
    ca: Option<String>,
    /// The certificate id, for one certificate.
    #[schema(required = true)]
    certificate: Option<String>,
    /// Start of the window.
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    /// End of the window.
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
}

/// Move the ACME renewal window (RFC 9773 `renewalInfo`) of one certificate, or of every
/// certificate a CA issued, so that ACME clients renew early.
#[utoipa::path(
    post,
    path = "/acme/renewal-windows",
    operation_id = "moveAcmeRenewalWindow",
    tag = "ACME",
    summary = "Move the ACME renewal window of certificates",
    description = "Sets the `suggestedWindow` that ACME Renewal Information (RFC 9773) reports for one certificate, or for every certificate a CA issued, so that ACME clients renew early. The newest window for a certificate or its CA wins. Admin token.",
    request_body(content((WindowRequest = "application/json")), description = "The certificates and the new window."),
    responses(
        (status = 201, description = "The window was recorded.", content((Window = "application/json"))),
        (status = 400, description = "Neither or both of `ca` and `certificate`, or `end` not after `start`.", content((schemas::Problem = "application/problem+json"))),
        (status = 401, response = responses::Unauthorized),
        (status = 403, description = "The token is not an admin token.", content((schemas::Problem = "application/problem+json"))),
        (status = 404, description = "No such CA or certificate.", content((schemas::Problem = "application/problem+json"))),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 415, response = responses::UnsupportedMediaType),
        (status = 500, response = responses::InternalError),
    )
)]
async fn move_window(
    State(state): State<AppState>,
    Admin(auth): Admin,
    Json(body): Json<WindowRequest>,
) -> Result<(StatusCode, Json<Window>), Error> {
    let w = state
        .services
        .acme
        .move_renewal_window(
            body.ca.as_deref(),
            body.certificate.as_deref(),
            body.start,
            body.end,
            &auth.actor,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Window {
            id: w.id,
            ca: w.ca,
            certificate: w.certificate,
            start: w.start,
            end: w.end,
        }),
    ))
}
