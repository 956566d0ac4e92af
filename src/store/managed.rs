//! Managed certificates, their versions, sync destinations and bindings, and the lifecycle
//! events they produce. Renewals and pushes are claimed with row leases (owner and expiry
//! columns, taken by a conditional UPDATE), which work alike on SQLite and PostgreSQL, so
//! that only one replica works on a given certificate or binding at a time.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{AuditEvent, Store, StoreError, from_ts, ts};

/// What every version of a managed certificate is issued with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManagedRequest {
    /// DNS names.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// IP addresses.
    #[serde(default)]
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// Subject common name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// Key type of every version's (fresh) key.
    pub key_algorithm: certkeeper_ca::KeyAlgorithm,
    /// Validity of each version in days; the profile's maximum when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_days: Option<u32>,
}

/// A managed certificate.
#[derive(Debug, Clone)]
pub struct ManagedRecord {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The issuing profile.
    pub profile_name: String,
    /// What each version is issued with.
    pub request: ManagedRequest,
    /// Renew when this percentage of a version's life has passed; two thirds when absent.
    pub renew_at_percent: Option<i64>,
    /// `active` or `revoked`.
    pub status: String,
    /// The newest version (0 before the first).
    pub current_version: i64,
    /// When the next renewal is due (or the next retry after a failure).
    pub next_renewal_at: Option<OffsetDateTime>,
    /// Renewal failures in a row.
    pub renewal_failures: i64,
    /// The last renewal error.
    pub last_error: Option<String>,
    /// The upstream CA's problem document (RFC 7807) of the last failure, when an upstream
    /// refused.
    pub last_problem: Option<serde_json::Value>,
    /// When created.
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// The renewal window the upstream CA suggested for the current version (RFC 9773).
    pub upstream_window: Option<UpstreamWindow>,
}

/// A renewal window an upstream ACME CA suggested (RFC 9773), as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamWindow {
    /// Start.
    pub start: OffsetDateTime,
    /// End.
    pub end: OffsetDateTime,
    /// The page explaining it, when the upstream gave one.
    pub explanation_url: Option<String>,
    /// When certkeeper asks again.
    pub next_check: Option<OffsetDateTime>,
}

/// The columns a new row is written with.
const MANAGED_NEW_COLS: &str = "id, name, profile_name, request, renew_at_percent, status, current_version, next_renewal_at, renewal_failures, last_error, created_at, created_by, last_problem";
/// The columns a row is read with.
const MANAGED_COLS: &str = "id, name, profile_name, request, renew_at_percent, status, current_version, next_renewal_at, renewal_failures, last_error, created_at, created_by, last_problem, ari_window_start, ari_window_end, ari_explanation, ari_check_at";

fn row_to_managed(r: &AnyRow) -> Result<ManagedRecord, StoreError> {
    let request: String = r.try_get("request")?;
    Ok(ManagedRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        profile_name: r.try_get("profile_name")?,
        request: serde_json::from_str(&request)
            .map_err(|e| StoreError::Corrupt(format!("managed request: {e}")))?,
        renew_at_percent: r.try_get("renew_at_percent")?,
        status: r.try_get("status")?,
        current_version: r.try_get("current_version")?,
        next_renewal_at: r.try_get::<Option<i64>, _>("next_renewal_at")?.map(from_ts),
        renewal_failures: r.try_get("renewal_failures")?,
        last_error: r.try_get("last_error")?,
        last_problem: r
            .try_get::<Option<String>, _>("last_problem")?
            .and_then(|p| serde_json::from_str(&p).ok()),
        created_at: from_ts(r.try_get("created_at")?),
        created_by: r.try_get("created_by")?,
        upstream_window: match (
            r.try_get::<Option<i64>, _>("ari_window_start")?,
            r.try_get::<Option<i64>, _>("ari_window_end")?,
        ) {
            (Some(start), Some(end)) => Some(UpstreamWindow {
                start: from_ts(start),
                end: from_ts(end),
                explanation_url: r.try_get("ari_explanation")?,
                next_check: r.try_get::<Option<i64>, _>("ari_check_at")?.map(from_ts),
            }),
            _ => None,
        },
    })
}

