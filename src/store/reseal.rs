//! Re-sealing every sealed value under a new master key, in one transaction.

use sqlx::Row;

use super::{Store, StoreError};

/// A column of sealed values: where it is and how its seal context follows from the row.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    /// The table.
    pub table: &'static str,
    /// The column that identifies a row (its text goes into the context).
    pub id: &'static str,
    /// The sealed column.
    pub column: &'static str,
    /// `(column, value)`: only the rows where the column holds the value hold sealed
    /// values (all rows when `None`).
    pub only: Option<(&'static str, &'static str)>,
    /// The seal context of the row with this id.
    pub context: fn(&str) -> Vec<u8>,
}

impl Store {
    /// Re-seal every value of `columns` with `reseal(context, sealed)`, in one transaction:
    /// either every value is sealed under the new key or none is. Returns how many values.
    /// An empty value seals nothing (the key of a CA kept in a PKCS#11 token) and is skipped.
    pub async fn reseal_all(
        &self,
        columns: &[SealedColumn],
        reseal: impl Fn(&[u8], &[u8]) -> Result<Vec<u8>, String>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut count = 0;
        for c in columns {
            let only = c
                .only
                .map(|(w, _)| format!(" AND {w} = $1"))
                .unwrap_or_default();
            let select = format!(
                "SELECT {id}, {col} FROM {table} WHERE {col} IS NOT NULL AND length({col}) > 0{only}",
                id = c.id,
                col = c.column,
                table = c.table,
            );
            let mut query = sqlx::query(&select);
            if let Some((_, value)) = c.only {
                query = query.bind(value);
            }
            let rows = query.fetch_all(&mut *tx).await?;
            for row in rows {
                let id: String = row.try_get(0)?;
                let sealed: Vec<u8> = row.try_get(1)?;
                let fresh = reseal(&(c.context)(&id), &sealed).map_err(|e| {
                    StoreError::Corrupt(format!("{}.{} of {id:?}: {e}", c.table, c.column))
                })?;
                sqlx::query(&format!(
                    "UPDATE {table} SET {col} = $1 WHERE {id} = $2",
                    table = c.table,
                    col = c.column,
                    id = c.id,
                ))
                .bind(fresh)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                count += 1;
            }
        }
        tx.commit().await?;
        Ok(count)
    }
}
