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
use crate::store::{AcmeEabKey, new_id};

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
    if body.name.len() > 100 {
        return Err(Error::BadRequest(
            "name must be at most 100 characters".into(),
        ));
    }
    let pki = &state.pki;
    if !pki.settings().acme.serves(&body.profile) {
        return Err(Error::BadRequest(format!(
            "profile {:?} has no ACME directory (see acme.default_profile and acme.profiles)",
            body.profile
        )));
    }
    pki.profile(&body.profile).await?;
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret)
        .map_err(|_| Error::Internal("random generator failed".into()))?;
    let key = AcmeEabKey {
        id: new_id(),
        profile: body.profile,
        name: body.name,
        account_id: None,
        created_at: pki.now().unix_timestamp(),
        created_by: auth.actor.name.clone(),
    };
    let sealed = pki
        .master()
        .seal(&secret, format!("acme-eab:{}", key.id).as_bytes())?;
    let ev = auth
        .actor
        .event("acme.eab_key.create", "acme_eab_key")
        .object(&key.id)
        .detail(serde_json::json!({"profile": key.profile, "name": key.name}));
    pki.store().acme_eab_insert(&key, &sealed, &ev).await?;
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
        items: state.pki.store().acme_eab_list().await?,
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
    if body.end <= body.start {
        return Err(Error::BadRequest("end must be after start".into()));
    }
    let store = state.pki.store();
    let (ca, certificate) = match (&body.ca, &body.certificate) {
        (Some(ca), None) => (Some(store.get_ca(ca).await?.id), None),
        (None, Some(c)) => (None, Some(store.get_certificate(c).await?.id)),
        _ => {
            return Err(Error::BadRequest(
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