/// A managed certificate whose current version came from an upstream ACME CA and whose
/// renewal information is due to be asked for.
#[derive(Debug, Clone)]
pub struct RenewalInfoDue {
    /// The managed certificate.
    pub managed_id: String,
    /// Its current version's certificate.
    pub certificate_id: String,
    /// The issuer that issued it.
    pub issuer_id: String,
    /// Its next renewal as scheduled now.
    pub next_renewal_at: Option<OffsetDateTime>,
}

/// One version of a managed certificate.
#[derive(Debug, Clone)]
pub struct VersionRecord {
    /// 1, 2, ...
    pub version: i64,
    /// The certificate row.
    pub certificate_id: String,
    /// When issued.
    pub created_at: OffsetDateTime,
}

/// A cloud destination. The configuration holds no secrets; those are sealed apart.
#[derive(Debug, Clone)]
pub struct DestinationRecord {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `aws_acm`, `aws_secrets_manager`, `aws_elb`, `azure_key_vault` or `cloudflare`.
    pub kind: String,
    /// The kind's configuration (no secrets).
    pub config: serde_json::Value,
    /// Credentials sealed with the master key, when given.
    pub secret_sealed: Option<Vec<u8>>,
    /// Whether what certkeeper put there is removed when a binding to it goes.
    pub remove_on_unbind: bool,
    /// When created.
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
}

const DEST_COLS: &str =
    "id, name, kind, config, secret_sealed, created_at, created_by, remove_on_unbind";

fn row_to_destination(r: &AnyRow) -> Result<DestinationRecord, StoreError> {
    let config: String = r.try_get("config")?;
    Ok(DestinationRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        config: serde_json::from_str(&config)
            .map_err(|e| StoreError::Corrupt(format!("destination config: {e}")))?,
        secret_sealed: r.try_get("secret_sealed")?,
        remove_on_unbind: r.try_get::<i64, _>("remove_on_unbind")? != 0,
        created_at: from_ts(r.try_get("created_at")?),
        created_by: r.try_get("created_by")?,
    })
}

