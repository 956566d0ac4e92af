//! Bearer-token authentication and role checks.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::Error;
use crate::server::AppState;
use crate::services::pki::Actor;
use crate::store::{Role, TokenRecord};

/// Prefix of every API token, so leaked tokens are easy to spot.
pub const TOKEN_PREFIX: &str = "ck_";

/// A new random token and its stored hash.
pub fn new_token() -> Result<(String, String), Error> {
    use aws_lc_rs::rand::SecureRandom;
    use base64::Engine;
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| Error::Internal("random generator failed".into()))?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// The stored form of a token: SHA-256, hex. Tokens carry 256 random bits, so a fast hash
/// is enough (there is nothing to brute-force).
pub fn hash_token(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The token used.
    pub token: TokenRecord,
    /// For the audit log.
    pub actor: Actor,
}

impl Auth {
    /// Admins only.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.token.role == Role::Admin {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this action needs an admin token; token {:?} is {}",
                self.token.name,
                self.token.role.as_str()
            )))
        }
    }

    /// May issue or revoke under `profile`.
    pub fn require_issuer_for(&self, profile: &str) -> Result<(), Error> {
        match self.token.role {
            Role::Admin => Ok(()),
            Role::Issuer if self.token.profiles.iter().any(|p| p == profile) => Ok(()),
            Role::Issuer => Err(Error::Forbidden(format!(
                "token {:?} may not use profile {profile:?} (allowed: {})",
                self.token.name,
                self.token.profiles.join(", ")
            ))),
            Role::Viewer => Err(Error::Forbidden(format!(
                "token {:?} is read-only (viewer)",
                self.token.name
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
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
        let rec = state
            .pki
            .token_by_hash(&hash_token(token))
            .await?
            .ok_or_else(|| Error::Unauthorized("unknown token".into()))?;
        let now = state.pki.now();
        if rec.revoked_at.is_some() {
            return Err(Error::Unauthorized("this token has been revoked".into()));
        }
        if rec.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::Unauthorized("this token has expired".into()));
        }
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let actor = Actor {
            name: format!("token:{}:{}", rec.name, rec.id),
            source,
        };
        Ok(Auth { token: rec, actor })
    }
}

/// Any valid token may read.
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
