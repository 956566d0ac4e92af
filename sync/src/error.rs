//! What a push can fail with.

use std::time::Duration;

/// Failures of a destination, sorted by what the caller should do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The destination's configuration is unusable.
    #[error("invalid destination configuration: {0}")]
    Config(String),
    /// The remote store would refuse this certificate (key type, validity); checked before
    /// sending anything. Retrying does not help.
    #[error("refused: {0}")]
    Refused(String),
    /// The remote asked us to slow down (HTTP 429 or 503, ACM `ThrottlingException`).
    #[error("throttled: {message}")]
    Throttled {
        /// What the remote said.
        message: String,
        /// How long it asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// Authentication with the remote failed.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The remote answered with an error.
    #[error("remote error {code}: {message}")]
    Remote {
        /// The remote's error code (or HTTP status).
        code: String,
        /// The remote's message.
        message: String,
        /// Whether trying again later may succeed (5xx).
        retryable: bool,
    },
    /// The remote could not be reached, or answered something unreadable.
    #[error("transport error: {0}")]
    Transport(String),
}

impl SyncError {
    /// Whether a later attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            SyncError::Throttled { .. } | SyncError::Transport(_) | SyncError::Auth(_) => true,
            SyncError::Remote { retryable, .. } => *retryable,
            SyncError::Config(_) | SyncError::Refused(_) => false,
        }
    }

    /// How long the remote asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
