//! Small named values the server keeps for itself (its own TLS certificate, ...).

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// Read a named value.
    pub async fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT value FROM server_state WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }

    /// Write a named value.
    pub async fn put_state(&self, key: &str, value: &[u8], now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO server_state (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Write a named value only if it does not exist yet; returns whether it was written.
    pub async fn put_state_if_absent(
        &self,
        key: &str,
        value: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO server_state (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
