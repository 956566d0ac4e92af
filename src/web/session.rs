//! Sign-in, sign-out and the session cookie.
//!
//! The cookie is `__Host-certkeeper_session`: `HttpOnly`, `Secure`, `SameSite=Strict`,
//! `Path=/`, no domain, and a `Max-Age` that ends with the session. Its value is sealed by
//! [`crate::services::sessions`]. The sign-in form, which has no session yet, is protected
//! by a double-submit token: a random value in a `__Host-` cookie and in the form.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Router, routing::post};
use maud::html;
use serde::Deserialize;

use super::layout::{CsrfOnly, WebError, check_csrf, frame, with_status};
use crate::error::Error;
use crate::server::AppState;
use crate::services::sessions::{SESSION_LIFETIME, Session};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-certkeeper_session";
/// The sign-in form's double-submit cookie.
const SIGN_IN_COOKIE: &str = "__Host-certkeeper_signin";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn source(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// A request of a signed-in session; without one, the answer is the sign-in page.
#[derive(Debug, Clone)]
pub struct Signed(pub Session);

impl FromRequestParts<AppState> for Signed {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = cookie(&parts.headers, SESSION_COOKIE).ok_or(WebError::SignIn)?;
        match state.services.sessions.open(value, source(parts)).await {
            Ok(s) => Ok(Signed(s)),
            Err(Error::Unauthorized(_)) => Err(WebError::SignIn),
            Err(e) => Err(WebError::Page(e)),
        }
    }
}

/// The client's address, for the audit log.
#[derive(Debug, Clone)]
struct Source(Option<String>);

impl FromRequestParts<AppState> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Source(source(parts)))
    }
}

fn random_hex() -> Result<String, Error> {
    use aws_lc_rs::rand::SecureRandom;
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| Error::Internal("random generator failed".into()))?;
    Ok(hex::encode(raw))
}

fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict")
}

fn sign_in_form(csrf: &str, message: Option<&str>) -> maud::Markup {
    frame(
        "Sign in",
        html! {
            main.sign-in {
                h1 { "certkeeper" }
                p { "Sign in with an API token (admin, issuer or viewer)." }
                @if let Some(m) = message {
                    p.error role="alert" { (m) }
                }
                form method="post" action="/sign-in" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="token" { "API token" }
                    input type="password" id="token" name="token" autocomplete="off" required;
                    button type="submit" id="sign-in" { "Sign in" }
                }
            }
        },
    )
}

/// The sign-in form, with a fresh double-submit token.
fn sign_in_response(status: StatusCode, message: Option<&str>) -> Result<Response, WebError> {
    let csrf = random_hex()?;
    let mut resp = with_status(status, sign_in_form(&csrf, message));
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, &csrf, 600)
            .parse()
            .map_err(|_| Error::Internal("cookie header".into()))?,
    );
    Ok(resp)
}

async fn sign_in_page() -> Result<Response, WebError> {
    sign_in_response(StatusCode::OK, None)
}

#[derive(Deserialize)]
struct SignIn {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

async fn sign_in(
    State(state): State<AppState>,
    Source(source): Source,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, WebError> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    let same = !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            expected.as_bytes(),
            form.csrf.as_bytes(),
        )
        .is_ok();
    if !same {
        return Err(WebError::Page(Error::Forbidden(
            "this form's CSRF token is missing or wrong: reload the page and try again".into(),
        )));
    }
    match state.services.sessions.sign_in(&form.token, source).await {
        Ok((_, value)) => {
            let mut resp = Redirect::to("/").into_response();
            let h = resp.headers_mut();
            let session = set_cookie(SESSION_COOKIE, &value, SESSION_LIFETIME.whole_seconds());
            let done = set_cookie(SIGN_IN_COOKIE, "", 0);
            for c in [session, done] {
                h.append(
                    header::SET_COOKIE,
                    c.parse()
                        .map_err(|_| Error::Internal("cookie header".into()))?,
                );
            }
            Ok(resp)
        }
        Err(Error::Unauthorized(m)) => sign_in_response(StatusCode::UNAUTHORIZED, Some(&m)),
        // An agent token: it never signs in.
        Err(Error::Forbidden(m)) => sign_in_response(StatusCode::FORBIDDEN, Some(&m)),
        Err(e) => Err(WebError::Page(e)),
    }
}

async fn sign_out(Signed(s): Signed, Form(form): Form<CsrfOnly>) -> Result<Response, WebError> {
    check_csrf(&s, &form.csrf)?;
    let mut resp = Redirect::to("/sign-in").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0)
            .parse()
            .map_err(|_| Error::Internal("cookie header".into()))?,
    );
    Ok(resp)
}
