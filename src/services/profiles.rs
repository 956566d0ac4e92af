//! Profiles: the policy each issuance is checked against.

use std::sync::Arc;

use crate::services::pki::Pki;

/// Profiles: the policy each issuance is checked against.
#[derive(Debug, Clone)]
pub struct ProfileService {
    pki: Arc<Pki>,
}

impl ProfileService {
    /// The service over the registration authority's store and caches.
    pub fn new(pki: Arc<Pki>) -> ProfileService {
        ProfileService { pki }
    }
}
