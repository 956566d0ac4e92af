//! The SQLite certificate writer: a thread of its own with prepared statements.
//!
//! Every issuance ends in one durable write, and on SQLite writes happen one at a time, so
//! this write bounds what any number of cores can issue. Through sqlx every statement is a
//! hand-off to the connection's worker thread and is parsed again for each batch size;
//! here one thread owns a connection of its own, drains the queue of waiting certificates
//! (up to [`MAX_BATCH`]) and records them with cached prepared statements in one
//! transaction: one hand-off per batch.
//!
//! Nobody is answered before their records are on disk, but the writer does not wait for
//! the disk itself. Its connection commits with `synchronous = NORMAL` (in WAL mode: the
//! commit's frames are written to the WAL, not flushed), and a second thread, the flusher,
//! then flushes the WAL file (`fdatasync`) and only then answers the batch's callers. A
//! commit's frames are in the WAL file when the commit returns, so one flush that starts
//! after it makes it durable: exactly what `synchronous = FULL` does inside the commit.
//! Meanwhile the writer already records the next batch, so CPU and disk overlap, and one
//! flush covers every batch committed while the previous flush ran. (SQLite itself still
//! flushes the WAL before a checkpoint and the database after one, as in `FULL`.)
//!
//! Checkpoints (copying the WAL back into the database file, which ends in an fsync of
//! the database) are also off the writer's path: its connection has automatic checkpoints
//! off, and the flusher runs a `PASSIVE` checkpoint, which never blocks the writer, from a
//! connection of its own after answering, at most every [`CHECKPOINT_EVERY`]. The store's
//! other connections keep SQLite's automatic checkpoints.
//!
//! SQLite starts writing the WAL from its beginning again only when a write transaction
//! begins after a checkpoint has copied every frame back; under a sustained load the
//! writer always has the next batch going by the time the flusher's checkpoint ends, so
//! the WAL would grow for as long as the load lasts. When the flusher finds it longer than
//! [`WAL_RESTART_FRAMES`], the writer checkpoints the rest itself before its next
//! transaction, which then starts the WAL over (the file is cut back to that length).
//!
//! Everything that does not need the database (the names, their JSON, the audit detail) is
//! built by the caller before the job is queued ([`Job`]).
//!
//! The ACME protocol's short writes ([`Script`]s) join the same batches, each under a
//! savepoint of its own; relaxed ones are answered at the commit, durable ones after the
//! flush like certificates.
//!
//! The store's other writes go through its single sqlx writer connection. To keep SQLite's
//! lock uncontended (its busy handler sleeps in steps of up to 100 ms), this thread takes
//! that connection from its pool for the length of each transaction, as a lock: writers in
//! this process queue in order, and another process still meets `busy_timeout`.
//!
//! Both threads run under Linux's `SCHED_BATCH` policy ([`crate::sched`]; unless
//! `server.batch_scheduling` is off): when the
//! request threads and the writer share a core, a request that queues a write does not
//! hand the core to the writer at once for a batch of one; the writer runs when the
//! request threads wait or their slice ends, and finds the writes queued meanwhile.

use std::path::PathBuf;

use rusqlite::{Connection, TransactionBehavior, params};
use sqlx::AnyPool;
use sqlx::error::{DatabaseError, ErrorKind};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::certs::{TALLY_ADD, new_tallies};
use super::script::{Outcome, Script};
use super::writer::{
    AUDIT_INSERT, CERT_INSERT_ONE, Job, NAME_INSERT, ORDER_COMPLETE, WriteCounters,
};

/// The most certificates in one transaction. Rows are bound one statement at a time, so
/// there is no bound-value limit; this caps the memory a batch holds and the wait of the
/// first caller in it.
pub(crate) const MAX_BATCH: usize = 2048;

/// How often the flusher checkpoints the WAL into the database file, at most.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// WAL frames (of one page each) past which the writer makes the WAL start over: 64 MiB
/// with 4 KiB pages.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// The answer one caller waits for.
pub(crate) enum Reply {
    /// A certificate's: whether its ACME order was completed.
    Cert(
        oneshot::Sender<Result<bool, StoreError>>,
        Result<bool, StoreError>,
    ),
    /// A [`Script`]'s.
    Script(ScriptDone, Result<Outcome, StoreError>),
}

impl Reply {
    fn is_err(&self) -> bool {
        match self {
            Reply::Cert(_, r) => r.is_err(),
            Reply::Script(_, r) => r.is_err(),
        }
    }

