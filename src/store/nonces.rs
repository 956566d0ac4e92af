//! Used ACME nonces, recorded in batches.
//!
//! Every ACME request uses one nonce, and each nonce may be used once across all replicas,
//! so every request writes. Recording uses in batches (one statement for all requests that
//! arrive while the previous batch commits) keeps that write from capping the request rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use sqlx::{AnyPool, Row};

use super::batch::{BatchWrite, Batcher};
use super::writer::placeholders;
use super::{Engine, Store, StoreError};

/// How often (seconds) expired uses are purged.
const PURGE_EVERY: i64 = 60;

/// One use of a nonce.
pub(crate) struct Use {
    nonce: String,
    expires_at: i64,
    now: i64,
}

/// Records nonce uses; answers for each whether it was the first.
pub(crate) struct NonceBatch {
    pool: AnyPool,
    engine: Engine,
    relaxed: Arc<AtomicBool>,
    last_purge: AtomicI64,
}

impl NonceBatch {
    pub(crate) fn start(
        pool: AnyPool,
        engine: Engine,
        relaxed: Arc<AtomicBool>,
    ) -> Batcher<NonceBatch> {
        Batcher::start(NonceBatch {
            pool,
            engine,
            relaxed,
            last_purge: AtomicI64::new(0),
        })
    }
}

impl BatchWrite for NonceBatch {
    type Job = Use;
    type Out = bool;
    const MAX_BATCH: usize = 512;

    async fn write(&self, uses: &[Use]) -> Result<Vec<bool>, StoreError> {
        // The same nonce twice in one batch: only the first use can be fresh.
        let mut distinct: Vec<&Use> = Vec::with_capacity(uses.len());
        for u in uses {
            if !distinct.iter().any(|d| d.nonce == u.nonce) {
                distinct.push(u);
            }
        }
        let sql = format!(
            "INSERT INTO acme_used_nonces (nonce, expires_at) VALUES {} ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
            placeholders(self.engine, distinct.len(), 2, None)
        );
        let mut q = sqlx::query(&sql);
        for u in &distinct {
            q = q.bind(&u.nonce).bind(u.expires_at);
        }
        // Relaxed commit: a power failure can lose the latest uses. The request a nonce
        // carried writes after its use is recorded, and SQLite's log is sequential: if that
        // write was durable, so is the use before it; if it was lost, replaying the request
        // does it once.
        let mut conn = super::relaxed(&self.pool, self.engine, &self.relaxed).await?;
        let rows = q.fetch_all(&mut *conn).await?;
        let mut fresh = std::collections::HashSet::with_capacity(rows.len());
        for r in &rows {
            fresh.insert(r.try_get::<String, _>("nonce")?);
        }
        let now = uses.iter().map(|u| u.now).max().unwrap_or(0);
        if now - self.last_purge.load(Ordering::Relaxed) >= PURGE_EVERY {
            self.last_purge.store(now, Ordering::Relaxed);
            sqlx::query("DELETE FROM acme_used_nonces WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        // `fresh.remove` answers true once per nonce: the first use in the batch.
        Ok(uses.iter().map(|u| fresh.remove(&u.nonce)).collect())
    }
}

impl Store {
    /// Record a use of a nonce that expires at `expires_at`: true if this is its first use
    /// (on any replica), false if it was used before.
    pub async fn acme_nonce_use(
        &self,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.nonces
            .submit(Use {
                nonce: nonce.to_owned(),
                expires_at,
                now,
            })
            .await
    }
}
