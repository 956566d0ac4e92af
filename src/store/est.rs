//! EST labels (path segment → profile) and HTTP Basic credentials (stored as password
//! hashes, with optional expiry and use limit).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{AuditEvent, Store, StoreError, from_ts, ts};

/// An EST label: `/.well-known/est/<label>/...` enrolls under `profile`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EstLabel {
    /// The path segment.
    pub label: String,
    /// The profile used for issuance.
    pub profile: String,
    /// Whether enrollment must carry TLS channel binding in the CSR's challengePassword.
    pub require_channel_binding: bool,
    /// When created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
}

fn row_to_label(r: &AnyRow) -> Result<EstLabel, StoreError> {
    Ok(EstLabel {
        label: r.try_get("label")?,
        profile: r.try_get("profile_name")?,
        require_channel_binding: r.try_get::<i64, _>("require_channel_binding")? != 0,
        created_at: from_ts(r.try_get("created_at")?),
        created_by: r.try_get("created_by")?,
    })
}

/// An EST credential as stored (never its password).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EstCredential {
    /// Id.
    pub id: String,
    /// The HTTP Basic user name (unique).
    pub username: String,
    /// The label it may enroll under (`""` for the bare `/.well-known/est/` path).
    pub label: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub expires_at: Option<OffsetDateTime>,
    /// Enrollments left (null: unlimited).
    #[schema(required = true)]
    pub uses_left: Option<i64>,
    /// When revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub revoked_at: Option<OffsetDateTime>,
    /// When created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    #[serde(skip)]
    pub(crate) password_hash: String,
}

impl EstCredential {
    /// A new credential record for a password hash.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        username: String,
        label: String,
        password_hash: String,
        expires_at: Option<OffsetDateTime>,
        uses_left: Option<i64>,
        created_at: OffsetDateTime,
        created_by: String,
    ) -> EstCredential {
        EstCredential {
            id,
            username,
            label,
            expires_at,
            uses_left,
            revoked_at: None,
            created_at,
            created_by,
            password_hash,
        }
    }

    /// The stored password hash (PHC string).
    pub fn password_hash(&self) -> &str {
        &self.password_hash
    }
}

fn row_to_credential(r: &AnyRow) -> Result<EstCredential, StoreError> {
    Ok(EstCredential {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        label: r.try_get("label")?,
        expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(from_ts),
        uses_left: r.try_get("uses_left")?,
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_ts),
        created_at: from_ts(r.try_get("created_at")?),
        created_by: r.try_get("created_by")?,
        password_hash: r.try_get("password_hash")?,
    })
}

const LABEL_COLS: &str = "label, profile_name, require_channel_binding, created_at, created_by";
const CRED_COLS: &str =
    "id, username, label, password_hash, expires_at, uses_left, revoked_at, created_at, created_by";

impl Store {
    /// Insert an EST label.
    pub async fn insert_est_label(
        &self,
        l: &EstLabel,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO est_labels (label, profile_name, require_channel_binding, created_at, created_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&l.label)
        .bind(&l.profile)
        .bind(i64::from(l.require_channel_binding))
        .bind(ts(l.created_at))
        .bind(&l.created_by)
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("EST label {:?} already exists", l.label))
            }
            other => other,
        })?;
        audit.write(&mut *tx, ts(l.created_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An EST label.
    pub async fn get_est_label(&self, label: &str) -> Result<EstLabel, StoreError> {
        self.one_by_key(
            &format!("SELECT {LABEL_COLS} FROM est_labels WHERE label = $1"),
            label,
            row_to_label,
            "EST label",
        )
        .await
    }

    /// All EST labels.
    pub async fn list_est_labels(&self) -> Result<Vec<EstLabel>, StoreError> {
        self.all_rows(
            &format!("SELECT {LABEL_COLS} FROM est_labels ORDER BY label"),
            row_to_label,
        )
        .await
    }

    /// Delete an EST label and revoke its credentials.
    pub async fn delete_est_label(
        &self,
        label: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM est_labels WHERE label = $1")
            .bind(label)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("EST label {label:?}")));
        }
        sqlx::query(
            "UPDATE est_credentials SET revoked_at = $1 WHERE label = $2 AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(label)
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Insert an EST credential.
    pub async fn insert_est_credential(
        &self,
        c: &EstCredential,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO est_credentials (id, username, label, password_hash, expires_at, uses_left, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(&c.username)
        .bind(&c.label)
        .bind(&c.password_hash)
        .bind(c.expires_at.map(ts))
        .bind(c.uses_left)
        .bind(ts(c.created_at))
        .bind(&c.created_by)
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "an EST credential named {:?} already exists",
                c.username
            )),
            other => other,
        })?;
        audit.write(&mut *tx, ts(c.created_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The EST credential with this user name, if any (revoked and expired ones included).
    pub async fn find_est_credential(
        &self,
        username: &str,
    ) -> Result<Option<EstCredential>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CRED_COLS} FROM est_credentials WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_credential).transpose()
    }

    /// All EST credentials.
    pub async fn list_est_credentials(&self) -> Result<Vec<EstCredential>, StoreError> {
        self.all_rows(
            &format!("SELECT {CRED_COLS} FROM est_credentials ORDER BY created_at, id"),
            row_to_credential,
        )
        .await
    }

    /// A page of EST credentials, newest first: `limit` after the keyset position `after`
    /// (the previous page's last `(created_at, id)`).
    pub async fn est_credential_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<EstCredential>, StoreError> {
        let rows = match after {
            Some((at, id)) => {
                sqlx::query(&format!(
                    "SELECT {CRED_COLS} FROM est_credentials
                     WHERE created_at < $1 OR (created_at = $1 AND id < $2)
                     ORDER BY created_at DESC, id DESC LIMIT $3"
                ))
                .bind(at)
                .bind(id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {CRED_COLS} FROM est_credentials
                     ORDER BY created_at DESC, id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(row_to_credential).collect()
    }

    /// Revoke an EST credential.
    pub async fn revoke_est_credential(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE est_credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!(
                "active EST credential {id:?}"
            )));
        }
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Take one use of a credential, atomically: false when it is revoked, expired or has
    /// no uses left (another replica may have taken the last one).
    pub async fn take_est_credential_use(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE est_credentials SET uses_left = uses_left - 1
             WHERE id = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2)
               AND (uses_left IS NULL OR uses_left > 0)",
        )
        .bind(id)
        .bind(ts(now))
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Give back a use taken for an enrollment that then failed.
    pub async fn return_est_credential_use(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE est_credentials SET uses_left = uses_left + 1 WHERE id = $1 AND uses_left IS NOT NULL",
        )
        .bind(id)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// The id of the certificate with this SHA-256 fingerprint (lower-case hex), if ours.
    pub async fn certificate_id_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT id FROM certificates WHERE fingerprint = $1")
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }
}