    /// Answer with what was written, or with `failed` instead if the write was not.
    fn send(self, failed: Option<&dyn Fn() -> StoreError>) {
        fn answer<T>(
            done: oneshot::Sender<Result<T, StoreError>>,
            r: Result<T, StoreError>,
            failed: Option<&dyn Fn() -> StoreError>,
        ) {
            let _ = done.send(match (r, failed) {
                (Ok(_), Some(f)) => Err(f()),
                (r, _) => r,
            });
        }
        match self {
            Reply::Cert(done, r) => answer(done, r, failed),
            Reply::Script(done, r) => answer(done, r, failed),
        }
    }
}

/// A committed batch waiting for the WAL flush: each caller with their answer.
type Committed = Vec<Reply>;

/// A message to the writer thread.
enum Msg {
    /// Record a certificate; the answer says whether its ACME order was completed.
    Write(Box<Job>, oneshot::Sender<Result<bool, StoreError>>),
    /// Run a short write.
    Script(Box<Script>, ScriptDone),
    /// Close the connection and stop; answered once closed.
    Close(oneshot::Sender<()>),
}

/// Where a script's caller waits for its outcome.
type ScriptDone = oneshot::Sender<Result<Outcome, StoreError>>;

/// What the writer thread has taken from its queue for the next transaction.
#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    cert_waiting: Vec<oneshot::Sender<Result<bool, StoreError>>>,
    scripts: Vec<(Box<Script>, ScriptDone)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.jobs.len() + self.scripts.len()
    }

    /// Take `msg`; a close is returned, not taken.
    fn take(&mut self, msg: Msg) -> Option<oneshot::Sender<()>> {
        match msg {
            Msg::Write(job, done) => {
                self.jobs.push(*job);
                self.cert_waiting.push(done);
                None
            }
            Msg::Script(script, done) => {
                self.scripts.push((script, done));
                None
            }
            Msg::Close(done) => Some(done),
        }
    }
}

/// The handle that queues certificates for the writer thread.
#[derive(Clone, Debug)]
pub(crate) struct SqliteCertWriter {
    tx: mpsc::Sender<Msg>,
    counters: std::sync::Arc<WriteCounters>,
}

impl SqliteCertWriter {
    /// Open a connection to the database file at `path` and start the thread. `lock` is
    /// the store's writer pool (one connection), held for each transaction.
    /// `batch_scheduling`: run both threads under `SCHED_BATCH`.
    pub(crate) fn start(
        path: PathBuf,
        lock: AnyPool,
        batch_scheduling: bool,
    ) -> Result<SqliteCertWriter, StoreError> {
        let conn = open(&path, WAL_RESTART_FRAMES).map_err(db_error)?;
        // The flusher's connection, for checkpoints only.
        let checkpointer = open(&path, WAL_RESTART_FRAMES).map_err(db_error)?;
        let mut wal = path.into_os_string();
        wal.push("-wal");
        let (tx, rx) = mpsc::channel(2 * MAX_BATCH);
        // A few batches may wait for the flush; beyond that the writer waits for it.
        let (to_flusher, flusher_rx) = std::sync::mpsc::sync_channel(4);
        let rt = Handle::current();
        let wal_long = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpoints = Checkpoints {
            conn: checkpointer,
            wal_long: wal_long.clone(),
            restart_frames: WAL_RESTART_FRAMES,
        };
        let flusher = std::thread::Builder::new()
            .name("certkeeper-sqlite-flusher".into())
            .spawn(move || {
                if batch_scheduling {
                    crate::sched::run_as_batch_work();
                }
                flush_and_answer(WalFile::new(wal.into()), flusher_rx, Some(checkpoints))
            })
            .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        let counters = std::sync::Arc::new(WriteCounters::default());
        let writer = Writer {
            conn,
            lock,
            rt,
            wal_long,
            counters: counters.clone(),
        };
        std::thread::Builder::new()
            .name("certkeeper-sqlite-writer".into())
            .spawn(move || {
                if batch_scheduling {
                    crate::sched::run_as_batch_work();
                }
                run(writer, rx, to_flusher, flusher)
            })
            .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        Ok(SqliteCertWriter { tx, counters })
    }

    /// What the writer thread has committed so far.
    pub(crate) fn counters(&self) -> &WriteCounters {
        &self.counters
    }

    /// Queue one certificate and wait until it is committed.
    pub(crate) async fn submit(&self, job: Job) -> Result<bool, StoreError> {
        self.ask(|done| Msg::Write(Box::new(job), done)).await
    }

    /// Queue a short write and wait until it is committed (and, unless it is relaxed,
    /// flushed).
    pub(crate) async fn run_script(&self, script: Script) -> Result<Outcome, StoreError> {
        self.ask(|done| Msg::Script(Box::new(script), done)).await
    }

    /// Queue the message `msg` makes with the caller's reply channel; wait for the reply.
    async fn ask<T>(
        &self,
        msg: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Msg,
    ) -> Result<T, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(msg(done))
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        wait.await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?
    }

    /// Finish what is queued, close the connection and stop the thread.
    pub(crate) async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// The writer's connection: the same durability as the store's other connections.
