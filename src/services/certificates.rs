//! Certificates: issue (server-side keys too), list, show, revoke, tags.

use std::sync::Arc;

use crate::services::pki::Pki;

/// Certificates: issue (server-side keys too), list, show, revoke, tags.
#[derive(Debug, Clone)]
pub struct CertificateService {
    pki: Arc<Pki>,
}

impl CertificateService {
    /// The service over the registration authority's store and caches.
    pub fn new(pki: Arc<Pki>) -> CertificateService {
        CertificateService { pki }
    }
}
