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

/// What to find in the audit log; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    /// Exactly this action (`certificate.revoke`).
    pub action: Option<String>,
    /// Actors containing this text.
    pub actor: Option<String>,
    /// An object id, or a kind of object (`certificate`).
    pub object: Option<String>,
    /// At or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Before this time (Unix seconds).
    pub until: Option<i64>,
    /// Older than this entry id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Page size.
    pub limit: Option<i64>,
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
        self.search(AuditSearch {
            action,
            before,
            limit,
            ..AuditSearch::default()
        })
        .await
    }

    /// Up to `limit` (1 to 1000, default 100) entries matching every filter given.
    pub async fn search(&self, q: AuditSearch) -> Result<AuditPage, Error> {
        let limit = q.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
        }
        if q.actor.as_ref().is_some_and(|a| a.len() > 200)
            || q.object.as_ref().is_some_and(|o| o.len() > 200)
        {
            return Err(Error::BadRequest(
                "actor and object filters are at most 200 characters".into(),
            ));
        }
        let mut items = self
            .store()
            .list_audit(&AuditFilter {
                action: q.action,
                actor: q.actor,
                object: q.object,
                since: q.since,
                until: q.until,
                before_id: q.before,
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
