//! The audit log: reading it (every service writes its own events).

use std::sync::Arc;

use crate::services::pki::Pki;

/// The audit log: reading it (every service writes its own events).
#[derive(Debug, Clone)]
pub struct AuditService {
    pki: Arc<Pki>,
}

impl AuditService {
    /// The service over the registration authority's store and caches.
    pub fn new(pki: Arc<Pki>) -> AuditService {
        AuditService { pki }
    }
}