/// `wal_frames`: the length the WAL file is cut back to when it starts over.
fn open(path: &std::path::Path, wal_frames: i64) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Commits are flushed by the flusher thread before anyone is answered (see above).
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // The flusher checkpoints (see above).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A WAL that grew past this is cut back to it when it starts over.
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    conn.pragma_update(None, "journal_size_limit", wal_frames * page_size)?;
    conn.pragma_update(None, "cache_size", -32768)?;
    // The certificate statements and the scripts' (a few dozen distinct texts).
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The writer thread's connection and what it works with.
struct Writer {
    conn: Connection,
    /// The store's writer pool (one connection), held for each transaction.
    lock: AnyPool,
    rt: Handle,
    /// Set by the flusher when its checkpoint found the WAL longer than
    /// [`WAL_RESTART_FRAMES`].
    wal_long: std::sync::Arc<std::sync::atomic::AtomicBool>,
    counters: std::sync::Arc<WriteCounters>,
}

impl Writer {
    /// Write one batch (see [`write_batch`]), first letting the WAL start over if it grew
    /// long.
    fn write(&mut self, batch: &mut Batch, flusher: &std::sync::mpsc::SyncSender<Committed>) {
        finish_long_wal(&self.conn, &self.wal_long);
        self.counters.batch(batch.len());
        write_batch(&mut self.conn, &self.lock, &self.rt, batch, flusher);
    }
}

/// If the flusher found the WAL long, copy back what its last checkpoint left: once
/// nothing is left, the writer's next transaction writes the WAL from its beginning
/// (unless a reader still reads from it; then the flusher asks again).
fn finish_long_wal(conn: &Connection, wal_long: &std::sync::atomic::AtomicBool) {
    if wal_long.swap(false, std::sync::atomic::Ordering::Relaxed) {
        checkpoint(conn);
    }
}

/// A `PASSIVE` checkpoint: it copies back what no reader still needs and never waits for
/// the writer. Returns the frames in the WAL; a failure is logged (the next one retries).
fn checkpoint(conn: &Connection) -> Option<i64> {
    // (busy, frames in the WAL, frames copied back)
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
        Ok(frames) => Some(frames),
        Err(e) => {
            tracing::warn!(error = %e, "checkpointing the write-ahead log failed");
            None
        }
    }
}

fn run(
    mut writer: Writer,
    mut rx: mpsc::Receiver<Msg>,
    flusher: std::sync::mpsc::SyncSender<Committed>,
    flusher_thread: std::thread::JoinHandle<()>,
) {
    let mut batch = Batch::default();
    while let Some(msg) = rx.blocking_recv() {
        let mut closing = batch.take(msg);
        while closing.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(msg) => closing = batch.take(msg),
                Err(_) => break,
            }
        }
        if batch.len() > 0 {
            writer.write(&mut batch, &flusher);
        }
        if let Some(done) = closing {
            rx.close();
            // Whatever was queued before the close is still written.
            while let Some(msg) = rx.blocking_recv() {
                if batch.take(msg).is_none() {
                    writer.write(&mut batch, &flusher);
                }
            }
            // The flusher answers what it holds, then stops.
            drop(flusher);
            let _ = flusher_thread.join();
            drop(writer);
            let _ = done.send(());
            return;
        }
    }
}

/// The flusher: flush the WAL once for every committed batch waiting (in order), then
/// answer their callers; on a failed flush, every one of them gets the error.
fn flush_and_answer(
    mut wal: WalFile,
    rx: std::sync::mpsc::Receiver<Committed>,
    checkpoints: Option<Checkpoints>,
) {
    let mut last_checkpoint = std::time::Instant::now();
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
        }
        let flushed = wal.flush();
        let failed = |e: &std::io::Error| {
            StoreError::Db(sqlx::Error::Io(std::io::Error::new(
                e.kind(),
                format!("flushing the write-ahead log: {e}"),
            )))
        };
        for reply in batches.into_iter().flatten() {
            match &flushed {
                Ok(()) => reply.send(None),
                Err(e) => reply.send(Some(&|| failed(e))),
            }
        }
        if let Some(checkpoints) = &checkpoints
            && last_checkpoint.elapsed() >= CHECKPOINT_EVERY
        {
            last_checkpoint = std::time::Instant::now();
            checkpoints.run();
        }
    }
}

/// The flusher's checkpoints: its own connection, and where it tells the writer that the
/// WAL grew long.
struct Checkpoints {
    conn: Connection,
    wal_long: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// [`WAL_RESTART_FRAMES`], but for tests.
    restart_frames: i64,
}

