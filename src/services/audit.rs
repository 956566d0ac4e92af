//! The audit log: read by administrators; written by every service in the transaction of
//! the change it records.

use std::sync::Arc;

use crate::error::Error;
use crate::services::pki::Pki;
use crate::services::ports::AuditStore;
use crate::store::{AuditFilter, AuditRecord};

/// One page of the audit log, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// The entries.
    pub items: Vec<AuditRecord>,
    /// The `before` of the next page, if there is one.
    pub next_before: Option<i64>,
}

/// The audit log.
#[derive(Debug, Clone)]
pub struct AuditService {
    pki: Arc<Pki>,
}

impl AuditService {
    /// The service over the registration authority's store.
    pub fn new(pki: Arc<Pki>) -> AuditService {
        AuditService { pki }
    }

    fn store(&self) -> &(impl AuditStore + use<>) {
        self.pki.store()
    }

    /// Up to `limit` (1 to 1000, default 100) entries older than `before`, optionally of one
    /// action.
    pub async fn list(
        &self,
        action: Option<String>,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<AuditPage, Error> {
        let limit = limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
        }
        let mut items = self
            .store()
            .list_audit(&AuditFilter {
                action,
                before_id: before,
                limit: limit + 1,
            })
            .await?;
        let next_before = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|r| r.id)
        } else {
            None
        };
        Ok(AuditPage { items, next_before })
    }
}
