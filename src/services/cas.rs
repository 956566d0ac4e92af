//! Certificate authorities: create roots and intermediates, import, install, list, CRLs.

use std::sync::Arc;

use crate::services::pki::Pki;

/// Certificate authorities: create roots and intermediates, import, install, list, CRLs.
#[derive(Debug, Clone)]
pub struct CaService {
    pki: Arc<Pki>,
}

impl CaService {
    /// The service over the registration authority's store and caches.
    pub fn new(pki: Arc<Pki>) -> CaService {
        CaService { pki }
    }
}
