//! The discovery inventory: certificates seen on the network (one row per fingerprint),
//! the endpoints serving them, scan jobs with their results and changes, and scheduled
//! scans with a row lease so one replica runs each.

use std::collections::HashSet;

use certkeeper_discovery::Observation;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AuditEvent, Store, StoreError, new_id};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A scan job.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Scan)]
pub struct ScanRecord {
    /// Id.
    pub id: String,
    /// The saved scan that started it, if any.
    #[schema(required = true)]
    pub schedule_id: Option<String>,
    /// The request (targets, ports, names, STARTTLS overrides).
    #[schema(value_type = certkeeper_discovery::ScanSpec)]
    pub spec: Value,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    #[schema(value_type = crate::api::openapi::schemas::ScanStatus)]
    pub status: String,
    /// Endpoints to probe.
    #[schema(minimum = 0)]
    pub total: i64,
    /// Endpoints probed so far.
    #[schema(minimum = 0)]
    pub done: i64,
    /// Handshakes completed so far.
    #[schema(minimum = 0)]
    pub handshakes: i64,
    /// Why it failed.
    #[schema(required = true)]
    pub error: Option<String>,
    /// What changed since the previous scan of the same endpoints (when finished).
    #[schema(value_type = Option<ScanChanges>, required = true)]
    pub changes: Option<Value>,
    /// When created (Unix seconds).
    pub created_at: i64,
    /// When it started running.
    #[schema(required = true)]
    pub started_at: Option<i64>,
    /// When it finished.
    #[schema(required = true)]
    pub finished_at: Option<i64>,
    /// Who asked for it.
    pub created_by: String,
}

const SCAN_COLS: &str = "id, schedule_id, spec, status, total, done, handshakes, error, changes, created_at, started_at, finished_at, created_by";

fn row_to_scan(r: &AnyRow) -> Result<ScanRecord, StoreError> {
    let spec: String = r.try_get("spec")?;
    let changes: Option<String> = r.try_get("changes")?;
    Ok(ScanRecord {
        id: r.try_get("id")?,
        schedule_id: r.try_get("schedule_id")?,
        spec: serde_json::from_str(&spec).map_err(corrupt)?,
        status: r.try_get("status")?,
        total: r.try_get("total")?,
        done: r.try_get("done")?,
        handshakes: r.try_get("handshakes")?,
        error: r.try_get("error")?,
        changes: changes
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(corrupt)?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        created_by: r.try_get("created_by")?,
    })
}

/// A certificate in the inventory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DiscoveredCertificate)]
pub struct InventoryCertificate {
    /// SHA-256 fingerprint (hex).
    pub fingerprint: String,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial (hex).
    pub serial: String,
    /// Validity start (Unix seconds).
    pub not_before: i64,
    /// Validity end (Unix seconds).
    pub not_after: i64,
    /// DNS names.
    pub dns_names: Vec<String>,
    /// Key type.
    pub key_type: String,
    /// Key size in bits.
    #[schema(minimum = 0)]
    pub key_bits: i64,
    /// Signature algorithm.
    pub signature_algorithm: String,
    /// Whether it chains to one of certkeeper's CAs.
    pub issued_by_certkeeper: bool,
    /// certkeeper's issuance record for it, if certkeeper issued it.
    #[schema(required = true)]
    pub certificate_id: Option<String>,
    /// First seen (Unix seconds).
    pub first_seen: i64,
    /// Last seen.
    pub last_seen: i64,
}

fn row_to_cert(r: &AnyRow) -> Result<InventoryCertificate, StoreError> {
    cert_from(r, "first_seen", "last_seen")
}

/// A certificate from a row whose sighting times are in columns `first` and `last`.
fn cert_from(r: &AnyRow, first: &str, last: &str) -> Result<InventoryCertificate, StoreError> {
    let names: String = r.try_get("dns_names")?;
    Ok(InventoryCertificate {
        fingerprint: r.try_get("fingerprint")?,
        subject: r.try_get("subject")?,
        issuer: r.try_get("issuer")?,
        serial: r.try_get("serial")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        dns_names: serde_json::from_str(&names).map_err(corrupt)?,
        key_type: r.try_get("key_type")?,
        key_bits: r.try_get("key_bits")?,
        signature_algorithm: r.try_get("signature_algorithm")?,
        issued_by_certkeeper: r.try_get::<i64, _>("issued_by_certkeeper")? != 0,
        certificate_id: r.try_get("certificate_id")?,
        first_seen: r.try_get(first)?,
        last_seen: r.try_get(last)?,
    })
}