/// The sync state of a managed certificate at one destination.
#[derive(Debug, Clone)]
pub struct BindingRecord {
    /// The managed certificate.
    pub managed_id: String,
    /// The destination.
    pub destination_id: String,
    /// The newest version the destination holds.
    pub pushed_version: Option<i64>,
    /// The remote object (ARN, Key Vault certificate URL).
    pub remote_id: Option<String>,
    /// The remote version.
    pub remote_version: Option<String>,
    /// The last push error.
    pub last_error: Option<String>,
    /// Push failures in a row.
    pub failures: i64,
    /// Not retried before this.
    pub next_attempt_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

const BINDING_COLS: &str = "managed_id, destination_id, pushed_version, remote_id, remote_version, last_error, failures, next_attempt_at, updated_at";

fn row_to_binding(r: &AnyRow) -> Result<BindingRecord, StoreError> {
    Ok(BindingRecord {
        managed_id: r.try_get("managed_id")?,
        destination_id: r.try_get("destination_id")?,
        pushed_version: r.try_get("pushed_version")?,
        remote_id: r.try_get("remote_id")?,
        remote_version: r.try_get("remote_version")?,
        last_error: r.try_get("last_error")?,
        failures: r.try_get("failures")?,
        next_attempt_at: from_ts(r.try_get("next_attempt_at")?),
        updated_at: from_ts(r.try_get("updated_at")?),
    })
}

/// A push to a destination whose last attempt failed.
#[derive(Debug, Clone)]
pub struct FailedPush {
    /// The binding, with its last error and failures in a row.
    pub binding: BindingRecord,
    /// The managed certificate's name.
    pub managed_name: String,
    /// The destination's name.
    pub destination_name: String,
}

/// A lifecycle event of a managed certificate.
#[derive(Debug, Clone)]
pub struct ManagedEvent {
    /// When.
    pub at: OffsetDateTime,
    /// `issued`, `renewed`, `renewal_failed`, `synced`, `sync_failed`, `revoked`.
    pub kind: String,
    /// Facts (never secrets).
    pub detail: serde_json::Value,
}

impl Store {
    /// Record a new managed certificate with its first version.
    pub async fn insert_managed(
        &self,
        rec: &ManagedRecord,
        first_certificate_id: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let request =
            serde_json::to_string(&rec.request).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "INSERT INTO managed_certificates ({MANAGED_NEW_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&rec.id)
        .bind(&rec.name)
        .bind(&rec.profile_name)
        .bind(request)
        .bind(rec.renew_at_percent)
        .bind(&rec.status)
        .bind(rec.current_version)
        .bind(rec.next_renewal_at.map(ts))
        .bind(rec.renewal_failures)
        .bind(&rec.last_error)
        .bind(ts(rec.created_at))
        .bind(&rec.created_by)
        .bind(rec.last_problem.as_ref().map(|p| p.to_string()))
        .execute(&mut *tx)
        .await?;
        if let Some(first) = first_certificate_id {
            sqlx::query("INSERT INTO managed_versions (managed_id, version, certificate_id, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&rec.id)
                .bind(rec.current_version)
                .bind(first)
                .bind(ts(rec.created_at))
                .execute(&mut *tx)
                .await?;
        }
        audit.write(&mut *tx, ts(rec.created_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A managed certificate by id or name.
    pub async fn get_managed(&self, id_or_name: &str) -> Result<ManagedRecord, StoreError> {
        self.one_by_key(
            &format!("SELECT {MANAGED_COLS} FROM managed_certificates WHERE id = $1 OR name = $1"),
            id_or_name,
            row_to_managed,
            "managed certificate",
        )
        .await
    }

    /// Up to `limit` managed certificates whose last renewal failed, most failures first.
    pub async fn failed_renewals(&self, limit: i64) -> Result<Vec<ManagedRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MANAGED_COLS} FROM managed_certificates WHERE renewal_failures > 0
             ORDER BY renewal_failures DESC, name LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_managed).collect()
    }

    /// Every managed certificate, by name.
    pub async fn list_managed(&self) -> Result<Vec<ManagedRecord>, StoreError> {
        self.all_rows(
            &format!("SELECT {MANAGED_COLS} FROM managed_certificates ORDER BY name"),
            row_to_managed,
        )
        .await
    }

    /// The versions of a managed certificate, newest first.
    pub async fn managed_versions(&self, id: &str) -> Result<Vec<VersionRecord>, StoreError> {
        let rows = sqlx::query("SELECT version, certificate_id, created_at FROM managed_versions WHERE managed_id = $1 ORDER BY version DESC")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(VersionRecord {
                    version: r.try_get("version")?,
                    certificate_id: r.try_get("certificate_id")?,
                    created_at: from_ts(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Bring renewals forward where an administrator moved the renewal window (ACME renewal
    /// information, RFC 9773) of a managed certificate's current version, or of every
    /// certificate from its CA, to start by `now`. Windows set before the version was issued
    /// do not count, so the renewed version is not renewed again. Returns how many moved.
    pub async fn apply_renewal_windows(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE managed_certificates SET next_renewal_at = $1
             WHERE status = 'active' AND next_renewal_at > $1 AND EXISTS (
                 SELECT 1 FROM managed_versions v
                 JOIN certificates c ON c.id = v.certificate_id
                 JOIN acme_renewal_overrides o ON (o.certificate_id = c.id OR o.ca_id = c.ca_id)
                 WHERE v.managed_id = managed_certificates.id
                   AND v.version = managed_certificates.current_version
                   AND o.created_at > c.created_at
                   AND o.window_start <= $1)",
        )
        .bind(ts(now))
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected())
    }

    /// Active managed certificates, not failing and not leased, whose current version an
    /// upstream ACME CA issued and whose renewal information is due at `now` (at most 100).
    pub async fn renewal_info_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<RenewalInfoDue>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id AS managed_id, c.id AS certificate_id, c.ca_id AS issuer_id, m.next_renewal_at
             FROM managed_certificates m
             JOIN managed_versions v ON v.managed_id = m.id AND v.version = m.current_version
             JOIN certificates c ON c.id = v.certificate_id
             JOIN issuers i ON i.id = c.ca_id
             WHERE m.status = 'active' AND m.renewal_failures = 0 AND i.kind = 'acme'
               AND (m.ari_check_at IS NULL OR m.ari_check_at <= $1)
               AND (m.lease_until IS NULL OR m.lease_until < $1)
             ORDER BY m.ari_check_at LIMIT 100",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RenewalInfoDue {
                    managed_id: r.try_get("managed_id")?,
                    certificate_id: r.try_get("certificate_id")?,
                    issuer_id: r.try_get("issuer_id")?,
                    next_renewal_at: r.try_get::<Option<i64>, _>("next_renewal_at")?.map(from_ts),
                })
            })
            .collect()
    }