impl Checkpoints {
    /// A [`checkpoint`]; if the WAL is longer than `restart_frames` the writer is asked to
    /// let it start over.
    fn run(&self) {
        if checkpoint(&self.conn).is_some_and(|frames| frames > self.restart_frames) {
            self.wal_long
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The database's WAL file, opened once and again if it was replaced.
struct WalFile {
    path: PathBuf,
    open: Option<(std::fs::File, u64)>,
}

impl WalFile {
    fn new(path: PathBuf) -> WalFile {
        WalFile { path, open: None }
    }

    /// `fdatasync` the WAL file: every commit that returned before this call is durable
    /// once it returns.
    fn flush(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(&self.path)?.ino();
        match &self.open {
            Some((_, open_ino)) if *open_ino == ino => {}
            _ => {
                let file = std::fs::OpenOptions::new().read(true).open(&self.path)?;
                let opened = file.metadata()?.ino();
                self.open = Some((file, opened));
            }
        }
        match &self.open {
            Some((file, _)) => file.sync_data(),
            None => Ok(()),
        }
    }
}

/// Write one batch under the store's write lock, in one transaction, and hand each
/// caller's answer to the flusher (relaxed scripts are answered at once). One failing
/// write cannot undo the others (see [`write`]). A caller whose write failed is answered
/// at once.
fn write_batch(
    conn: &mut Connection,
    lock: &AnyPool,
    rt: &Handle,
    batch: &mut Batch,
    flusher: &std::sync::mpsc::SyncSender<Committed>,
) {
    let outcome = rt.block_on(async {
        let guard = lock.acquire().await.map_err(StoreError::from)?;
        let written = write(conn, &batch.jobs, &batch.scripts).map_err(db_error);
        // Released inside the runtime: the pool's release hook runs as a task.
        drop(guard);
        written
    });
    let Batch {
        jobs,
        cert_waiting,
        scripts,
    } = batch;
    jobs.clear();
    let (certs, script_outs) = match outcome {
        Ok(written) => written,
        Err(e) => {
            for done in cert_waiting.drain(..) {
                let _ = done.send(Err(clone_error(&e)));
            }
            for (_, done) in scripts.drain(..) {
                let _ = done.send(Err(clone_error(&e)));
            }
            return;
        }
    };
    let mut committed: Committed = Vec::with_capacity(certs.len() + script_outs.len());
    committed.extend(
        cert_waiting
            .drain(..)
            .zip(certs)
            .map(|(done, r)| Reply::Cert(done, r)),
    );
    for ((script, done), r) in scripts.drain(..).zip(script_outs) {
        if script.relaxed || r.is_err() {
            let _ = done.send(r);
        } else {
            committed.push(Reply::Script(done, r));
        }
    }
    if committed.iter().all(Reply::is_err) {
        for reply in committed {
            reply.send(None);
        }
    } else if let Err(std::sync::mpsc::SendError(committed)) = flusher.send(committed) {
        // The flusher is gone (it only stops after the writer): nothing is known durable.
        for reply in committed {
            reply.send(Some(&|| StoreError::Db(sqlx::Error::PoolClosed)));
        }
    }
}

/// What one transaction wrote: for each certificate whether its ACME order was completed,
/// for each script how it ended (or why each failed).
type Written = (
    Vec<Result<bool, StoreError>>,
    Vec<Result<Outcome, StoreError>>,
);

/// One transaction for every script and every certificate.
///
/// The certificates go first, straight into the transaction: a savepoint around them
/// would make SQLite copy the original of every page they change into its statement
/// journal (a temporary file once it passes 64 KiB), and a full batch changes thousands
/// of pages. Should one of them fail, the transaction is rolled back and the batch
/// written again in [`write_apart`], each certificate and script under a savepoint of its
/// own, so that one failing cannot undo the others.
fn write(
    conn: &mut Connection,
    jobs: &[Job],
    scripts: &[(Box<Script>, ScriptDone)],
) -> rusqlite::Result<Written> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let certs = match insert_certs(&tx, jobs) {
        Ok(completed) => completed.into_iter().map(Ok).collect(),
        Err(_) => {
            drop(tx);
            return write_apart(conn, jobs, scripts);
        }
    };
    let script_outs = run_scripts(&mut tx, scripts)?;
    tx.commit()?;
    Ok((certs, script_outs))
}

/// The batch again after a certificate failed: each certificate under a savepoint of its
/// own, then the scripts.
fn write_apart(
    conn: &mut Connection,
    jobs: &[Job],
    scripts: &[(Box<Script>, ScriptDone)],
) -> rusqlite::Result<Written> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut certs = Vec::with_capacity(jobs.len());
    for job in jobs {
        let sp = tx.savepoint()?;
        certs.push(match insert_certs(&sp, std::slice::from_ref(job)) {
            Ok(completed) => sp
                .commit()
                .map(|()| completed.first().copied().unwrap_or(false))
                .map_err(db_error),
            Err(e) => Err(db_error(e)),
        });
    }
    let script_outs = run_scripts(&mut tx, scripts)?;
    tx.commit()?;
    Ok((certs, script_outs))
}

/// Run each script under a savepoint of its own: one refused by its guard, or failing,
/// leaves nothing of what it did and disturbs nothing else.
fn run_scripts(
    tx: &mut rusqlite::Transaction<'_>,
    scripts: &[(Box<Script>, ScriptDone)],
) -> rusqlite::Result<Vec<Result<Outcome, StoreError>>> {
    let mut outs = Vec::with_capacity(scripts.len());
    for (script, _) in scripts {
        let sp = tx.savepoint()?;
        // Dropping a savepoint rolls it back.
        outs.push(match script.run_rusqlite(&sp) {
            Ok(Outcome::Refused) => Ok(Outcome::Refused),
            Ok(done) => sp.commit().map(|()| done).map_err(db_error),
            Err(e) => Err(db_error(e)),
        });
    }
    Ok(outs)
}

/// Insert each certificate with its names, audit event and tallies; whether each job's
/// ACME order was completed.
fn insert_certs(tx: &Connection, jobs: &[Job]) -> rusqlite::Result<Vec<bool>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut completed = Vec::with_capacity(jobs.len());
    let mut cert = tx.prepare_cached(CERT_INSERT_ONE)?;
    let mut name = tx.prepare_cached(NAME_INSERT)?;
    let mut audit = tx.prepare_cached(AUDIT_INSERT)?;
    for job in jobs {
        let c = &job.cert;
        cert.execute(params![
            c.id,
            c.ca_id,
            c.profile_name,
            c.info.serial,
            c.info.subject,
            c.info.common_name,
            job.sans,
            c.info.issuer,
            super::ts(c.info.not_before),
            super::ts(c.info.not_after),
            c.info.key_algorithm,
            c.info.fingerprint_sha256,
            c.der,
            c.key_sealed,
            super::ts(c.created_at),
            c.created_by,
        ])?;
        for (n, reversed) in &job.names {
            name.execute(params![n, c.id, reversed])?;
        }
        let a = &job.audit;
        audit.execute(params![
            super::ts(c.created_at),
            a.actor,
            a.action,
            a.object_type,
            a.object_id,
            a.source,
            job.detail,
        ])?;
        completed.push(match &job.acme_order {
            Some(order) => {
                tx.prepare_cached(ORDER_COMPLETE)?
                    .execute(params![c.id, order])?
                    == 1
            }
            None => false,
        });
    }
    let mut tally = tx.prepare_cached(TALLY_ADD)?;
    for ((ca, hour), count) in new_tallies(jobs.iter().map(|j| &j.cert)) {
        tally.execute(params![ca, "valid", hour, count])?;
    }
    Ok(completed)
}

