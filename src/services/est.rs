//! EST: labels, credentials, and the enrollment rules of RFC 7030.

use std::sync::Arc;

use crate::services::pki::Pki;

/// EST: labels, credentials, and the enrollment rules of RFC 7030.
#[derive(Debug, Clone)]
pub struct EstService {
    pki: Arc<Pki>,
}

impl EstService {
    /// The service over the registration authority's store and caches.
    pub fn new(pki: Arc<Pki>) -> EstService {
        EstService { pki }
    }
}
