//! API tokens: create (the secret shown once), list, revoke, authenticate.

use std::sync::Arc;

use crate::services::pki::Pki;

/// API tokens: create (the secret shown once), list, revoke, authenticate.
#[derive(Debug, Clone)]
pub struct TokenService {
    pki: Arc<Pki>,
}

impl TokenService {
    /// The service over the registration authority's store and caches.
    pub fn new(pki: Arc<Pki>) -> TokenService {
        TokenService { pki }
    }
}