/// An endpoint in the inventory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DiscoveredEndpoint)]
pub struct InventoryEndpoint {
    /// Id.
    pub id: String,
    /// Address.
    pub address: String,
    /// Port.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: i64,
    /// Server name sent (empty: none).
    pub sni: String,
    /// Fingerprint of the certificate it served when last seen.
    pub fingerprint: String,
    /// Findings about that chain.
    #[schema(value_type = Vec<certkeeper_discovery::Finding>)]
    pub findings: Vec<String>,
    /// TLS version.
    pub tls_version: String,
    /// Cipher suite.
    pub cipher_suite: String,
    /// First seen (Unix seconds).
    pub first_seen: i64,
    /// Last seen with a certificate.
    pub last_seen: i64,
    /// When a scan covering it last found no certificate there (null while it answers).
    #[schema(required = true)]
    pub gone_at: Option<i64>,
    /// The last scan that saw it.
    pub last_scan_id: String,
}

const EP_COLS: &str = "id, address, port, sni, fingerprint, findings, tls_version, cipher_suite, first_seen, last_seen, gone_at, last_scan_id";

fn row_to_endpoint(r: &AnyRow) -> Result<InventoryEndpoint, StoreError> {
    let findings: String = r.try_get("findings")?;
    Ok(InventoryEndpoint {
        id: r.try_get("id")?,
        address: r.try_get("address")?,
        port: r.try_get("port")?,
        sni: r.try_get("sni")?,
        fingerprint: r.try_get("fingerprint")?,
        findings: serde_json::from_str(&findings).map_err(corrupt)?,
        tls_version: r.try_get("tls_version")?,
        cipher_suite: r.try_get("cipher_suite")?,
        first_seen: r.try_get("first_seen")?,
        last_seen: r.try_get("last_seen")?,
        gone_at: r.try_get("gone_at")?,
        last_scan_id: r.try_get("last_scan_id")?,
    })
}

/// What the inventory's endpoint page filters by.
#[derive(Debug, Clone, Default)]
pub struct EndpointFilter {
    /// A finding the endpoint has (`expired`, `self_signed`, ...), or `not_issued_by_us`.
    pub finding: Option<String>,
    /// Text in the address, server name, or the certificate's subject or names (any case).
    pub text: Option<String>,
}

/// A saved scan with a cron schedule.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ScanSchedule)]
pub struct ScheduleRecord {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The scan request.
    #[schema(value_type = certkeeper_discovery::ScanSpec)]
    pub spec: Value,
    /// Cron expression (5 fields, or 6 with seconds), UTC.
    pub cron: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Next run (Unix seconds).
    pub next_run: i64,
    /// The scan it started last.
    #[schema(required = true)]
    pub last_scan_id: Option<String>,
    /// When created.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
}

const SCHED_COLS: &str =
    "id, name, spec, cron, enabled, next_run, last_scan_id, created_at, created_by";

fn row_to_schedule(r: &AnyRow) -> Result<ScheduleRecord, StoreError> {
    let spec: String = r.try_get("spec")?;
    Ok(ScheduleRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        spec: serde_json::from_str(&spec).map_err(corrupt)?,
        cron: r.try_get("cron")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        next_run: r.try_get("next_run")?,
        last_scan_id: r.try_get("last_scan_id")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

/// What changed at the endpoints a scan covered since they were last scanned.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ScanChanges {
    /// Certificates never seen before: `fingerprint`, `subject`, `endpoint`.
    #[schema(value_type = Vec<Object>)]
    pub new_certificates: Vec<Value>,
    /// Endpoints never seen before.
    pub new_endpoints: Vec<String>,
    /// Endpoints now serving a different certificate: `endpoint`, `previous`, `current`
    /// fingerprints.
    #[schema(value_type = Vec<Object>)]
    pub changed: Vec<Value>,
    /// Endpoints the scan covered that no longer present a certificate: `endpoint`,
    /// `fingerprint`.
    #[schema(value_type = Vec<Object>)]
    pub gone: Vec<Value>,
    /// Certificates that expired since they were last seen: `fingerprint`, `subject`,
    /// `not_after`.
    #[schema(value_type = Vec<Object>)]
    pub expired: Vec<Value>,
}

/// Address, port and server name: what identifies an endpoint.
/// An endpoint key as shown in changes: `address:port` or `address:port (sni)`.
pub(super) fn endpoint_label(address: &str, port: i64, sni: &str) -> String {
    let host = if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    };
    if sni.is_empty() {
        host
    } else {
        format!("{host} ({sni})")
    }
}