    /// Record what an upstream said about renewing `id`'s current version
    /// (`certificate_id`): the window (none when it offers no renewal information), when to
    /// ask again, and, when the window moves the renewal, the new renewal time. Nothing
    /// changes if a renewal or failure got there first. Answers whether it was recorded.
    pub async fn record_renewal_info(
        &self,
        id: &str,
        certificate_id: &str,
        window: Option<&UpstreamWindow>,
        next_check: OffsetDateTime,
        next_renewal_at: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE managed_certificates SET ari_window_start = $1, ari_window_end = $2,
             ari_explanation = $3, ari_check_at = $4, next_renewal_at = COALESCE($5, next_renewal_at)
             WHERE id = $6 AND status = 'active' AND renewal_failures = 0 AND EXISTS (
                 SELECT 1 FROM managed_versions v WHERE v.managed_id = managed_certificates.id
                   AND v.version = managed_certificates.current_version AND v.certificate_id = $7)",
        )
        .bind(window.map(|w| ts(w.start)))
        .bind(window.map(|w| ts(w.end)))
        .bind(window.and_then(|w| w.explanation_url.clone()))
        .bind(ts(next_check))
        .bind(next_renewal_at.map(ts))
        .bind(id)
        .bind(certificate_id)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Active managed certificates whose renewal is due at `now` and not leased.
    pub async fn due_managed(&self, now: OffsetDateTime) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM managed_certificates WHERE status = 'active' AND next_renewal_at <= $1
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_renewal_at LIMIT 100",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(Into::into))
            .collect()
    }

    /// Claim a managed certificate for renewal until `until`; `due_only` claims it only if
    /// its renewal is due. Returns whether this caller holds the lease.
    pub async fn lease_managed(
        &self,
        id: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        due_only: bool,
    ) -> Result<bool, StoreError> {
        let due = if due_only {
            " AND next_renewal_at <= $3"
        } else {
            ""
        };
        let done = sqlx::query(&format!(
            "UPDATE managed_certificates SET lease_owner = $1, lease_until = $2
             WHERE id = $4 AND status = 'active' AND (lease_until IS NULL OR lease_until < $3){due}"
        ))
        .bind(owner)
        .bind(ts(until))
        .bind(ts(now))
        .bind(id)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Record a renewal by the lease holder: the new version, the next renewal, the lease
    /// released, one transaction. Returns the new version number.
    pub async fn record_renewal(
        &self,
        id: &str,
        owner: &str,
        certificate_id: &str,
        next_renewal_at: OffsetDateTime,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT current_version FROM managed_certificates WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Conflict("the renewal lease was lost".into()))?;
        let version: i64 = row.try_get::<i64, _>("current_version")? + 1;
        sqlx::query("INSERT INTO managed_versions (managed_id, version, certificate_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(version)
            .bind(certificate_id)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE managed_certificates SET current_version = $1, next_renewal_at = $2, renewal_failures = 0,
             last_error = NULL, last_problem = NULL, lease_owner = NULL, lease_until = NULL,
             ari_window_start = NULL, ari_window_end = NULL, ari_explanation = NULL, ari_check_at = NULL
             WHERE id = $3",
        )
        .bind(version)
        .bind(ts(next_renewal_at))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let mut audit = audit.clone();
        audit.detail["version"] = serde_json::json!(version);
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Record a failed renewal by the lease holder and release the lease; returns the
    /// number of failures in a row.
    pub async fn record_renewal_failure(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        problem: Option<&serde_json::Value>,
        retry_at: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        sqlx::query(
            "UPDATE managed_certificates SET renewal_failures = renewal_failures + 1, last_error = $1,
             next_renewal_at = $2, lease_owner = NULL, lease_until = NULL, last_problem = $5
             WHERE id = $3 AND lease_owner = $4",
        )
        .bind(error)
        .bind(ts(retry_at))
        .bind(id)
        .bind(owner)
        .bind(problem.map(|p| p.to_string()))
        .execute(&self.writes)
        .await?;
        let row = sqlx::query("SELECT renewal_failures FROM managed_certificates WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("renewal_failures")?)
    }

    /// Release a renewal lease without recording anything.
    pub async fn release_managed(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE managed_certificates SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    /// Stop renewing: the managed certificate is revoked.
    pub async fn mark_managed_revoked(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE managed_certificates SET status = 'revoked', next_renewal_at = NULL, lease_owner = NULL, lease_until = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Delete a managed certificate with its versions, bindings and events. The issued
    /// certificates stay on record.
    pub async fn delete_managed(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM sync_bindings WHERE managed_id = $1",
            "DELETE FROM managed_versions WHERE managed_id = $1",
            "DELETE FROM managed_events WHERE managed_id = $1",
            "DELETE FROM agent_deployments WHERE managed_id = $1",
            "DELETE FROM stale_deployments WHERE managed_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM managed_certificates WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("managed certificate {id:?}")));
        }
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Record a lifecycle event.
    pub async fn insert_managed_event(
        &self,
        managed_id: &str,
        kind: &str,
        detail: &serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO managed_events (managed_id, at, kind, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(managed_id)
        .bind(ts(now))
        .bind(kind)
        .bind(detail.to_string())
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// The newest lifecycle events of a managed certificate, newest first.
    pub async fn managed_events(
        &self,
        managed_id: &str,
        limit: i64,
    ) -> Result<Vec<ManagedEvent>, StoreError> {
        let rows = sqlx::query("SELECT at, kind, detail FROM managed_events WHERE managed_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(managed_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let detail: Option<String> = r.try_get("detail")?;
                Ok(ManagedEvent {
                    at: from_ts(r.try_get("at")?),
                    kind: r.try_get("kind")?,
                    detail: detail
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    /// Record a destination.
    pub async fn insert_destination(
        &self,
        rec: &DestinationRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "INSERT INTO sync_destinations ({DEST_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&rec.id)
        .bind(&rec.name)
        .bind(&rec.kind)
        .bind(rec.config.to_string())
        .bind(rec.secret_sealed.clone())
        .bind(ts(rec.created_at))
        .bind(&rec.created_by)
        .bind(i64::from(rec.remove_on_unbind))
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, ts(rec.created_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A destination by id or name.
    pub async fn get_destination(&self, id_or_name: &str) -> Result<DestinationRecord, StoreError> {
        self.one_by_key(
            &format!("SELECT {DEST_COLS} FROM sync_destinations WHERE id = $1 OR name = $1"),
            id_or_name,
            row_to_destination,
            "destination",
        )
        .await
    }

    /// Every destination, by name.
    pub async fn list_destinations(&self) -> Result<Vec<DestinationRecord>, StoreError> {
        self.all_rows(
            &format!("SELECT {DEST_COLS} FROM sync_destinations ORDER BY name"),
            row_to_destination,
        )
        .await
    }

    /// Delete a destination no managed certificate is bound to.
    pub async fn delete_destination(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let bound = sqlx::query("SELECT managed_id FROM sync_bindings WHERE destination_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if bound.is_some() {
            return Err(StoreError::Conflict(
                "managed certificates are still bound to this destination".into(),
            ));
        }
        let done = sqlx::query("DELETE FROM sync_destinations WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("destination {id:?}")));
        }
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Bind a managed certificate to a destination; the current version is pushed next.
    pub async fn insert_binding(
        &self,
        managed_id: &str,
        destination_id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sync_bindings (managed_id, destination_id, failures, next_attempt_at, updated_at) VALUES ($1, $2, 0, $3, $3)",
        )
        .bind(managed_id)
        .bind(destination_id)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remove a binding (the remote object is left alone).
    pub async fn delete_binding(
        &self,
        managed_id: &str,
        destination_id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("DELETE FROM sync_bindings WHERE managed_id = $1 AND destination_id = $2")
                .bind(managed_id)
                .bind(destination_id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound("no such binding".into()));
        }
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The bindings of a managed certificate.
    pub async fn bindings_of(&self, managed_id: &str) -> Result<Vec<BindingRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {BINDING_COLS} FROM sync_bindings WHERE managed_id = $1 ORDER BY destination_id"
        ))
        .bind(managed_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_binding).collect()
    }

    /// One binding.
    pub async fn get_binding(
        &self,
        managed_id: &str,
        destination_id: &str,
    ) -> Result<BindingRecord, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {BINDING_COLS} FROM sync_bindings WHERE managed_id = $1 AND destination_id = $2"
        ))
        .bind(managed_id)
        .bind(destination_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound("no such binding".into()))?;
        row_to_binding(&row)
    }

    /// Up to `limit` bindings whose last push failed, most recent first, with the names of
    /// their managed certificate and destination.
    pub async fn failed_pushes(&self, limit: i64) -> Result<Vec<FailedPush>, StoreError> {
        let cols: Vec<String> = BINDING_COLS
            .split(',')
            .map(|c| format!("b.{}", c.trim()))
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT {}, m.name AS managed_name, d.name AS destination_name
             FROM sync_bindings b
             JOIN managed_certificates m ON m.id = b.managed_id
             JOIN sync_destinations d ON d.id = b.destination_id
             WHERE b.failures > 0 ORDER BY b.updated_at DESC LIMIT $1",
            cols.join(", ")
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FailedPush {
                    binding: row_to_binding(r)?,
                    managed_name: r.try_get("managed_name")?,
                    destination_name: r.try_get("destination_name")?,
                })
            })
            .collect()
    }

    /// Bindings behind their certificate's current version, due and not leased.
    pub async fn due_bindings(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT b.managed_id, b.destination_id FROM sync_bindings b
             JOIN managed_certificates m ON m.id = b.managed_id
             WHERE m.status = 'active' AND m.current_version > COALESCE(b.pushed_version, 0)
             AND b.next_attempt_at <= $1 AND (b.lease_until IS NULL OR b.lease_until < $1)
             ORDER BY b.next_attempt_at LIMIT 100",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("managed_id")?, r.try_get("destination_id")?)))
            .collect()
    }

    /// Claim a binding for a push until `until`. Returns whether this caller holds it.
    pub async fn lease_binding(
        &self,
        managed_id: &str,
        destination_id: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sync_bindings SET lease_owner = $1, lease_until = $2
             WHERE managed_id = $3 AND destination_id = $4 AND (lease_until IS NULL OR lease_until < $5)",
        )
        .bind(owner)
        .bind(ts(until))
        .bind(managed_id)
        .bind(destination_id)
        .bind(ts(now))
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Record a successful push by the lease holder and release the lease. A version older
    /// than the one already recorded is never recorded over it.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_push(
        &self,
        managed_id: &str,
        destination_id: &str,
        owner: &str,
        version: i64,
        remote_id: &str,
        remote_version: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sync_bindings SET pushed_version = $1, remote_id = $2, remote_version = $3, last_error = NULL,
             failures = 0, next_attempt_at = $4, lease_owner = NULL, lease_until = NULL, updated_at = $4
             WHERE managed_id = $5 AND destination_id = $6 AND lease_owner = $7 AND COALESCE(pushed_version, 0) < $1",
        )
        .bind(version)
        .bind(remote_id)
        .bind(remote_version)
        .bind(ts(now))
        .bind(managed_id)
        .bind(destination_id)
        .bind(owner)
        .execute(&self.writes)
        .await?;
        self.release_binding(managed_id, destination_id, owner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Record a failed push by the lease holder and release the lease; returns the number
    /// of failures in a row.
    pub async fn record_push_failure(
        &self,
        managed_id: &str,
        destination_id: &str,
        owner: &str,
        error: &str,
        retry_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        sqlx::query(
            "UPDATE sync_bindings SET failures = failures + 1, last_error = $1, next_attempt_at = $2,
             lease_owner = NULL, lease_until = NULL, updated_at = $3
             WHERE managed_id = $4 AND destination_id = $5 AND lease_owner = $6",
        )
        .bind(error)
        .bind(ts(retry_at))
        .bind(ts(now))
        .bind(managed_id)
        .bind(destination_id)
        .bind(owner)
        .execute(&self.writes)
        .await?;
        Ok(self.get_binding(managed_id, destination_id).await?.failures)
    }

    /// Release a push lease.
    pub async fn release_binding(
        &self,
        managed_id: &str,
        destination_id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sync_bindings SET lease_owner = NULL, lease_until = NULL WHERE managed_id = $1 AND destination_id = $2 AND lease_owner = $3")
            .bind(managed_id)
            .bind(destination_id)
            .bind(owner)
            .execute(&self.writes)
            .await?;
        Ok(())
    }
}