/// A failure of the writer's connection, as the store reports database failures: through
/// sqlx's error type, so a broken uniqueness or foreign-key rule is a conflict as on
/// every other path.
#[derive(Debug)]
struct WriterError {
    message: String,
    /// SQLite's extended result code, when SQLite failed.
    extended: Option<std::ffi::c_int>,
}

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WriterError {}

impl DatabaseError for WriterError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.extended
            .map(|c| std::borrow::Cow::Owned(c.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.extended {
            Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
                ErrorKind::UniqueViolation
            }
            Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => ErrorKind::ForeignKeyViolation,
            Some(ffi::SQLITE_CONSTRAINT_NOTNULL) => ErrorKind::NotNullViolation,
            Some(ffi::SQLITE_CONSTRAINT_CHECK) => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// The store's error for a failure of the writer's connection.
fn db_error(e: rusqlite::Error) -> StoreError {
    let extended = match &e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    };
    StoreError::from(sqlx::Error::Database(Box::new(WriterError {
        message: e.to_string(),
        extended,
    })))
}

/// The same failure for each caller of a batch (sqlx's error is not `Clone`).
fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound(s) => StoreError::NotFound(s.clone()),
        StoreError::Conflict(s) => StoreError::Conflict(s.clone()),
        StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
        StoreError::Db(sqlx::Error::PoolClosed) => StoreError::Db(sqlx::Error::PoolClosed),
        StoreError::Db(sqlx::Error::PoolTimedOut) => StoreError::Db(sqlx::Error::PoolTimedOut),
        StoreError::Db(other) => StoreError::Db(sqlx::Error::Protocol(other.to_string())),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::IpAddr;

    use sqlx::Row;
    use time::OffsetDateTime;

    use super::*;
    use crate::config::Settings;
    use crate::store::{AuditEvent, NewCertificate, Store};

    #[test]
    fn constraint_failures_are_conflicts() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE certificates (fingerprint TEXT NOT NULL UNIQUE);
             INSERT INTO certificates VALUES ('a');",
        )
        .unwrap();
        let e = conn
            .execute("INSERT INTO certificates VALUES ('a')", [])
            .unwrap_err();
        match db_error(e) {
            StoreError::Conflict(what) => {
                assert_eq!(what, "this certificate is already recorded")
            }
            other => panic!("not a conflict: {other:?}"),
        }
        let e = conn
            .execute("INSERT INTO nowhere VALUES (1)", [])
            .unwrap_err();
        assert!(matches!(db_error(e), StoreError::Db(_)));
    }

    /// The WAL file is reopened when replaced; a failed flush fails every caller of the
    /// batches it covered, and a caller whose write failed keeps their own error.
    #[test]
    fn wal_flush_reopens_a_replaced_file_and_a_failed_flush_fails_its_callers() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db-wal");
        std::fs::write(&path, b"one").unwrap();
        let mut wal = WalFile::new(path.clone());
        wal.flush().unwrap();
        let first = wal.open.as_ref().unwrap().1;
        std::fs::rename(&path, dir.path().join("old")).unwrap();
        std::fs::write(&path, b"two").unwrap();
        wal.flush().unwrap();
        let second = wal.open.as_ref().unwrap().1;
        assert_ne!(first, second);
        assert_eq!(second, std::fs::metadata(&path).unwrap().ino());

        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let (ok_done, ok_wait) = oneshot::channel();
        let (bad_done, bad_wait) = oneshot::channel();
        tx.send(vec![
            Reply::Cert(ok_done, Ok(true)),
            Reply::Cert(bad_done, Err(StoreError::Conflict("mine".into()))),
        ])
        .unwrap();
        drop(tx);
        // No WAL file here: the flush fails.
        flush_and_answer(WalFile::new(dir.path().join("missing-wal")), rx, None);
        match ok_wait.blocking_recv().unwrap() {
            Err(StoreError::Db(sqlx::Error::Io(e))) => {
                assert!(
                    e.to_string().contains("flushing the write-ahead log"),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            bad_wait.blocking_recv().unwrap(),
            Err(StoreError::Conflict(m)) if m == "mine"
        ));
    }

    /// The WAL starts over even when a write always follows the flusher's checkpoint
    /// before it is complete (a load that never pauses): the flusher finds it long, the
    /// writer copies back the rest, and its next transaction cuts the file back.
    #[test]
    fn a_long_wal_starts_over_at_the_writers_next_transaction() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let wal_len = || {
            std::fs::metadata(dir.path().join("wal.db-wal"))
                .unwrap()
                .len()
        };
        let limit = 16;
        let writer = open(&path, limit).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (b BLOB);")
            .unwrap();
        let write = |n: usize| {
            for _ in 0..n {
                writer
                    .execute("INSERT INTO t VALUES (zeroblob(3000))", [])
                    .unwrap();
            }
        };
        write(64);
        // A reader keeps its snapshot while the flusher checkpoints and the writer goes
        // on, as under load: the WAL cannot start over, so the write is appended.
        let reader = open(&path, limit).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap();
        let wal_long = std::sync::Arc::new(AtomicBool::new(false));
        let checkpoints = Checkpoints {
            conn: open(&path, limit).unwrap(),
            wal_long: wal_long.clone(),
            restart_frames: limit,
        };
        checkpoints.run();
        assert!(
            wal_long.load(Ordering::Relaxed),
            "64 frames are over the limit"
        );
        write(1);
        reader.execute_batch("COMMIT").unwrap();
        // Without the writer's help, the WAL keeps growing: the checkpoint is never
        // complete when the next transaction starts.
        let before = wal_len();
        write(1);
        assert!(wal_len() > before);
        assert!(wal_len() > (limit as u64) * 4096);
        // With it: the rest is copied back, and the next transaction starts the WAL over
        // and cuts the file back to the limit.
        finish_long_wal(&writer, &wal_long);
        assert!(!wal_long.load(Ordering::Relaxed));
        write(1);
        assert!(
            wal_len() <= (limit as u64) * (4096 + 24) + 32,
            "WAL of {} bytes",
            wal_len()
        );
        assert_eq!(
            writer
                .query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))
                .unwrap(),
            67
        );
    }

    /// Scripts share the certificates' transaction, each under its own savepoint: one
    /// refused by its guard leaves nothing of what it did before, one that fails gets its
    /// own error, and neither disturbs the certificates or the scripts beside them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scripts_in_a_batch_stand_or_fall_alone() {
        use crate::store::script::{Outcome, Script, Stmt};
        let (_dir, store) = store_with_ca().await;
        let count = |bucket: &str| {
            Script::durable().then(
                Stmt::new("INSERT INTO acme_rate_limits (bucket, window_start, count) VALUES ($1, $2, 1) ON CONFLICT (bucket, window_start) DO UPDATE SET count = acme_rate_limits.count + 1 RETURNING count")
                    .bind(bucket)
                    .bind(0)
                    .returning(),
            )
        };
        let refused = Script::relaxed()
            .then(
                Stmt::new(
                    "INSERT INTO acme_rate_limits (bucket, window_start, count) VALUES ($1, 0, 7)",
                )
                .bind("undone"),
            )
            .then(
                Stmt::new("UPDATE cas SET status = 'retired' WHERE id = $1")
                    .bind("nowhere")
                    .guard(),
            );
        let failing = Script::relaxed()
            .then(
                Stmt::new(
                    "INSERT INTO acme_rate_limits (bucket, window_start, count) VALUES ($1, 0, 1)",
                )
                .bind("dup"),
            )
            .then(
                Stmt::new(
                    "INSERT INTO acme_rate_limits (bucket, window_start, count) VALUES ($1, 0, 1)",
                )
                .bind("dup"),
            );
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200usize {
            let store = store.clone();
            let (refused, failing, count) = (refused.clone(), failing.clone(), count("shared"));
            tasks.spawn(async move {
                match i % 4 {
                    0 => {
                        // Every fifth certificate repeats one fingerprint: all but the first
                        // of them fail, so batches are written again certificate by
                        // certificate, beside the scripts.
                        let fingerprint = if i % 20 == 0 {
                            "dup".to_string()
                        } else {
                            format!("{i:064x}")
                        };
                        let c = cert(i, "ca1", &fingerprint);
                        let ev =
                            AuditEvent::new("token:test", None, "certificate.issue", "certificate");
                        match store.insert_certificate(c, ev, None).await {
                            Ok(completed) => assert!(!completed),
                            Err(e) => {
                                assert!(i % 20 == 0, "{e:?}");
                                assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
                            }
                        }
                        None
                    }
                    1 => {
                        assert_eq!(store.run_script(refused).await.unwrap(), Outcome::Refused);
                        None
                    }
                    2 => {
                        let e = store.run_script(failing).await.unwrap_err();
                        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
                        None
                    }
                    _ => match store.run_script(count).await.unwrap() {
                        Outcome::Done(Some(n)) => Some(n),
                        other => panic!("{other:?}"),
                    },
                }
            });
        }
        let mut counts = Vec::new();
        while let Some(r) = tasks.join_next().await {
            counts.extend(r.unwrap());
        }
        // Every count saw the ones before it: 1, 2, ... 50, each once.
        counts.sort_unstable();
        assert_eq!(counts, (1..=50).collect::<Vec<i64>>());
        // 50 certificates, 10 of them with the one fingerprint: 41 recorded.
        assert_eq!(
            count_rows(&store, "SELECT COUNT(*) FROM certificates").await,
            41
        );
        assert_eq!(
            count_rows(
                &store,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'certificate.issue'"
            )
            .await,
            41
        );
        assert_eq!(
            count_rows(
                &store,
                "SELECT COUNT(*) FROM acme_rate_limits WHERE bucket IN ('undone', 'dup')"
            )
            .await,
            0
        );
        store.close().await;
    }

    pub(in crate::store) fn cert(i: usize, ca: &str, fingerprint: &str) -> NewCertificate {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        NewCertificate {
            id: crate::store::new_id(),
            ca_id: ca.into(),
            profile_name: Some("default".into()),
            info: certkeeper_ca::CertInfo {
                subject: format!("CN=h{i}.example"),
                common_name: Some(format!("h{i}.example")),
                issuer: "CN=test CA".into(),
                serial: format!("{i:040x}"),
                not_before: now,
                not_after: now + time::Duration::days(90),
                dns_names: vec![format!("h{i}.example"), format!("www.h{i}.example")],
                ip_addresses: vec![IpAddr::from([10, 0, 0, 1])],
                key_algorithm: Some("ECDSA P-256".into()),
                fingerprint_sha256: fingerprint.into(),
                is_ca: false,
                path_len: None,
                self_signed: false,
            },
            der: vec![0x30, i as u8],
            key_sealed: None,
            created_by: "token:test".into(),
            created_at: now,
        }
    }

    /// A store on a fresh SQLite file (its writer a thread of its own) with one CA,
    /// `ca1`, for certificates to name.
    async fn store_with_ca() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(dir.path(), None).unwrap();
        let store = Store::connect(&settings).await.unwrap();
        assert!(matches!(
            store.writer,
            super::super::writer::CertWriter::Sqlite(_)
        ));
        sqlx::query(
            "INSERT INTO cas (id, name, kind, status, subject, key_algorithm, key_sealed, created_at)
             VALUES ('ca1', 'ca1', 'root', 'active', 'CN=test CA', 'ECDSA P-256', x'00', 0)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        (dir, store)
    }

    /// The writer and flusher threads run under `SCHED_BATCH` (as
    /// `/proc/<pid>/task/<tid>/stat` shows), so a request that queues a write does not preempt
    /// the request threads (module documentation). Other tests' stores start such threads
    /// too; one just started may not have switched yet, so this waits, boundedly, until
    /// every one has.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_threads_run_as_batch_work() {
        let (_dir, store) = store_with_ca().await;
        let policies = || {
            let mut found = Vec::new();
            for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
                let path = task.path();
                let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                if !comm.starts_with("certkeeper-sqli") {
                    continue;
                }
                let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
                    continue; // the thread ended meanwhile
                };
                let policy = crate::sched::Scheduling::from_stat(&stat).unwrap().policy;
                found.push((comm.trim().to_string(), policy));
            }
            found
        };
        // Under another policy or nice value than the default (the tests were started
        // so), the threads keep what they inherit.
        use crate::sched::Scheduling;
        let expected = Scheduling::current().unwrap().under_batch_work().policy;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let found = policies();
            assert!(found.len() >= 2, "the writer and the flusher: {found:?}");
            if found.iter().all(|(_, policy)| *policy == expected) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "threads not under policy {expected}: {found:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        store.close().await;
    }

    async fn count_rows(store: &Store, sql: &str) -> i64 {
        sqlx::query(sql)
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get::<i64, _>(0)
    }

    /// Many concurrent records share transactions; a duplicate and a record naming a CA
    /// that does not exist fail on their own with a conflict, and every other record of
    /// their batches lands whole (row, names, audit event). After `close`, a record is
    /// refused instead of waiting forever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_land_and_one_bad_record_fails_alone() {
        let (_dir, store) = store_with_ca().await;

        const N: usize = 600;
        let mut tasks = Vec::new();
        for i in 0..N + 2 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let c = match i {
                    // The same fingerprint as certificate 0.
                    N => cert(i, "ca1", &format!("{:064x}", 0)),
                    _ if i == N + 1 => cert(i, "no-such-ca", "ff"),
                    _ => cert(i, "ca1", &format!("{i:064x}")),
                };
                let id = c.id.clone();
                let ev = AuditEvent::new("token:test", None, "certificate.issue", "certificate")
                    .object(&id)
                    .detail(serde_json::json!({ "n": i }));
                (i, id, store.insert_certificate(c, ev, None).await)
            }));
        }
        let mut landed = Vec::new();
        let mut duplicate_refused = false;
        for t in tasks {
            let (i, id, r) = t.await.unwrap();
            match (i, r) {
                (i, Ok(false)) if i < N => landed.push(id),
                (i, Err(StoreError::Conflict(what))) if i == N => {
                    // Certificate 0 may have been written after its duplicate.
                    assert_eq!(what, "this certificate is already recorded");
                    duplicate_refused = true;
                }
                (0, Err(StoreError::Conflict(_))) => duplicate_refused = true,
                (i, Ok(false)) if i == N => landed.push(id),
                (i, Err(StoreError::Conflict(what))) if i == N + 1 => {
                    assert!(what.contains("does not exist"), "{what}")
                }
                (i, r) => panic!("record {i}: {r:?}"),
            }
        }
        assert!(duplicate_refused);
        assert_eq!(landed.len(), N);
        assert_eq!(
            count_rows(&store, "SELECT COUNT(*) FROM certificates").await,
            N as i64
        );
        assert_eq!(
            count_rows(&store, "SELECT COUNT(*) FROM certificate_names").await,
            3 * N as i64
        );
        // Failed batches took their tallies back with them.
        assert_eq!(
            count_rows(&store, "SELECT SUM(count) FROM certificate_tallies").await,
            N as i64
        );
        assert_eq!(
            count_rows(
                &store,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'certificate.issue'"
            )
            .await,
            N as i64
        );
        let rec = store.get_certificate(&landed[17]).await.unwrap();
        assert_eq!(rec.sans.len(), 3, "{:?}", rec.sans);
        assert_eq!(rec.ca_id, "ca1");

        store.close().await;
        let late = store
            .insert_certificate(
                cert(N + 3, "ca1", "ee"),
                AuditEvent::new("token:test", None, "certificate.issue", "certificate"),
                None,
            )
            .await;
        assert!(late.is_err(), "{late:?}");
    }
}
