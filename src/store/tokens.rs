//! API tokens: stored as SHA-256 hashes of 256-bit random secrets.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{AuditEvent, Store, StoreError, from_ts, ts};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(
    description = "`admin`: everything; `issuer`: issue and revoke under its `profiles`, read CAs, profiles and certificates; `viewer`: read CAs, profiles and certificates; `agent`: fetch the latest version (with its key) of the managed certificates in its `managed` list and report their deployment, nothing else."
)]
pub enum Role {
    /// Everything.
    Admin,
    /// Issue and revoke certificates under its named profiles; read certificates, CAs, profiles.
    Issuer,
    /// Read-only.
    Viewer,
    /// A host agent: fetch its managed certificates (with their keys) and report where
    /// they are deployed; nothing else.
    Agent,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Issuer => "issuer",
            Role::Viewer => "viewer",
            Role::Agent => "agent",
        }
    }

    fn parse(s: &str) -> Result<Role, StoreError> {
        match s {
            "admin" => Ok(Role::Admin),
            "issuer" => Ok(Role::Issuer),
            "viewer" => Ok(Role::Viewer),
            "agent" => Ok(Role::Agent),
            other => Err(StoreError::Corrupt(format!("unknown role {other}"))),
        }
    }
}

/// A token as stored (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Token, description = "An API token (never its secret).")]
pub struct TokenRecord {
    /// Id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Profiles an issuer token may use.
    pub profiles: Vec<String>,
    /// Ids of the managed certificates an agent token may fetch and report on.
    pub managed: Vec<String>,
    /// When created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub revoked_at: Option<OffsetDateTime>,
    /// Who created it.
    pub created_by: String,
    #[serde(skip)]
    pub(crate) token_hash: String,
}

fn row_to_token(r: &AnyRow) -> Result<TokenRecord, StoreError> {
    let profiles: String = r.try_get("profiles")?;
    let managed: String = r.try_get("managed")?;
    Ok(TokenRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: Role::parse(&r.try_get::<String, _>("role")?)?,
        profiles: serde_json::from_str(&profiles)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        managed: serde_json::from_str(&managed).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: from_ts(r.try_get("created_at")?),
        expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(from_ts),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_ts),
        created_by: r.try_get("created_by")?,
        token_hash: r.try_get("token_hash")?,
    })
}

const COLS: &str =
    "id, name, role, profiles, managed, token_hash, created_at, expires_at, revoked_at, created_by";

impl TokenRecord {
    /// A new token record for a secret's hash.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        name: String,
        role: Role,
        profiles: Vec<String>,
        managed: Vec<String>,
        token_hash: String,
        created_at: OffsetDateTime,
        expires_at: Option<OffsetDateTime>,
        created_by: String,
    ) -> TokenRecord {
        TokenRecord {
            id,
            name,
            role,
            profiles,
            managed,
            created_at,
            expires_at,
            revoked_at: None,
            created_by,
            token_hash,
        }
    }
}

impl Store {
    /// Insert a token.
    pub async fn insert_token(
        &self,
        t: &TokenRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, profiles, token_hash, created_at, expires_at, created_by, managed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(serde_json::to_string(&t.profiles).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(&t.token_hash)
        .bind(ts(t.created_at))
        .bind(t.expires_at.map(ts))
        .bind(&t.created_by)
        .bind(serde_json::to_string(&t.managed).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, ts(t.created_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The token with this hash, if any (revoked and expired ones included; the caller checks).
    pub async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_token).transpose()
    }

    /// All tokens.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.all_rows(
            &format!("SELECT {COLS} FROM api_tokens ORDER BY created_at"),
            row_to_token,
        )
        .await
    }

    /// Revoke a token.
    pub async fn revoke_token(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("active token {id:?}")));
        }
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }
}
