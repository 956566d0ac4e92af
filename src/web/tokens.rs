//! API tokens (admins only): list, create (the secret shown once), revoke.

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{CsrfOnly, WebError, check_csrf, csrf_field, page, when};
use super::session::Signed;
use crate::error::Error;
use crate::server::AppState;
use crate::services::tokens::NewToken;
use crate::store::Role;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}/revoke", post(revoke))
}

async fn list(State(state): State<AppState>, Signed(s): Signed) -> Result<Markup, WebError> {
    s.caller.require_admin()?;
    let tokens = state.services.tokens.list().await?;
    let body = html! {
        table #tokens {
            thead { tr { th { "Name" } th { "Role" } th { "Profiles" } th { "Managed certificates" } th { "Created" } th { "Expires" } th { "State" } th {} } }
            tbody {
                @for t in &tokens {
                    tr {
                        td { (t.name) }
                        td { (t.role.as_str()) }
                        td { (t.profiles.join(", ")) }
                        td { (t.managed.len()) }
                        td { (when(t.created_at)) " by " (t.created_by) }
                        td { (t.expires_at.map(when).unwrap_or_else(|| "never".into())) }
                        td { @if let Some(at) = t.revoked_at { "revoked " (when(at)) } @else { "active" } }
                        td {
                            @if t.revoked_at.is_none() && t.id != s.caller.token.id {
                                form method="post" action=(format!("/tokens/{}/revoke", t.id)) data-confirm="Revoke this token?" {
                                    (csrf_field(&s))
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        section #create-token {
            h2 { "Create a token" }
            form method="post" action="/tokens" {
                (csrf_field(&s))
                label { "Name" input name="name" required maxlength="100"; }
                label { "Role"
                    select name="role" {
                        option value="viewer" { "viewer" }
                        option value="issuer" { "issuer" }
                        option value="admin" { "admin" }
                        option value="agent" { "agent" }
                    }
                }
                label { "Profiles (issuer tokens, comma-separated)" input name="profiles"; }
                label { "Managed certificates (agent tokens, comma-separated names)" input name="managed"; }
                label { "Expires in (days, empty for never)" input name="expires_in_days" type="number" min="1"; }
                button type="submit" #create-token-submit { "Create token" }
            }
        }
    };
    Ok(page(&s, "Tokens", "/tokens", body))
}

#[derive(Deserialize)]
struct Create {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    profiles: String,
    #[serde(default)]
    managed: String,
    #[serde(default)]
    expires_in_days: String,
}

async fn create(
    State(state): State<AppState>,
    Signed(s): Signed,
    Form(f): Form<Create>,
) -> Result<Markup, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    let role = match f.role.as_str() {
        "admin" => Role::Admin,
        "issuer" => Role::Issuer,
        "viewer" => Role::Viewer,
        "agent" => Role::Agent,
        other => return Err(Error::BadRequest(format!("unknown role {other:?}")).into()),
    };
    let expires_in_days = match f.expires_in_days.trim() {
        "" => None,
        d => Some(
            d.parse::<u32>()
                .map_err(|_| Error::BadRequest("expiry must be a whole number of days".into()))?,
        ),
    };
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let new = NewToken {
        name: f.name.trim().to_string(),
        role,
        profiles: list(&f.profiles),
        managed: list(&f.managed),
        expires_in_days,
    };
    let (rec, secret) = state.services.tokens.create(new, &s.caller.actor).await?;
    let body = html! {
        p { "Token " strong { (rec.name) } " (" (rec.role.as_str()) ") was created." }
        p.warning { "This is the only time its secret is shown: copy it now." }
        pre #token-secret { (secret) }
        p { a href="/tokens" { "Back to the tokens" } }
    };
    Ok(page(&s, "Token created", "/tokens", body))
}

async fn revoke(
    State(state): State<AppState>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    check_csrf(&s, &f.csrf)?;
    s.caller.require_admin()?;
    state.services.tokens.revoke(&id, &s.caller.actor).await?;
    Ok(Redirect::to("/tokens").into_response())
}
