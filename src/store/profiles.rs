//! Profile rows.

use certkeeper_ca::Profile;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{AuditEvent, Store, StoreError, from_ts, ts};

/// A stored profile: its policy and the CA that signs for it.
#[derive(Debug, Clone)]
pub struct ProfileRecord {
    /// Id.
    pub id: String,
    /// The signing CA's id.
    pub ca_id: String,
    /// The policy (its `name` is the profile's unique name).
    pub policy: Profile,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When last changed.
    pub updated_at: OffsetDateTime,
}

fn row_to_profile(r: &AnyRow) -> Result<ProfileRecord, StoreError> {
    let policy: String = r.try_get("policy")?;
    Ok(ProfileRecord {
        id: r.try_get("id")?,
        ca_id: r.try_get("ca_id")?,
        policy: serde_json::from_str(&policy)
            .map_err(|e| StoreError::Corrupt(format!("profile policy: {e}")))?,
        created_at: from_ts(r.try_get("created_at")?),
        updated_at: from_ts(r.try_get("updated_at")?),
    })
}

fn policy_json(p: &Profile) -> Result<String, StoreError> {
    serde_json::to_string(p).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Insert a profile.
    pub async fn insert_profile(
        &self,
        rec: &ProfileRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO profiles (id, name, ca_id, policy, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&rec.id)
            .bind(&rec.policy.name)
            .bind(&rec.ca_id)
            .bind(policy_json(&rec.policy)?)
            .bind(ts(rec.created_at))
            .bind(ts(rec.updated_at))
            .execute(&mut *tx)
            .await?;
        audit.write(&mut *tx, ts(rec.created_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replace a profile's policy and CA (the name stays).
    pub async fn update_profile(
        &self,
        rec: &ProfileRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE profiles SET ca_id = $1, policy = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&rec.ca_id)
        .bind(policy_json(&rec.policy)?)
        .bind(ts(rec.updated_at))
        .bind(&rec.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!(
                "profile {:?}",
                rec.policy.name
            )));
        }
        audit.write(&mut *tx, ts(rec.updated_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Delete a profile by name. Certificates issued under it keep its name.
    pub async fn delete_profile(
        &self,
        name: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM profiles WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("profile {name:?}")));
        }
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A profile by name (or id).
    pub async fn get_profile(&self, name: &str) -> Result<ProfileRecord, StoreError> {
        self.one_by_key("SELECT id, ca_id, policy, created_at, updated_at FROM profiles WHERE name = $1 OR id = $1", name, row_to_profile, "profile")
            .await
    }

    /// All profiles by name.
    pub async fn list_profiles(&self) -> Result<Vec<ProfileRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, ca_id, policy, created_at, updated_at FROM profiles ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_profile).collect()
    }
}
