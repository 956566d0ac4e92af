//! ACME administration: EAB keys, renewal windows; the engine's storage lives in the store.

use std::sync::Arc;

use crate::services::pki::Pki;

/// ACME administration: EAB keys, renewal windows; the engine's storage lives in the store.
#[derive(Debug, Clone)]
pub struct AcmeService {
    pki: Arc<Pki>,
}

impl AcmeService {
    /// The service over the registration authority's store and caches.
    pub fn new(pki: Arc<Pki>) -> AcmeService {
        AcmeService { pki }
    }
}
