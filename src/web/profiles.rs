//! Profiles: each policy readable; admins edit the policy document and see the service's
//! validation message when it is refused.

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{WebError, check_csrf, csrf_field, is_admin, page, when, with_status};
use super::session::Signed;
use crate::error::Error;
use crate::server::AppState;
use crate::services::sessions::Session;
use crate::store::ProfileRecord;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/profiles", get(list))
        .route("/profiles/{name}", get(detail).post(update))
}

async fn list(State(state): State<AppState>, Signed(s): Signed) -> Result<Markup, WebError> {
    let profiles = state.services.profiles.list().await?;
    let body = html! {
        table #profiles {
            thead { tr { th { "Name" } th { "CA" } th { "Policy" } th { "Changed" } } }
            tbody {
                @for p in &profiles {
                    tr {
                        td { a href=(format!("/profiles/{}", p.policy.name)) { (p.policy.name) } }
                        td { a href=(format!("/hierarchy#ca-{}", p.ca_id)) { (p.ca_id) } }
                        td.mono.small { (serde_json::to_string(&p.policy).unwrap_or_default()) }
                        td { (when(p.updated_at)) }
                    }
                }
            }
        }
    };
    Ok(page(&s, "Profiles", "/profiles", body))
}

/// The policy document as the API reads and writes it (without `ca`, which keeps its CA).
fn document(p: &ProfileRecord) -> String {
    serde_json::to_string_pretty(&p.policy).unwrap_or_default()
}

fn profile_page(s: &Session, p: &ProfileRecord, text: &str, message: Option<&str>) -> Markup {
    let body = html! {
        p { "Signed by CA " a href=(format!("/hierarchy#ca-{}", p.ca_id)) { (p.ca_id) }
            ". Last changed " (when(p.updated_at)) "." }
        @if let Some(m) = message { p.error role="alert" #profile-error { (m) } }
        @if is_admin(s) {
            form method="post" action=(format!("/profiles/{}", p.policy.name)) {
                (csrf_field(s))
                label { "Policy (JSON)" textarea name="document" rows="24" spellcheck="false" .mono { (text) } }
                button type="submit" #profile-save { "Save" }
            }
        } @else {
            pre #policy { (text) }
        }
    };
    page(s, &format!("Profile {}", p.policy.name), "/profiles", body)
}

async fn detail(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(name): Path<String>,
) -> Result<Markup, WebError> {
    let p = state.services.profiles.get(&name).await?;
    Ok(profile_page(&s, &p, &document(&p), None))
}

#[derive(Deserialize)]
struct Edit {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    document: String,
}

async fn update(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(name): Path<String>,
    Form(f): Form<Edit>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let refused = match serde_json::from_str(&f.document) {
        Err(e) => Error::BadRequest(format!("the policy is not valid JSON: {e}")),
        Ok(doc) => match state
            .services
            .profiles
            .update(&name, doc, &s.caller.actor)
            .await
        {
            Ok(p) => {
                return Ok(Redirect::to(&format!("/profiles/{}", p.policy.name)).into_response());
            }
            Err(e @ (Error::BadRequest(_) | Error::Policy(_))) => e,
            Err(e) => return Err(e.into()),
        },
    };
    // Show the refusal next to the text as it was sent, so it can be corrected.
    let p = state.services.profiles.get(&name).await?;
    Ok(with_status(
        StatusCode::BAD_REQUEST,
        profile_page(&s, &p, &f.document, Some(&refused.to_string())),
    ))
}
