//! Leases of periodic jobs (`job_leases`): which replica runs a job that must not run on
//! two at once.

use super::{Store, StoreError};

impl Store {
    /// Take (or renew) the lease of job `name` for `owner` until `until` (Unix seconds),
    /// if it is free, expired at `now`, or already `owner`'s. One conditional statement,
    /// so two replicas racing for it cannot both win. Returns whether `owner` holds it.
    pub async fn take_job_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO job_leases (name, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE job_leases.expires_at <= $4 OR job_leases.owner = excluded.owner",
        )
        .bind(name)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Give up `owner`'s lease of job `name` (at shutdown), so another replica, or this
    /// one started again, takes it at once. Returns whether `owner` held it.
    pub async fn release_job_lease(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM job_leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.writes)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
