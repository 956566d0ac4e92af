//! The REST API under `/api/v1`: bearer-token auth, JSON in and out, RFC 7807 errors.

mod acme;
mod agent;
mod alerts;
mod audit;
pub mod auth;
mod cas;
mod certs;
mod discovery;
mod est;
pub mod extract;
mod issuers;
mod managed;
pub(crate) mod openapi;
mod profiles;
mod tokens;

use axum::extract::OriginalUri;
use axum::http::Method;
use axum::{Extension, Router};

use utoipa_axum::router::OpenApiRouter;

use crate::error::Error;
use crate::problem::HttpError;
use crate::server::AppState;

/// Everything under `/api/v1`, and the API reference page at `/api/docs`.
///
/// Every `/api/v1` route is mounted by `utoipa_axum::routes!` from its handler's
/// `#[utoipa::path]` attribute, which is also what the document at `/api/v1/openapi.json`
/// describes: a route cannot be mounted without being described.
pub fn router() -> Router<AppState> {
    let (v1, described) = OpenApiRouter::new()
        .merge(cas::router())
        .merge(profiles::router())
        .merge(certs::router())
        .merge(tokens::router())
        .merge(est::router())
        .merge(audit::router())
        .merge(discovery::router())
        .merge(managed::router())
        .merge(issuers::router())
        .merge(agent::router())
        .merge(alerts::router())
        .merge(acme::router())
        .merge(openapi::router())
        .split_for_parts();
    let v1 = v1
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(openapi::Derived::new(
            "/api/v1",
            &described,
            crate::public::described().get_openapi(),
        )));
    Router::new()
        .nest("/api/v1", v1)
        .merge(openapi::reference_page("/api/docs", "/api/v1/openapi.json"))
}

async fn not_found(OriginalUri(uri): OriginalUri) -> Error {
    Error::NotFound(format!("no API endpoint at {}", uri.path()))
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> HttpError {
    HttpError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}
