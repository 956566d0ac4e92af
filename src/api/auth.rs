//! Bearer-token authentication and role checks.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::Error;
use crate::server::AppState;

pub use crate::services::tokens::Caller as Auth;

/// Any valid token but an agent token: agents reach only their own endpoints (see
/// [`Agent`]).
impl FromRequestParts<AppState> for Auth {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = bearer_caller(parts, state).await?;
        caller.require_not_agent()?;
        Ok(caller)
    }
}

/// The caller whose bearer token the request carries, of any role.
async fn bearer_caller(parts: &mut Parts, state: &AppState) -> Result<Auth, Error> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        Error::Unauthorized("missing Authorization: Bearer <token> header".into())
    })?;
    let value = header
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            Error::Unauthorized("the Authorization header must use the Bearer scheme".into())
        })?;
    let source = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    state.services.tokens.authenticate(token, source).await
}

/// An agent token (which managed certificates it may touch is checked per request, see
/// [`Auth::require_agent_for`]).
#[derive(Debug, Clone)]
pub struct Agent(pub Auth);

impl FromRequestParts<AppState> for Agent {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = bearer_caller(parts, state).await?;
        caller.require_agent()?;
        Ok(Agent(caller))
    }
}

/// Any valid token but an agent token may read.
#[derive(Debug, Clone)]
pub struct Reader(pub Auth);

impl FromRequestParts<AppState> for Reader {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Auth::from_request_parts(parts, state).await.map(Reader)
    }
}

/// An admin token.
#[derive(Debug, Clone)]
pub struct Admin(pub Auth);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_request_parts(parts, state).await?;
        auth.require_admin()?;
        Ok(Admin(auth))
    }
}
