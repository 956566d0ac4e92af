//! The REST API under `/api/v1`: bearer-token auth, JSON in and out, RFC 7807 errors.

mod acme;
mod alerts;
mod audit;
pub mod auth;
mod cas;
mod certs;
mod discovery;
mod est;
pub mod extract;
mod managed;
mod openapi;
mod profiles;
mod tokens;

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::Method;

use crate::error::Error;
use crate::problem::HttpError;
use crate::server::AppState;

/// Everything under `/api/v1`.
pub fn router() -> Router<AppState> {
    let v1 = Router::new()
        .merge(cas::router())
        .merge(profiles::router())
        .merge(certs::router())
        .merge(tokens::router())
        .merge(est::router())
        .merge(audit::router())
        .merge(discovery::router())
        .merge(managed::router())
        .merge(alerts::router())
        .merge(acme::router())
        .merge(openapi::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new().nest("/api/v1", v1)
}

async fn not_found(OriginalUri(uri): OriginalUri) -> Error {
    Error::NotFound(format!("no API endpoint at {}", uri.path()))
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> HttpError {
    HttpError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}
