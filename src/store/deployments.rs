//! Where managed certificates are deployed: what host agents report, which discovered
//! endpoints serve a version, and the stale places already alerted on. Times are Unix
//! seconds.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AuditEvent, Store, StoreError};

/// What an agent last reported for one managed certificate on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentReport {
    /// The managed certificate.
    pub managed_id: String,
    /// The host the agent runs on (as it names itself).
    pub host: String,
    /// The agent token that reported it.
    pub token_id: String,
    /// The version the host holds.
    pub version: i64,
    /// Whether the reload command succeeded.
    pub reload_ok: bool,
    /// The reload command's output (bounded) when it failed.
    pub output: Option<String>,
    /// When this host first reported this version.
    pub since: i64,
    /// When it last reported.
    pub reported_at: i64,
}

fn row_to_report(r: &AnyRow) -> Result<AgentReport, StoreError> {
    Ok(AgentReport {
        managed_id: r.try_get("managed_id")?,
        host: r.try_get("host")?,
        token_id: r.try_get("token_id")?,
        version: r.try_get("version")?,
        reload_ok: r.try_get::<i64, _>("reload_ok")? != 0,
        output: r.try_get("output")?,
        since: r.try_get("since")?,
        reported_at: r.try_get("reported_at")?,
    })
}

/// A discovered endpoint serving a version of a managed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedVersion {
    /// Address.
    pub address: String,
    /// Port.
    pub port: i64,
    /// Server name sent (empty: none).
    pub sni: String,
    /// The version it serves.
    pub version: i64,
    /// When discovery first saw it serve that version.
    pub since: i64,
    /// When discovery last saw it.
    pub last_seen: i64,
}

impl ServedVersion {
    /// `address:port`, with `(sni)` when a server name was sent.
    pub fn label(&self) -> String {
        super::discovery::endpoint_label(&self.address, self.port, &self.sni)
    }
}

/// A place already alerted on as serving an old version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleRecord {
    /// The managed certificate.
    pub managed_id: String,
    /// `endpoint` or `host`.
    pub place_kind: String,
    /// The endpoint label or host name.
    pub place: String,
    /// The old version it serves.
    pub version: i64,
    /// Since when it has been stale.
    pub since: i64,
    /// When the alert was raised.
    pub alerted_at: i64,
}

fn row_to_stale(r: &AnyRow) -> Result<StaleRecord, StoreError> {
    Ok(StaleRecord {
        managed_id: r.try_get("managed_id")?,
        place_kind: r.try_get("place_kind")?,
        place: r.try_get("place")?,
        version: r.try_get("version")?,
        since: r.try_get("since")?,
        alerted_at: r.try_get("alerted_at")?,
    })
}

impl Store {
    /// Record an agent's report; `since` stays when the host reports the version it
    /// reported before. When the host is new or its version or reload result changed,
    /// `audit` is written in the same transaction. Returns the row as stored and whether it
    /// changed.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_agent_report(
        &self,
        managed_id: &str,
        host: &str,
        token_id: &str,
        version: i64,
        reload_ok: bool,
        output: Option<&str>,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<(AgentReport, bool), StoreError> {
        const SELECT: &str = "SELECT managed_id, host, token_id, version, reload_ok, output, since, reported_at FROM agent_deployments WHERE managed_id = $1 AND host = $2";
        let mut tx = self.begin_write().await?;
        let before = sqlx::query(SELECT)
            .bind(managed_id)
            .bind(host)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(row_to_report)
            .transpose()?;
        sqlx::query(
            "INSERT INTO agent_deployments (managed_id, host, token_id, version, reload_ok, output, since, reported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (managed_id, host) DO UPDATE SET token_id = excluded.token_id, reload_ok = excluded.reload_ok, output = excluded.output, reported_at = excluded.reported_at, \
             since = CASE WHEN agent_deployments.version = excluded.version THEN agent_deployments.since ELSE excluded.since END, version = excluded.version",
        )
        .bind(managed_id)
        .bind(host)
        .bind(token_id)
        .bind(version)
        .bind(i64::from(reload_ok))
        .bind(output)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(SELECT)
            .bind(managed_id)
            .bind(host)
            .fetch_one(&mut *tx)
            .await?;
        let changed = before.is_none_or(|b| (b.version, b.reload_ok) != (version, reload_ok));
        if changed {
            audit.write(&mut *tx, now).await?;
        }
        tx.commit().await?;
        Ok((row_to_report(&row)?, changed))
    }

    /// Every agent report on a managed certificate, by host.
    pub async fn agent_reports(&self, managed_id: &str) -> Result<Vec<AgentReport>, StoreError> {
        let rows = sqlx::query("SELECT managed_id, host, token_id, version, reload_ok, output, since, reported_at FROM agent_deployments WHERE managed_id = $1 ORDER BY host")
            .bind(managed_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_report).collect()
    }

    /// The endpoints discovery last saw serving a version of a managed certificate (and
    /// not gone since), by address.
    pub async fn endpoints_serving(
        &self,
        managed_id: &str,
    ) -> Result<Vec<ServedVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.address, e.port, e.sni, v.version, COALESCE(e.fingerprint_since, e.first_seen) AS since, e.last_seen \
             FROM discovery_endpoints e JOIN certificates c ON c.fingerprint = e.fingerprint \
             JOIN managed_versions v ON v.certificate_id = c.id \
             WHERE v.managed_id = $1 AND e.gone_at IS NULL ORDER BY e.address, e.port, e.sni",
        )
        .bind(managed_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ServedVersion {
                    address: r.try_get("address")?,
                    port: r.try_get("port")?,
                    sni: r.try_get("sni")?,
                    version: r.try_get("version")?,
                    since: r.try_get("since")?,
                    last_seen: r.try_get("last_seen")?,
                })
            })
            .collect()
    }

    /// Record a stale place; true when it is new (then its alert is due), false when some
    /// replica recorded it already.
    pub async fn insert_stale(&self, s: &StaleRecord) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO stale_deployments (managed_id, place_kind, place, version, since, alerted_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (managed_id, place_kind, place, version) DO NOTHING",
        )
        .bind(&s.managed_id)
        .bind(&s.place_kind)
        .bind(&s.place)
        .bind(s.version)
        .bind(s.since)
        .bind(s.alerted_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The stale places recorded for a managed certificate.
    pub async fn stale_of(&self, managed_id: &str) -> Result<Vec<StaleRecord>, StoreError> {
        let rows = sqlx::query("SELECT managed_id, place_kind, place, version, since, alerted_at FROM stale_deployments WHERE managed_id = $1 ORDER BY place_kind, place, version")
            .bind(managed_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_stale).collect()
    }

    /// Forget a stale place (it no longer serves that version).
    pub async fn delete_stale(&self, s: &StaleRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM stale_deployments WHERE managed_id = $1 AND place_kind = $2 AND place = $3 AND version = $4")
            .bind(&s.managed_id)
            .bind(&s.place_kind)
            .bind(&s.place)
            .bind(s.version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