impl Store {
    /// Record a new scan job as running.
    pub async fn insert_scan(
        &self,
        scan: &ScanRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO discovery_scans (id, schedule_id, spec, status, total, done, handshakes, created_at, started_at, created_by) VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $7, $8)",
        )
        .bind(&scan.id)
        .bind(&scan.schedule_id)
        .bind(scan.spec.to_string())
        .bind(&scan.status)
        .bind(scan.total)
        .bind(scan.created_at)
        .bind(scan.started_at)
        .bind(&scan.created_by)
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, scan.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Update a running scan's counters; false when the scan is no longer running (it
    /// was cancelled), and then nothing is changed.
    pub async fn scan_progress(
        &self,
        id: &str,
        done: u64,
        handshakes: u64,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE discovery_scans SET done = $1, handshakes = $2 WHERE id = $3 AND status = 'running'",
        )
        .bind(i64::try_from(done).unwrap_or(i64::MAX))
        .bind(i64::try_from(handshakes).unwrap_or(i64::MAX))
        .bind(id)
        .execute(&self.writes)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Mark a scan failed.
    pub async fn fail_scan(&self, id: &str, error: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE discovery_scans SET status = 'failed', error = $1, finished_at = $2 WHERE id = $3 AND status = 'running'",
        )
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        AuditEvent::new("system", None, "discovery_scan.fail", "discovery_scan")
            .object(id)
            .detail(serde_json::json!({ "error": error }))
            .write(&mut *tx, now)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Mark scans still `running` that started before `started_before` as failed: their
    /// replica stopped while running them. Returns how many.
    pub async fn fail_abandoned_scans(
        &self,
        started_before: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE discovery_scans SET status = 'failed', error = 'abandoned: the server running it stopped before it finished', finished_at = $1 WHERE status = 'running' AND started_at < $2",
        )
        .bind(now)
        .bind(started_before)
        .execute(&mut *tx)
        .await?;
        let n = done.rows_affected();
        if n > 0 {
            AuditEvent::new("system", None, "discovery_scan.abandon", "discovery_scan")
                .detail(serde_json::json!({ "scans": n }))
                .write(&mut *tx, now)
                .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// One scan.
    pub async fn scan(&self, id: &str) -> Result<ScanRecord, StoreError> {
        self.one_by_key(
            &format!("SELECT {SCAN_COLS} FROM discovery_scans WHERE id = $1"),
            id,
            row_to_scan,
            "scan",
        )
        .await
    }

    /// Recent scans, newest first.
    pub async fn list_scans(&self, limit: i64) -> Result<Vec<ScanRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SCAN_COLS} FROM discovery_scans ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_scan).collect()
    }

    /// A scan's results, in the order they were recorded.
    pub async fn scan_results(&self, id: &str) -> Result<Vec<Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT observation FROM discovery_results WHERE scan_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let s: String = r.try_get("observation")?;
                serde_json::from_str(&s).map_err(corrupt)
            })
            .collect()
    }

    /// Record a batch of a running scan's observations in one short transaction: keep
    /// them as the scan's results (numbered from `first_seq`), and update the inventory
    /// from those with a certificate, adding what changed to `changes`. `seen_certs` holds
    /// the fingerprints this scan already recorded (each certificate's `last_seen` and
    /// expiry check happen once a scan). Returns the handshakes in the batch.
    pub async fn record_scan_batch(
        &self,
        id: &str,
        observations: &[Observation],
        first_seq: i64,
        seen_certs: &mut HashSet<String>,
        changes: &mut ScanChanges,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut handshakes = 0i64;
        let mut seen_here = Vec::new();
        for (seq, obs) in (first_seq..).zip(observations) {
            sqlx::query(
                "INSERT INTO discovery_results (scan_id, seq, observation) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(seq)
            .bind(serde_json::to_string(obs).map_err(corrupt)?)
            .execute(&mut *tx)
            .await?;
            let Some(chain) = &obs.chain else { continue };
            let Some(leaf) = chain.leaf() else { continue };
            handshakes += 1;
            let fp = &leaf.fingerprint_sha256;
            let sni = obs.sni.clone().unwrap_or_default();
            let port = i64::from(obs.port);
            let label = endpoint_label(&obs.address, port, &sni);
            if !seen_certs.contains(fp) {
                seen_here.push(fp.clone());
                seen_certs.insert(fp.clone());
                let known = sqlx::query(
                    "SELECT not_after, last_seen FROM discovery_certificates WHERE fingerprint = $1",
                )
                .bind(fp)
                .fetch_optional(&mut *tx)
                .await?;
                match known {
                    None => {
                        sqlx::query(
                            "INSERT INTO discovery_certificates (fingerprint, subject, issuer, serial, not_before, not_after, dns_names, key_type, key_bits, signature_algorithm, issued_by_certkeeper, certificate_id, der, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, (SELECT id FROM certificates WHERE fingerprint = $1), $12, $13, $13)",
                        )
                        .bind(fp)
                        .bind(&leaf.subject)
                        .bind(&leaf.issuer)
                        .bind(&leaf.serial)
                        .bind(leaf.not_before)
                        .bind(leaf.not_after)
                        .bind(serde_json::to_string(&leaf.dns_names).map_err(corrupt)?)
                        .bind(&leaf.key_type)
                        .bind(i64::from(leaf.key_bits))
                        .bind(&leaf.signature_algorithm)
                        .bind(i64::from(chain.issued_by_certkeeper))
                        .bind(&leaf.der)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        changes.new_certificates.push(serde_json::json!({
                            "fingerprint": fp,
                            "subject": leaf.subject,
                            "endpoint": label,
                        }));
                    }
                    Some(row) => {
                        let not_after: i64 = row.try_get("not_after")?;
                        let last_seen: i64 = row.try_get("last_seen")?;
                        if not_after < now && not_after >= last_seen {
                            changes.expired.push(serde_json::json!({
                                "fingerprint": fp,
                                "subject": leaf.subject,
                                "not_after": not_after,
                            }));
                        }
                        sqlx::query(
                            "UPDATE discovery_certificates SET last_seen = $1 WHERE fingerprint = $2",
                        )
                        .bind(now)
                        .bind(fp)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            let findings: Vec<Value> = chain
                .findings
                .iter()
                .map(|f| serde_json::json!(f))
                .collect();
            let findings = serde_json::to_string(&findings).map_err(corrupt)?;
            let known = sqlx::query(
                "SELECT id, fingerprint FROM discovery_endpoints WHERE address = $1 AND port = $2 AND sni = $3",
            )
            .bind(&obs.address)
            .bind(port)
            .bind(&sni)
            .fetch_optional(&mut *tx)
            .await?;
            match known {
                Some(row) => {
                    let ep_id: String = row.try_get("id")?;
                    let old_fp: String = row.try_get("fingerprint")?;
                    if &old_fp != fp {
                        changes.changed.push(serde_json::json!({
                            "endpoint": label,
                            "previous": old_fp,
                            "current": fp,
                        }));
                    }
                    sqlx::query(
                        "UPDATE discovery_endpoints SET fingerprint_since = CASE WHEN fingerprint = $1 THEN fingerprint_since ELSE $5 END, fingerprint = $1, findings = $2, tls_version = $3, cipher_suite = $4, last_seen = $5, gone_at = NULL, last_scan_id = $6 WHERE id = $7",
                    )
                    .bind(fp)
                    .bind(&findings)
                    .bind(obs.tls_version.clone().unwrap_or_default())
                    .bind(obs.cipher_suite.clone().unwrap_or_default())
                    .bind(now)
                    .bind(id)
                    .bind(&ep_id)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO discovery_endpoints (id, address, port, sni, fingerprint, findings, tls_version, cipher_suite, first_seen, last_seen, last_scan_id, fingerprint_since) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $9)",
                    )
                    .bind(new_id())
                    .bind(&obs.address)
                    .bind(port)
                    .bind(&sni)
                    .bind(fp)
                    .bind(&findings)
                    .bind(obs.tls_version.clone().unwrap_or_default())
                    .bind(obs.cipher_suite.clone().unwrap_or_default())
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    changes.new_endpoints.push(label);
                }
            }
        }
        let committed = tx.commit().await;
        if committed.is_err() {
            // Not recorded: seen again by the next batch, if any.
            for fp in &seen_here {
                seen_certs.remove(fp);
            }
        }
        committed?;
        Ok(handshakes)
    }

    /// Finish a running scan whose observations are all recorded: mark the endpoints it
    /// covered (`covers(address, port, sni)`) but did not see as gone, and the scan as
    /// succeeded with `changes` (completed with those), in one transaction. `None` when
    /// the scan is no longer running (it was cancelled meanwhile): nothing is changed.
    pub async fn finish_scan(
        &self,
        id: &str,
        mut changes: ScanChanges,
        handshakes: i64,
        covers: &(dyn Fn(&str, u16, &str) -> bool + Sync),
        now: i64,
    ) -> Result<Option<ScanChanges>, StoreError> {
        let mut tx = self.begin_write().await?;
        let finished = sqlx::query(
            "UPDATE discovery_scans SET status = 'succeeded', finished_at = $1, handshakes = $2, done = total WHERE id = $3 AND status = 'running'",
        )
        .bind(now)
        .bind(handshakes)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if finished.rows_affected() != 1 {
            return Ok(None);
        }
        let unseen = sqlx::query(
            "SELECT id, address, port, sni, fingerprint FROM discovery_endpoints WHERE gone_at IS NULL AND last_scan_id <> $1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for r in &unseen {
            let address: String = r.try_get("address")?;
            let port: i64 = r.try_get("port")?;
            let sni: String = r.try_get("sni")?;
            if !covers(&address, u16::try_from(port).unwrap_or(0), &sni) {
                continue;
            }
            let ep_id: String = r.try_get("id")?;
            let fp: String = r.try_get("fingerprint")?;
            sqlx::query("UPDATE discovery_endpoints SET gone_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&ep_id)
                .execute(&mut *tx)
                .await?;
            changes.gone.push(serde_json::json!({
                "endpoint": endpoint_label(&address, port, &sni),
                "fingerprint": fp,
            }));
        }
        for list in [
            &mut changes.new_certificates,
            &mut changes.changed,
            &mut changes.gone,
            &mut changes.expired,
        ] {
            list.sort_by_key(|v| v.to_string());
        }
        changes.new_endpoints.sort();
        let summary = serde_json::to_value(&changes).map_err(corrupt)?;
        sqlx::query("UPDATE discovery_scans SET changes = $1 WHERE id = $2")
            .bind(summary.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        AuditEvent::new("system", None, "discovery_scan.finish", "discovery_scan")
            .object(id)
            .detail(serde_json::json!({
                "certificates": handshakes,
                "new_certificates": changes.new_certificates.len(),
                "changed": changes.changed.len(),
                "gone": changes.gone.len(),
                "expired": changes.expired.len(),
            }))
            .write(&mut *tx, now)
            .await?;
        tx.commit().await?;
        Ok(Some(changes))
    }

    /// Mark a running scan cancelled (its runner stops when it next records progress).
    /// False when the scan is not running.
    pub async fn cancel_scan(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE discovery_scans SET status = 'cancelled', finished_at = $1 WHERE id = $2 AND status = 'running'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The inventory's certificates, soonest expiry first.
    pub async fn inventory_certificates(&self) -> Result<Vec<InventoryCertificate>, StoreError> {
        let rows = sqlx::query(
            "SELECT fingerprint, subject, issuer, serial, not_before, not_after, dns_names, key_type, key_bits, signature_algorithm, issued_by_certkeeper, certificate_id, first_seen, last_seen FROM discovery_certificates ORDER BY not_after, fingerprint",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_cert).collect()
    }

    /// One page of the endpoints still served (not gone), by address, port and server
    /// name, each with the certificate it serves; and how many match in all. The filter
    /// and the paging run in the database, so a page costs the same at any inventory size.
    pub async fn endpoint_page(
        &self,
        filter: &EndpointFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<(InventoryEndpoint, InventoryCertificate)>), StoreError> {
        let mut cond = String::from("e.gone_at IS NULL");
        let mut binds: Vec<String> = Vec::new();
        match filter.finding.as_deref() {
            None => {}
            Some("not_issued_by_us") => cond.push_str(" AND c.issued_by_certkeeper = 0"),
            Some(f) => {
                binds.push(super::contains_pattern(&format!("\"{f}\"")));
                cond.push_str(&format!(
                    " AND e.findings LIKE ${} ESCAPE '\\'",
                    binds.len()
                ));
            }
        }
        if let Some(n) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            binds.push(super::contains_pattern(&n.to_lowercase()));
            let i = binds.len();
            cond.push_str(&format!(
                " AND (LOWER(e.address) LIKE ${i} ESCAPE '\\' OR LOWER(e.sni) LIKE ${i} ESCAPE '\\' \
                 OR LOWER(c.subject) LIKE ${i} ESCAPE '\\' OR LOWER(c.dns_names) LIKE ${i} ESCAPE '\\')"
            ));
        }
        let from =
            "discovery_endpoints e JOIN discovery_certificates c ON c.fingerprint = e.fingerprint";
        let count_sql = format!("SELECT COUNT(*) FROM {from} WHERE {cond}");
        let mut count = sqlx::query(&count_sql);
        for b in &binds {
            count = count.bind(b);
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get(0)?;
        let cols = EP_COLS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let page_sql = format!(
            "SELECT {cols}, c.subject, c.issuer, c.serial, c.not_before, c.not_after, c.dns_names, c.key_type, \
             c.key_bits, c.signature_algorithm, c.issued_by_certkeeper, c.certificate_id, \
             c.first_seen AS c_first_seen, c.last_seen AS c_last_seen \
             FROM {from} WHERE {cond} ORDER BY e.address, e.port, e.sni LIMIT ${} OFFSET ${}",
            binds.len() + 1,
            binds.len() + 2
        );
        let mut page = sqlx::query(&page_sql);
        for b in &binds {
            page = page.bind(b);
        }
        let rows = page.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok((
                    row_to_endpoint(r)?,
                    cert_from(r, "c_first_seen", "c_last_seen")?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((total, items))
    }

    /// The inventory's endpoints, by address and port.
    pub async fn inventory_endpoints(&self) -> Result<Vec<InventoryEndpoint>, StoreError> {
        self.all_rows(
            &format!("SELECT {EP_COLS} FROM discovery_endpoints ORDER BY address, port, sni"),
            row_to_endpoint,
        )
        .await
    }

    /// Save a scheduled scan.
    pub async fn insert_schedule(
        &self,
        s: &ScheduleRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO discovery_schedules (id, name, spec, cron, enabled, next_run, lease_until, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
        )
        .bind(&s.id)
        .bind(&s.name)
        .bind(s.spec.to_string())
        .bind(&s.cron)
        .bind(i64::from(s.enabled))
        .bind(s.next_run)
        .bind(s.created_at)
        .bind(&s.created_by)
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, s.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// All scheduled scans.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.all_rows(
            &format!("SELECT {SCHED_COLS} FROM discovery_schedules ORDER BY name"),
            row_to_schedule,
        )
        .await
    }

    /// Delete a scheduled scan (its past scans stay).
    pub async fn delete_schedule(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM discovery_schedules WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("schedule {id:?}")));
        }
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Take the lease on one due schedule, if any: a conditional update that succeeds for
    /// exactly one replica (the row's lease must have expired and the run be due).
    pub async fn claim_due_schedule(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        let due = sqlx::query(&format!(
            "SELECT {SCHED_COLS} FROM discovery_schedules WHERE enabled = 1 AND next_run <= $1 AND lease_until < $1 ORDER BY next_run LIMIT 8"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for row in &due {
            let s = row_to_schedule(row)?;
            let won = sqlx::query(
                "UPDATE discovery_schedules SET lease_owner = $1, lease_until = $2 WHERE id = $3 AND next_run = $4 AND lease_until < $5",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(&s.id)
            .bind(s.next_run)
            .bind(now)
            .execute(&self.writes)
            .await?;
            if won.rows_affected() == 1 {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// Record that a schedule's run started `scan_id`, set its next run, and give up the
    /// lease (only the lease holder can).
    pub async fn release_schedule(
        &self,
        id: &str,
        owner: &str,
        next_run: i64,
        scan_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE discovery_schedules SET next_run = $1, last_scan_id = COALESCE($2, last_scan_id), lease_owner = NULL, lease_until = 0 WHERE id = $3 AND lease_owner = $4",
        )
        .bind(next_run)
        .bind(scan_id)
        .bind(id)
        .bind(owner)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
