//! Pruning of finished ACME bookkeeping: orders, authorizations and challenges long past
//! their expiry, rate-limit windows that have ended, and used nonces that have expired.

use sqlx::Row;

use super::{Store, StoreError};

/// How many rows one statement deletes at most, so that on SQLite a prune never holds the
/// only writer for long.
const BATCH: usize = 500;

/// What one prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcmePruned {
    /// Orders.
    pub orders: u64,
    /// Authorizations.
    pub authorizations: u64,
    /// Challenges (of those authorizations).
    pub challenges: u64,
    /// Rate-limit windows.
    pub rate_limits: u64,
    /// Used-nonce records.
    pub nonces: u64,
}

impl AcmePruned {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        *self == AcmePruned::default()
    }
}

/// `$first, $first+1, ...` for `n` values.
fn list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Delete ACME bookkeeping nobody can use any more:
    ///
    /// - orders that expired before `cutoff` (not while `processing`), unless the
    ///   certificate they produced is still valid at `cutoff` (revocation by the account
    ///   and RFC 9773 `replaces` look the order up by its certificate), with their links
    ///   to authorizations;
    /// - authorizations that expired before `cutoff` and belong to no remaining order, with
    ///   their challenges;
    /// - rate-limit windows that ended before `now` (windows are an hour long);
    /// - records of used nonces that expired before `now`.
    pub async fn acme_prune(&self, cutoff: i64, now: i64) -> Result<AcmePruned, StoreError> {
        let mut out = AcmePruned::default();
        loop {
            let ids = self
                .ids(
                    "SELECT o.id FROM acme_orders o WHERE o.expires_at < $1 AND o.status <> 'processing'
                     AND (o.certificate_id IS NULL OR NOT EXISTS
                         (SELECT 1 FROM certificates c WHERE c.id = o.certificate_id AND c.not_after >= $1))
                     ORDER BY o.expires_at LIMIT $2",
                    cutoff,
                )
                .await?;
            if ids.is_empty() {
                break;
            }
            let mut tx = self.begin_write_relaxed().await?;
            self.delete_in(&mut tx, "acme_order_authorizations", "order_id", &ids)
                .await?;
            out.orders += self.delete_in(&mut tx, "acme_orders", "id", &ids).await?;
            tx.commit().await?;
            if ids.len() < BATCH {
                break;
            }
        }
        loop {
            let ids = self
                .ids(
                    "SELECT a.id FROM acme_authorizations a WHERE a.expires_at < $1
                     AND NOT EXISTS (SELECT 1 FROM acme_order_authorizations l WHERE l.authz_id = a.id)
                     ORDER BY a.expires_at LIMIT $2",
                    cutoff,
                )
                .await?;
            if ids.is_empty() {
                break;
            }
            let mut tx = self.begin_write_relaxed().await?;
            out.challenges += self
                .delete_in(&mut tx, "acme_challenges", "authz_id", &ids)
                .await?;
            out.authorizations += self
                .delete_in(&mut tx, "acme_authorizations", "id", &ids)
                .await?;
            tx.commit().await?;
            if ids.len() < BATCH {
                break;
            }
        }
        let mut conn = self.relaxed_writer().await?;
        out.rate_limits = sqlx::query("DELETE FROM acme_rate_limits WHERE window_start < $1")
            .bind(now - 3600)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        out.nonces = sqlx::query("DELETE FROM acme_used_nonces WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(out)
    }

    /// The ids `sql` selects with `cutoff` as `$1` and the batch size as `$2`.
    async fn ids(&self, sql: &str, cutoff: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(sql)
            .bind(cutoff)
            .bind(BATCH as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// Delete the rows of `table` whose `column` is one of `ids`; returns how many.
    async fn delete_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        table: &str,
        column: &str,
        ids: &[String],
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM {table} WHERE {column} IN ({})",
            list(1, ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        Ok(q.execute(&mut **tx).await?.rows_affected())
    }
}
