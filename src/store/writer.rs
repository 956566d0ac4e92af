//! Group commit for issued certificates.
//!
//! Every certificate must be on disk before it is returned. One commit per certificate
//! would cap issuance at the disk's fsync rate, so concurrent issuances are queued here and
//! written together in one transaction; each caller is answered only after that commit.
//! On an SQLite file the writer is a thread with prepared statements
//! ([`super::sqlite_writer`]); on PostgreSQL (and SQLite in memory) a task that sends each
//! batch as three multi-row statements.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::AnyPool;

use super::batch::{BatchWrite, Batcher};
use super::certs::{NewCertificate, TALLY_ADD, new_tallies, reversed_name};
use super::sqlite_writer::SqliteCertWriter;
use super::{AuditEvent, Engine, StoreError, ts};

/// The start of the statement that inserts new certificates; `status` (the 13th column)
/// is always `valid`.
macro_rules! cert_insert {
    () => {
        "INSERT INTO certificates (id, ca_id, profile_name, serial, subject, common_name, sans, issuer, not_before, not_after,
         key_algorithm, fingerprint, status, der, key_sealed, created_at, created_by) VALUES "
    };
}
/// Rows of new certificates follow this (see [`placeholders`]).
const CERT_INSERT: &str = cert_insert!();
/// One new certificate, 16 values bound by position.
pub(crate) const CERT_INSERT_ONE: &str = concat!(
    cert_insert!(),
    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'valid', ?13, ?14, ?15, ?16)"
);
/// One name of a certificate, for search.
pub(crate) const NAME_INSERT: &str =
    "INSERT INTO certificate_names (name, certificate_id, name_reversed) VALUES ($1, $2, $3)";
/// Most rows of `certificate_names` in one statement: 3 values each, well under SQLite's
/// 32766 and PostgreSQL's 65535 bound values.
const NAME_ROWS: usize = 4096;
/// The certificate's audit event.
pub(crate) const AUDIT_INSERT: &str = "INSERT INTO audit_log (at, actor, action, object_type, object_id, source, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// The ACME order finalized with the certificate becomes valid in the same commit; an
/// order no longer `processing` (given up on as interrupted) is left as it is.
pub(crate) const ORDER_COMPLETE: &str = "UPDATE acme_orders SET status = 'valid', error = NULL, certificate_id = $1 WHERE id = $2 AND status = 'processing'";

/// One certificate and its audit event, and the ACME order it completes, if any, with
/// everything the write needs that can be built without the database (names, their JSON,
/// the audit detail): the caller builds it, on its own core, before queueing.
pub(crate) struct Job {
    pub(super) cert: NewCertificate,
    /// Every name, sorted, once each, and its [`reversed_name`] (rows of
    /// `certificate_names`).
    pub(super) names: Vec<(String, String)>,
    /// The names as the JSON array stored in `certificates.sans`.
    pub(super) sans: String,
    pub(super) audit: AuditEvent,
    /// The audit detail as stored (JSON), if any.
    pub(super) detail: Option<String>,
    pub(super) acme_order: Option<String>,
}

impl Job {
    fn new(cert: NewCertificate, audit: AuditEvent, acme_order: Option<String>) -> Job {
        let names = cert.names();
        let sans = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
        let names = names
            .into_iter()
            .map(|n| {
                let r = reversed_name(&n);
                (n, r)
            })
            .collect();
        let detail = audit.stored_detail();
        Job {
            cert,
            names,
            sans,
            audit,
            detail,
            acme_order,
        }
    }
}

/// How much the store's group-commit writer has committed since the process started:
/// the writes divided by the transactions is the mean batch, which says how much of each
/// commit's fixed cost (a flush, the pages every transaction rewrites) one write pays.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterCounts {
    /// Transactions the writer ran (a failed one included).
    pub batches: u64,
    /// Writes those transactions held: certificate records and, on an SQLite file, ACME
    /// state changes.
    pub writes: u64,
}

/// [`WriterCounts`] as the writer updates them.
#[derive(Debug, Default)]
pub(crate) struct WriteCounters {
    batches: AtomicU64,
    writes: AtomicU64,
}

impl WriteCounters {
    /// Count one transaction of `writes` writes.
    pub(crate) fn batch(&self, writes: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
    }

