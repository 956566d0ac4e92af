//! Group commit for issued certificates.
//!
//! Every certificate must be on disk before it is returned. One commit per certificate
//! would cap issuance at the disk's fsync rate, so concurrent issuances are queued here and
//! written together in one transaction; each caller is answered only after that commit.

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::certs::NewCertificate;
use super::{AuditEvent, StoreError, ts};

const MAX_BATCH: usize = 256;

struct Job {
    cert: NewCertificate,
    audit: AuditEvent,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle that queues certificate records for the writer task.
#[derive(Clone, Debug)]
pub(crate) struct CertWriter {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("id", &self.cert.id).finish()
    }
}

impl CertWriter {
    pub(crate) fn start(pool: AnyPool) -> CertWriter {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(pool, rx));
        CertWriter { tx }
    }

    pub(crate) async fn submit(
        &self,
        cert: NewCertificate,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { cert, audit, done })
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        wait.await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let jobs: Vec<&Job> = batch.iter().collect();
        match write(&pool, &jobs).await {
            Ok(()) => {
                for job in batch.drain(..) {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(job) = batch.pop() {
                    let _ = job.done.send(Err(e));
                }
            }
            Err(_) => {
                // One bad record must not fail the others: write each on its own.
                for job in batch.drain(..) {
                    let r = write(&pool, &[&job]).await;
                    let _ = job.done.send(r);
                }
            }
        }
    }
}

async fn write(pool: &AnyPool, jobs: &[&Job]) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for job in jobs {
        let c = &job.cert;
        let names = c.names();
        sqlx::query(
            "INSERT INTO certificates (id, ca_id, profile_name, serial, subject, common_name, sans, issuer, not_before, not_after,
             key_algorithm, fingerprint, status, der, key_sealed, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'valid', $13, $14, $15, $16)",
        )
        .bind(&c.id)
        .bind(&c.ca_id)
        .bind(&c.profile_name)
        .bind(&c.info.serial)
        .bind(&c.info.subject)
        .bind(&c.info.common_name)
        .bind(serde_json::to_string(&names).unwrap_or_else(|_| "[]".into()))
        .bind(&c.info.issuer)
        .bind(ts(c.info.not_before))
        .bind(ts(c.info.not_after))
        .bind(&c.info.key_algorithm)
        .bind(&c.info.fingerprint_sha256)
        .bind(&c.der)
        .bind(&c.key_sealed)
        .bind(ts(c.created_at))
        .bind(&c.created_by)
        .execute(&mut *tx)
        .await?;
        if !names.is_empty() {
            let values: Vec<String> = (0..names.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "INSERT INTO certificate_names (name, certificate_id) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for n in &names {
                q = q.bind(n).bind(&c.id);
            }
            q.execute(&mut *tx).await?;
        }
        job.audit.write(&mut *tx, ts(c.created_at)).await?;
    }
    tx.commit().await?;
    Ok(())
}
