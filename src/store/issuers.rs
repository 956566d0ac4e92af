//! External issuer rows (upstream CAs) and the http-01 answers of their orders.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::cas::insert_ca_row;
use super::{AuditEvent, NewCaRecord, Store, StoreError, from_ts, ts};

/// An external issuer as stored. Its secrets stay sealed here.
#[derive(Debug, Clone)]
pub struct IssuerRecord {
    /// Id (also the id of the CA row that stands for it in the inventory).
    pub id: String,
    /// Unique name (also the CA row's name).
    pub name: String,
    /// `acme` or `aws_pca`.
    pub kind: String,
    /// Settings without secrets (JSON).
    pub config: serde_json::Value,
    /// Sealed secret (the EAB HMAC key of an ACME issuer, the access keys of an AWS
    /// Private CA issuer), if any.
    pub secret_sealed: Option<Vec<u8>>,
    /// Sealed DNS provider secret (the TSIG key for dns-01), if any.
    pub dns_secret_sealed: Option<Vec<u8>>,
    /// Sealed account credentials, once registered.
    pub account_sealed: Option<Vec<u8>>,
    /// The account's URL at the upstream.
    pub account_url: Option<String>,
    /// When created.
    pub created_at: OffsetDateTime,
}

const COLS: &str = "id, name, kind, config, secret_sealed, account_sealed, account_url, created_at, dns_secret_sealed";

fn row_to_issuer(r: &AnyRow) -> Result<IssuerRecord, StoreError> {
    let config: String = r.try_get("config")?;
    Ok(IssuerRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        config: serde_json::from_str(&config)
            .map_err(|e| StoreError::Corrupt(format!("issuer config: {e}")))?,
        secret_sealed: r.try_get("secret_sealed")?,
        dns_secret_sealed: r.try_get("dns_secret_sealed")?,
        account_sealed: r.try_get("account_sealed")?,
        account_url: r.try_get("account_url")?,
        created_at: from_ts(r.try_get("created_at")?),
    })
}

impl Store {
    /// Insert an issuer with the CA row that stands for it and the audit event, in one
    /// transaction.
    pub async fn insert_issuer(
        &self,
        ca: &NewCaRecord,
        rec: &IssuerRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        insert_ca_row(&mut tx, ca, rec.created_at).await?;
        sqlx::query(&format!(
            "INSERT INTO issuers ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&rec.id)
        .bind(&rec.name)
        .bind(&rec.kind)
        .bind(rec.config.to_string())
        .bind(&rec.secret_sealed)
        .bind(&rec.account_sealed)
        .bind(&rec.account_url)
        .bind(ts(rec.created_at))
        .bind(&rec.dns_secret_sealed)
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, ts(rec.created_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An issuer by id or name.
    pub async fn get_issuer(&self, id_or_name: &str) -> Result<IssuerRecord, StoreError> {
        self.one_by_key(
            &format!("SELECT {COLS} FROM issuers WHERE id = $1 OR name = $1"),
            id_or_name,
            row_to_issuer,
            "issuer",
        )
        .await
    }

    /// Every issuer by name.
    pub async fn list_issuers(&self) -> Result<Vec<IssuerRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM issuers ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_issuer).collect()
    }

    /// Replace the upstream chain (the issuing certificate and what is above it) shown for
    /// an issuer's certificates.
    pub async fn set_issuer_chain(
        &self,
        id: &str,
        cert_der: &[u8],
        info: &certkeeper_ca::CertInfo,
        chain_pem: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cas SET cert_der = $1, chain_pem = $2, serial = $3, fingerprint = $4,
             not_before = $5, not_after = $6 WHERE id = $7 AND kind = 'external' AND status = 'disabled'",
        )
        .bind(cert_der)
        .bind(chain_pem)
        .bind(&info.serial)
        .bind(&info.fingerprint_sha256)
        .bind(ts(info.not_before))
        .bind(ts(info.not_after))
        .bind(id)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Seal `account_sealed` in place of the issuer's account credentials (after a key
    /// rollover), with its audit event.
    pub async fn replace_issuer_account(
        &self,
        id: &str,
        account_sealed: &[u8],
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE issuers SET account_sealed = $1 WHERE id = $2")
            .bind(account_sealed)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("issuer {id:?}")));
        }
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remove an issuer. Its CA row goes too unless certificates it issued keep it (they
    /// stay in the inventory under its name). Refused while a profile names it.
    pub async fn delete_issuer(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let used = sqlx::query("SELECT name FROM profiles WHERE ca_id = $1 ORDER BY name")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        if let Some(p) = used.first() {
            let name: String = p.try_get("name")?;
            return Err(StoreError::Conflict(format!(
                "profile {name:?} issues through this issuer; change or delete it first"
            )));
        }
        let done = sqlx::query("DELETE FROM issuers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("issuer {id:?}")));
        }
        sqlx::query(
            "DELETE FROM cas WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM certificates WHERE ca_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Publish the http-01 answer for `token` until `expires_at`.
    pub async fn put_http01(
        &self,
        token: &str,
        key_authorization: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO upstream_http01 (token, key_authorization, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (token) DO UPDATE SET key_authorization = $2, expires_at = $3",
        )
        .bind(token)
        .bind(key_authorization)
        .bind(ts(expires_at))
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// The http-01 answer for `token`, if it is published and not expired at `now`.
    pub async fn get_http01(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT key_authorization FROM upstream_http01 WHERE token = $1 AND expires_at > $2",
        )
        .bind(token)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Withdraw http-01 answers: `token`'s, and every expired one.
    pub async fn delete_http01(&self, token: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM upstream_http01 WHERE token = $1 OR expires_at <= $2")
            .bind(token)
            .bind(ts(now))
            .execute(&self.writes)
            .await?;
        Ok(())
    }
}