    fn get(&self) -> WriterCounts {
        WriterCounts {
            batches: self.batches.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// Writes certificate records in batches through sqlx (PostgreSQL, and SQLite in memory).
pub(crate) struct CertBatch {
    pool: AnyPool,
    engine: Engine,
    counters: Arc<WriteCounters>,
}

impl BatchWrite for CertBatch {
    type Job = Job;
    /// Whether the job's ACME order was completed.
    type Out = bool;
    // 17 bound values a row: well under SQLite's 32766 and PostgreSQL's 65535 limits.
    const MAX_BATCH: usize = 256;

    async fn write(&self, jobs: &[Job]) -> Result<Vec<bool>, StoreError> {
        self.counters.batch(jobs.len());
        write(&self.pool, self.engine, jobs).await
    }
}

/// The handle that queues certificate records for the writer.
#[derive(Clone, Debug)]
pub(crate) enum CertWriter {
    /// Multi-row statements through sqlx, from a task.
    Batched(Batcher<CertBatch>, Arc<WriteCounters>),
    /// Prepared statements on a thread and connection of its own (an SQLite file).
    Sqlite(SqliteCertWriter),
}

impl CertWriter {
    /// The writer for `pool`'s database: on an SQLite file (`sqlite_file`), a thread of
    /// its own that takes `pool`, the store's writer pool, as its lock (under
    /// `SCHED_BATCH` when `batch_scheduling`).
    pub(crate) fn start(
        pool: AnyPool,
        engine: Engine,
        sqlite_file: Option<PathBuf>,
        batch_scheduling: bool,
    ) -> Result<CertWriter, StoreError> {
        Ok(match sqlite_file {
            Some(path) if engine == Engine::Sqlite => {
                CertWriter::Sqlite(SqliteCertWriter::start(path, pool, batch_scheduling)?)
            }
            _ => {
                let counters = Arc::new(WriteCounters::default());
                let batch = CertBatch {
                    pool,
                    engine,
                    counters: counters.clone(),
                };
                CertWriter::Batched(Batcher::start(batch), counters)
            }
        })
    }

    /// What the writer has committed so far.
    pub(crate) fn counts(&self) -> WriterCounts {
        match self {
            CertWriter::Batched(_, counters) => counters.get(),
            CertWriter::Sqlite(w) => w.counters().get(),
        }
    }

    /// Queue a certificate and its audit event (and the completion of its ACME order);
    /// returns once all are committed, telling whether the order was completed.
    pub(crate) async fn submit(
        &self,
        cert: NewCertificate,
        audit: AuditEvent,
        acme_order: Option<String>,
    ) -> Result<bool, StoreError> {
        let job = Job::new(cert, audit, acme_order);
        match self {
            CertWriter::Batched(b, _) => b.submit(job).await,
            CertWriter::Sqlite(w) => w.submit(job).await,
        }
    }

    /// Write what is queued and stop the writer's own connection, if it has one.
    pub(crate) async fn close(&self) {
        if let CertWriter::Sqlite(w) = self {
            w.close().await;
        }
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
        "{CERT_INSERT}{}",
        placeholders(engine, jobs.len(), 17, Some((12, "'valid'")))
    );
    let mut q = sqlx::query(&sql);
    for job in jobs {
        let c = &job.cert;
        q = q
            .bind(&c.id)
            .bind(&c.ca_id)
            .bind(&c.profile_name)
            .bind(&c.info.serial)
            .bind(&c.info.subject)
            .bind(&c.info.common_name)
            .bind(&job.sans)
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

    let rows: Vec<(&String, &String, &String)> = jobs
        .iter()
        .flat_map(|j| j.names.iter().map(move |(n, r)| (n, &j.cert.id, r)))
        .collect();
    // Statements of at most NAME_ROWS rows (3 values each), however many names the
    // certificates carry.
    for chunk in rows.chunks(NAME_ROWS) {
        let sql = format!(
            "INSERT INTO certificate_names (name, certificate_id, name_reversed) VALUES {}",
            placeholders(engine, chunk.len(), 3, None)
        );
        let mut q = sqlx::query(&sql);
        for (name, id, reversed) in chunk {
            q = q.bind(*name).bind(*id).bind(*reversed);
        }
        q.execute(&mut *tx).await?;
    }

    for ((ca, hour), count) in new_tallies(jobs.iter().map(|j| &j.cert)) {
        sqlx::query(TALLY_ADD)
            .bind(ca)
            .bind("valid")
            .bind(hour)
            .bind(count)
            .execute(&mut *tx)
            .await?;
    }

    let events: Vec<(&AuditEvent, i64, Option<&str>)> = jobs
        .iter()
        .map(|j| (&j.audit, ts(j.cert.created_at), j.detail.as_deref()))
        .collect();
    AuditEvent::write_many(&mut *tx, engine, &events).await?;

    let mut completed = vec![false; jobs.len()];
    for (job, done) in jobs.iter().zip(&mut completed) {
        if let Some(order) = &job.acme_order {
            *done = sqlx::query(ORDER_COMPLETE)
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
