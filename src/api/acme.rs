//! `/api/v1/acme/...`: administration of the ACME server.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::Admin;
use super::extract::Json;
use crate::error::AppError;
use crate::server::AppState;
use crate::store::new_id;

/// Routes.
pub(super) fn router() -> Router<AppState> {
    Router::new().route("/acme/renewal-windows", post(move_window))
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
) -> Result<(StatusCode, Json<Window>), AppError> {
    if body.end <= body.start {
        return Err(AppError::BadRequest("end must be after start".into()));
    }
    let store = state.pki.store();
    let (ca, certificate) = match (&body.ca, &body.certificate) {
        (Some(ca), None) => (Some(store.get_ca(ca).await?.id), None),
        (None, Some(c)) => (None, Some(store.get_certificate(c).await?.id)),
        _ => {
            return Err(AppError::BadRequest(
                "give exactly one of \"ca\" and \"certificate\"".into(),
            ));
        }
    };
    let id = new_id();
    let ev = auth
        .actor
        .event("acme.renewal_window.move", "acme_renewal_window")
        .object(&id)
        .detail(serde_json::json!({
            "ca": ca, "certificate": certificate,
            "start": body.start.unix_timestamp(), "end": body.end.unix_timestamp(),
        }));
    store
        .acme_renewal_override_insert(
            &id,
            ca.as_deref(),
            certificate.as_deref(),
            body.start.unix_timestamp(),
            body.end.unix_timestamp(),
            &ev,
            state.pki.now().unix_timestamp(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Window {
            id,
            ca,
            certificate,
            start: body.start,
            end: body.end,
        }),
    ))
}
