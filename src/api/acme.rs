//! `/api/v1/acme/...`: administration of the ACME server.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::Admin;
use super::extract::Json;
use crate::error::Error;
use crate::server::AppState;
use crate::store::AcmeEabKey;

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/acme/renewal-windows", post(move_window))
        .route("/acme/eab-keys", get(list_eab).post(create_eab))
}

/// Body of `POST /acme/eab-keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEab {
    profile: String,
    #[serde(default)]
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
#[derive(Debug, Serialize)]
struct EabList {
    items: Vec<AcmeEabKey>,
}

async fn list_eab(State(state): State<AppState>, _a: Admin) -> Result<Json<EabList>, Error> {
    Ok(Json(EabList {
        items: state.services.acme.eab_keys().await?,
    }))
}

/// Body of `POST /acme/renewal-windows`: exactly one of `ca` and `certificate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowRequest {
    ca: Option<String>,
    certificate: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
}

/// A recorded renewal window.
#[derive(Debug, Serialize)]
struct Window {
    id: String,
    ca: Option<String>,
    certificate: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
}

/// Move the ACME renewal window (RFC 9773 `renewalInfo`) of one certificate, or of every
/// certificate a CA issued, so that ACME clients renew early.
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
