//! What the metrics endpoint reports about the stored data, read when it is scraped: the
//! same for every replica, since it comes from the shared database.

use sqlx::Row;

use super::{Store, StoreError};

/// Valid certificates of one CA and profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateGauge {
    /// The issuing CA's name.
    pub ca: String,
    /// The profile's name (empty when none).
    pub profile: String,
    /// The earliest expiry among them (Unix seconds).
    pub earliest_not_after: i64,
    /// How many expire within 7, 30 and 90 days, and in all.
    pub expiring: [i64; 3],
    /// How many there are.
    pub total: i64,
}

/// The data behind the gauges of `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Valid, unexpired certificates by CA and profile.
    pub certificates: Vec<CertificateGauge>,
    /// Each CA with a certificate, and its expiry (Unix seconds).
    pub cas: Vec<(String, i64)>,
    /// Alert outbox rows by status.
    pub outbox: Vec<(String, i64)>,
    /// ACME orders kept, by status.
    pub acme_orders: Vec<(String, i64)>,
    /// ACME challenges kept, by type and status.
    pub acme_challenges: Vec<(String, String, i64)>,
    /// Managed-certificate events by kind (issued, renewed, renewal_failed, synced,
    /// sync_failed, revoked), all time.
    pub managed_events: Vec<(String, i64)>,
    /// Discovery scans by status, and the duration of the last finished scan (seconds).
    pub scans: Vec<(String, i64)>,
    /// How long the last finished scan ran, in seconds.
    pub last_scan_seconds: Option<i64>,
    /// What this process's group-commit writer has committed (not from the database).
    pub writer: super::WriterCounts,
}

/// Windows the certificate counts are kept for, in days.
pub const WINDOWS: [i64; 3] = [7, 30, 90];

impl Store {
    /// Read the gauges at `now` (Unix seconds).
    pub async fn gauges(&self, now: i64) -> Result<Gauges, StoreError> {
        let d = 86_400;
        let rows = sqlx::query(
            "SELECT cas.name, COALESCE(c.profile_name, ''), MIN(c.not_after), \
                    SUM(CASE WHEN c.not_after <= $2 THEN 1 ELSE 0 END), \
                    SUM(CASE WHEN c.not_after <= $3 THEN 1 ELSE 0 END), \
                    SUM(CASE WHEN c.not_after <= $4 THEN 1 ELSE 0 END), COUNT(*) \
             FROM certificates c JOIN cas ON cas.id = c.ca_id \
             WHERE c.status = 'valid' AND c.not_after > $1 \
             GROUP BY cas.name, COALESCE(c.profile_name, '') ORDER BY 1, 2",
        )
        .bind(now)
        .bind(now + WINDOWS[0] * d)
        .bind(now + WINDOWS[1] * d)
        .bind(now + WINDOWS[2] * d)
        .fetch_all(&self.pool)
        .await?;
        let certificates = rows
            .iter()
            .map(|r| {
                Ok(CertificateGauge {
                    ca: r.try_get(0)?,
                    profile: r.try_get(1)?,
                    earliest_not_after: r.try_get(2)?,
                    expiring: [r.try_get(3)?, r.try_get(4)?, r.try_get(5)?],
                    total: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let pairs = |sql: &'static str| async move {
            let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        };
        let cas = pairs("SELECT name, not_after FROM cas WHERE cert_der IS NOT NULL ORDER BY name")
            .await?;
        let outbox =
            pairs("SELECT status, COUNT(*) FROM alert_outbox GROUP BY status ORDER BY 1").await?;
        let acme_orders =
            pairs("SELECT status, COUNT(*) FROM acme_orders GROUP BY status ORDER BY 1").await?;
        let managed_events =
            pairs("SELECT kind, COUNT(*) FROM managed_events GROUP BY kind ORDER BY 1").await?;
        let scans =
            pairs("SELECT status, COUNT(*) FROM discovery_scans GROUP BY status ORDER BY 1")
                .await?;
        let acme_challenges = sqlx::query(
            "SELECT type, status, COUNT(*) FROM acme_challenges GROUP BY type, status ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let last_scan_seconds = sqlx::query(
            "SELECT finished_at - started_at FROM discovery_scans \
             WHERE finished_at IS NOT NULL AND started_at IS NOT NULL \
             ORDER BY finished_at DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get::<i64, _>(0))
        .transpose()?;
        Ok(Gauges {
            certificates,
            cas,
            outbox,
            acme_orders,
            acme_challenges,
            managed_events,
            scans,
            last_scan_seconds,
            writer: self.writer.counts(),
        })
    }
}
