//! Group commit for issued certificates.
//!
//! Every certificate must be on disk before it is returned. One commit per certificate
//! would cap issuance at the disk's fsync rate, so concurrent issuances are queued here and
//! written together in one transaction; each caller is answered only after that commit.

use sqlx::AnyPool;

use super::batch::{BatchWrite, Batcher};
use super::certs::NewCertificate;
use super::{AuditEvent, Engine, StoreError, ts};

/// One certificate and its audit event, and the ACME order it completes, if any.
pub(crate) struct Job {
    cert: NewCertificate,
    audit: AuditEvent,
    acme_order: Option<String>,
}

/// Writes certificate records in batches.
pub(crate) struct CertBatch {
    pool: AnyPool,
    engine: Engine,
}

impl BatchWrite for CertBatch {
    type Job = Job;
    /// Whether the job's ACME order was completed.
    type Out = bool;
    // 17 bound values a row: well under SQLite's 32766 and PostgreSQL's 65535 limits.
    const MAX_BATCH: usize = 256;

    async fn write(&self, jobs: &[Job]) -> Result<Vec<bool>, StoreError> {
        write(&self.pool, self.engine, jobs).await
    }
}

/// The handle that queues certificate records for the writer task.
#[derive(Clone, Debug)]
pub(crate) struct CertWriter(Batcher<CertBatch>);

impl CertWriter {
    pub(crate) fn start(pool: AnyPool, engine: Engine) -> CertWriter {
        CertWriter(Batcher::start(CertBatch { pool, engine }))
    }

    /// Queue a certificate and its audit event (and the completion of its ACME order);
    /// returns once all are committed, telling whether the order was completed.
    pub(crate) async fn submit(
        &self,
        cert: NewCertificate,
        audit: AuditEvent,
        acme_order: Option<String>,
    ) -> Result<bool, StoreError> {
        self.0
            .submit(Job {
                cert,
                audit,
                acme_order,
            })
            .await
    }
}

/// `($1, $2, ...), ($n+1, ...)` for `rows` rows of `cols` placeholders (`?` on SQLite,
/// where numbered parameters are looked up by a linear scan per parameter).
pub(crate) fn placeholders(
    engine: Engine,
    rows: usize,
    cols: usize,
    constant: Option<(usize, &str)>,
) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            match constant {
                Some((at, lit)) if at == c => out.push_str(lit),
                _ if engine == Engine::Sqlite => out.push('?'),
                _ => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                }
            }
        }
        out.push(')');
    }
    out
}

/// One transaction, three statements, however many certificates (plus one per completed
/// ACME order): each statement is a round trip to the database's worker, so rows are sent
/// together.
async fn write(pool: &AnyPool, engine: Engine, jobs: &[Job]) -> Result<Vec<bool>, StoreError> {
    let mut tx = super::begin_write(pool, engine).await?;
    let sql = format!(
        "INSERT INTO certificates (id, ca_id, profile_name, serial, subject, common_name, sans, issuer, not_before, not_after,
         key_algorithm, fingerprint, status, der, key_sealed, created_at, created_by) VALUES {}",
        placeholders(engine, jobs.len(), 17, Some((12, "'valid'")))
    );
    let names: Vec<Vec<String>> = jobs.iter().map(|j| j.cert.names()).collect();
    let mut q = sqlx::query(&sql);
    for (job, names) in jobs.iter().zip(&names) {
        let c = &job.cert;
        q = q
            .bind(&c.id)
            .bind(&c.ca_id)
            .bind(&c.profile_name)
            .bind(&c.info.serial)
            .bind(&c.info.subject)
            .bind(&c.info.common_name)
            .bind(serde_json::to_string(names).unwrap_or_else(|_| "[]".into()))
            .bind(&c.info.issuer)
            .bind(ts(c.info.not_before))
            .bind(ts(c.info.not_after))
            .bind(&c.info.key_algorithm)
            .bind(&c.info.fingerprint_sha256)
            .bind(&c.der)
            .bind(&c.key_sealed)
            .bind(ts(c.created_at))
            .bind(&c.created_by);
    }
    q.execute(&mut *tx).await?;

    let pairs: Vec<(&String, &String)> = jobs
        .iter()
        .zip(&names)
        .flat_map(|(j, ns)| ns.iter().map(move |n| (n, &j.cert.id)))
        .collect();
    if !pairs.is_empty() {
        let sql = format!(
            "INSERT INTO certificate_names (name, certificate_id) VALUES {}",
            placeholders(engine, pairs.len(), 2, None)
        );
        let mut q = sqlx::query(&sql);
        for (name, id) in pairs {
            q = q.bind(name).bind(id);
        }
        q.execute(&mut *tx).await?;
    }

    let events: Vec<&AuditEvent> = jobs.iter().map(|j| &j.audit).collect();
    let at: Vec<i64> = jobs.iter().map(|j| ts(j.cert.created_at)).collect();
    AuditEvent::write_many(&mut *tx, engine, &events, &at).await?;

    // ACME orders finalized with these certificates become valid in the same commit; an
    // order no longer `processing` (given up on as interrupted) is left as it is.
    let mut completed = vec![false; jobs.len()];
    for (job, done) in jobs.iter().zip(&mut completed) {
        if let Some(order) = &job.acme_order {
            *done = sqlx::query("UPDATE acme_orders SET status = 'valid', error = NULL, certificate_id = $1 WHERE id = $2 AND status = 'processing'")
                .bind(&job.cert.id)
                .bind(order)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        }
    }
    tx.commit().await?;
    Ok(completed)
}
