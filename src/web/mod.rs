//! The web dashboard at `/` on the HTTPS listener: server-rendered HTML (maud) and one
//! small script, both served from the binary.
//!
//! Like the other front ends, a handler parses, authenticates (the session cookie, see
//! [`session`]), calls one service method and renders; it never holds the store. Every form
//! carries the session's CSRF token and a POST without it is refused before anything else.
//! The pages show only the actions the signed-in token's role may take; the services check
//! the role again, exactly as for the API.

mod alerts;
mod audit;
mod cas;
mod certs;
mod discovery;
mod layout;
mod managed;
mod overview;
mod profiles;
mod protocols;
pub mod session;
mod tokens;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::server::AppState;

pub use session::{SESSION_COOKIE, Signed};

/// The dashboard's one script: progressive enhancement only (every page works without it).
const SCRIPT: &str = include_str!("assets/dashboard.js");
/// The dashboard's style sheet.
const STYLE: &str = include_str!("assets/dashboard.css");

/// Every dashboard route.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .merge(overview::router())
        .merge(cas::router())
        .merge(certs::router())
        .merge(profiles::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(discovery::router())
        .merge(alerts::router())
        .merge(managed::router())
        .merge(protocols::router())
        .route("/assets/dashboard.js", get(script))
        .route("/assets/dashboard.css", get(style))
        .layer(axum::middleware::map_response(harden))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Headers on every dashboard response: nothing from elsewhere may load, no framing,
/// pages are not cached (they show what a session may see).
async fn harden(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
