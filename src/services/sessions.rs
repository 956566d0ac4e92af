//! Dashboard sessions: an API token exchanged for a sealed session.
//!
//! A session is not stored: it is a cookie value sealed (AES-256-GCM) with the master key,
//! bound to the context [`SESSION_CONTEXT`], holding the SHA-256 of the token it was opened
//! with, its expiry and its CSRF secret. Each request opens it and authenticates the token
//! hash again, so a revoked or expired token ends every session opened with it at once, and
//! roles are those of the token, exactly as on the API. The secret itself never leaves the
//! sign-in request. Signing out clears the cookie; a copy taken before then stays usable
//! until it expires ([`SESSION_LIFETIME`]) or its token is revoked. Nothing is stored, so
//! a master key rotation has nothing to re-seal: it signs every session out.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::error::Error;
use crate::services::pki::Pki;
use crate::services::tokens::{Caller, TokenService, hash_token};

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::hours(8);

/// The associated data every session is sealed with, so no other sealed value opens as one.
pub const SESSION_CONTEXT: &[u8] = b"certkeeper dashboard session v1";

/// Longest cookie value accepted before trying to open it.
const MAX_SEALED_LEN: usize = 1024;

#[derive(Serialize, Deserialize)]
struct Sealed {
    /// SHA-256 of the token, hex.
    h: String,
    /// Expiry, Unix seconds.
    e: i64,
    /// CSRF secret, hex.
    c: String,
}

/// An open session: who is signed in, until when, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct Session {
    /// The caller, as the API would see the same token.
    pub caller: Caller,
    /// When the session ends.
    pub expires_at: OffsetDateTime,
    /// The value every form of this session must send back.
    pub csrf: String,
}

impl Session {
    /// Whether `sent` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), self.csrf.as_bytes())
            .is_ok()
    }
}

/// Sign-in, and opening sessions on later requests.
#[derive(Debug, Clone)]
pub struct SessionService {
    pki: Arc<Pki>,
    tokens: TokenService,
}

impl SessionService {
    /// The service over the registration authority (for the master key and the clock).
    pub fn new(pki: Arc<Pki>) -> SessionService {
        SessionService {
            tokens: TokenService::new(pki.clone()),
            pki,
        }
    }

    /// Exchange an API token for a session; returns it and the cookie value that carries it.
    pub async fn sign_in(
        &self,
        token: &str,
        source: Option<String>,
    ) -> Result<(Session, String), Error> {
        let token = token.trim();
        if token.is_empty() || token.len() > 200 {
            return Err(Error::Unauthorized("unknown token".into()));
        }
        let hash = hash_token(token);
        let caller = self.tokens.authenticate_hash(&hash, source).await?;
        // Agent tokens fetch private keys: they never sign in to the dashboard.
        caller.require_not_agent()?;
        let mut csrf = [0u8; 32];
        use aws_lc_rs::rand::SecureRandom;
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut csrf)
            .map_err(|_| Error::Internal("random generator failed".into()))?;
        let expires_at = self.pki.now() + SESSION_LIFETIME;
        let sealed = Sealed {
            h: hash,
            e: expires_at.unix_timestamp(),
            c: hex::encode(csrf),
        };
        let plain = serde_json::to_vec(&sealed).map_err(|e| Error::Internal(e.to_string()))?;
        let value = URL_SAFE_NO_PAD.encode(
            self.pki
                .master()
                .seal(&plain, SESSION_CONTEXT)
                .map_err(|e| Error::Internal(e.to_string()))?,
        );
        let session = Session {
            caller,
            expires_at,
            csrf: sealed.c,
        };
        Ok((session, value))
    }

    /// The session a cookie value carries, if it opens, has not expired, and its token is
    /// still valid.
    pub async fn open(&self, value: &str, source: Option<String>) -> Result<Session, Error> {
        let ended = || Error::Unauthorized("no valid session: sign in again".into());
        if value.len() > MAX_SEALED_LEN {
            return Err(ended());
        }
        let raw = URL_SAFE_NO_PAD.decode(value).map_err(|_| ended())?;
        let plain = self
            .pki
            .master()
            .open(&raw, SESSION_CONTEXT)
            .map_err(|_| ended())?;
        let sealed: Sealed = serde_json::from_slice(&plain).map_err(|_| ended())?;
        let expires_at = OffsetDateTime::from_unix_timestamp(sealed.e).map_err(|_| ended())?;
        if expires_at <= self.pki.now() {
            return Err(ended());
        }
        let caller = self.tokens.authenticate_hash(&sealed.h, source).await?;
        caller.require_not_agent()?;
        Ok(Session {
            caller,
            expires_at,
            csrf: sealed.c,
        })
    }
}
