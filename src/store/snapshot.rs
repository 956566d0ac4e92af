//! A consistent copy of an SQLite database while servers keep writing to it.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::StoreError;

/// Write a consistent copy of the SQLite database at `url` (a `sqlite:` URL) to `out`, which
/// must not exist. `VACUUM INTO` reads one snapshot of the database from a read-only
/// connection: in WAL mode it does not stop writers, and it sees every transaction
/// committed before it started and none after.
pub async fn sqlite_snapshot(url: &str, out: &Path) -> Result<(), StoreError> {
    let mut conn = SqliteConnectOptions::from_str(url)?
        .read_only(true)
        .create_if_missing(false)
        .connect()
        .await?;
    let target = out
        .to_str()
        .ok_or_else(|| StoreError::Conflict(format!("{} is not UTF-8", out.display())))?;
    sqlx::query("VACUUM INTO ?1")
        .bind(target)
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Whether the SQLite database file at `path` is intact (`PRAGMA integrity_check`).
pub async fn sqlite_integrity(path: &Path) -> Result<Vec<String>, StoreError> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    Ok(rows
        .into_iter()
        .map(|(r,)| r)
        .filter(|r| r != "ok")
        .collect())
}
